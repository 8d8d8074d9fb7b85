"""Corruption fuzz on a recorded real journal: load and continue, or fail closed with
the line, the byte offset and the way out — never a study made unreadable for good."""

from __future__ import annotations

import json
import os
import random
import re
import shutil
import time
from pathlib import Path

import pytest

from lit_hpo import load_study
from lit_hpo.cli import main
from lit_hpo.journal import JournalCorruptError
from lit_hpo.study import StudyClient
from tests import records

RECORDED = Path(__file__).parent / "data" / "asha_study" / "journal.jsonl"
N_RECORDS = len(RECORDED.read_bytes().splitlines())


@pytest.fixture
def study(tmp_path: Path) -> Path:
    shutil.copy(RECORDED, tmp_path / "journal.jsonl")
    return tmp_path


def test_a_torn_tail_at_any_offset_loads_and_the_next_append_repairs_it(study: Path) -> None:
    data = RECORDED.read_bytes()
    rng = random.Random(0)
    header_end = data.index(b"\n") + 1
    for cut in sorted(rng.sample(range(header_end + 1, len(data)), 60)):
        (study / "journal.jsonl").write_bytes(data[:cut])
        whole = data[:cut].count(b"\n")
        assert load_study(study).state.n_records == whole
        StudyClient(study).journal.append([records.session(time.time())])
        assert load_study(study).state.n_records == whole + 1


def test_a_bad_line_fails_closed_then_verify_and_repair_bring_the_study_back(
    study: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = study / "journal.jsonl"
    lines = path.read_bytes().splitlines(keepends=True)
    lines.insert(7, b'{"op": "report", "trial": 3, "epo\n')  # a line cut mid-file
    path.write_bytes(b"".join(lines))
    with pytest.raises(JournalCorruptError, match=r"line 8 \(byte offset \d+\).*lit-hpo repair"):
        load_study(study)
    assert main(["verify", str(study)]) == 1
    assert "journal.jsonl:8: byte offset" in capsys.readouterr().out
    assert main(["repair", str(study)]) == 0
    assert "moved 1 lines" in capsys.readouterr().out
    assert load_study(study).state.n_records == N_RECORDS
    assert (
        study / "journal.jsonl.quarantine"
    ).read_bytes() == b'{"op": "report", "trial": 3, "epo\n'
    assert [p.name for p in study.glob("journal.jsonl.bak-*")]
    assert main(["verify", str(study)]) == 0
    # Once every line replays, repair changes nothing: no new backup, the same file.
    before = sorted(p.name for p in study.iterdir()), os.stat(path).st_ino, path.read_bytes()
    capsys.readouterr()
    assert main(["repair", str(study)]) == 0
    assert "nothing to repair, nothing changed" in capsys.readouterr().out
    assert (sorted(p.name for p in study.iterdir()), os.stat(path).st_ino,
            path.read_bytes()) == before  # fmt: skip


def test_a_journal_from_a_newer_format_fails_closed(study: Path) -> None:
    path = study / "journal.jsonl"
    lines = path.read_text().splitlines(keepends=True)
    header = json.loads(lines[0])
    header["format"] = 2
    path.write_text(json.dumps(header) + "\n" + "".join(lines[1:]))
    with pytest.raises(JournalCorruptError, match="format 2, this lit_hpo reads format 1"):
        load_study(study)


def test_an_unknown_record_type_fails_closed_naming_it(study: Path) -> None:
    with open(study / "journal.jsonl", "a") as file:
        file.write('{"op": "teleport", "time": 1}\n')
    with pytest.raises(JournalCorruptError, match=r"unknown journal record op 'teleport'.*upgrade"):
        load_study(study)


def test_repair_refuses_while_the_study_runs(
    study: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    import os

    with open(study / "journal.jsonl", "a") as file:
        file.write(json.dumps(records.session(time.time(), pid=os.getpid())) + "\n")
    assert main(["repair", str(study)]) == 2
    assert "still running" in capsys.readouterr().err


@pytest.mark.parametrize("record", ["claim", "session"])
@pytest.mark.parametrize("age, refused", [(5.0, True), (3600.0, False)], ids=["live", "quiet"])
def test_repair_and_unlock_wait_for_processes_on_other_hosts(
    study: Path, record: str, age: float, refused: bool, capsys: pytest.CaptureFixture[str]
) -> None:
    """A worker (claim) or a run (session) on another host: its pid means nothing here
    (this test's own pid, alive here, is not taken for it), so only the journal going
    quiet for a lease tells that it stopped."""
    import os

    when, trial = time.time() - age, len(load_study(study).state.trials)
    written = (
        records.claim(trial, time=when, config=StudyClient(study).config_of(trial))
        if record == "claim"
        else records.session(when, lease_seconds=60.0)
    )
    with open(study / "journal.jsonl", "a") as file:
        file.write(json.dumps({**written, "pid": os.getpid(), "host": "node-b"}) + "\n")
    before = (study / "journal.jsonl").read_bytes()
    for command in ("repair", "unlock"):
        assert main([command, str(study)]) == (2 if refused else 0)
        err = capsys.readouterr().err
        said = "other hosts (node-b)" in err and re.search(r"written \d s ago", err) is not None
        assert said == refused, err
    assert (study / "journal.jsonl").read_bytes() == before  # nothing to move either way
    assert main(["repair", str(study), "--force"]) == 0
    assert not list(study.glob("journal.jsonl.bak-*"))  # every line replays: none needed


def test_repairs_within_one_second_keep_every_backup(study: Path) -> None:
    path = study / "journal.jsonl"
    whole = path.read_bytes()
    for _ in range(3):
        with open(path, "ab") as file:
            file.write(b'{"op": "rep')  # a torn tail: a writer died mid-append
        assert main(["repair", str(study)]) == 0
        assert path.read_bytes() == whole
    backups = sorted(study.glob("journal.jsonl.bak-*"))  # -2, -3 within one second
    assert [b.read_bytes() for b in backups] == [whole + b'{"op": "rep'] * 3
    assert (study / "journal.jsonl.quarantine").read_bytes() == b'{"op": "rep\n' * 3


def test_the_journal_is_not_followed_through_a_symlink(tmp_path: Path) -> None:
    target = tmp_path / "elsewhere.jsonl"
    target.write_text("")
    study = tmp_path / "study"
    study.mkdir()
    (study / "journal.jsonl").symlink_to(target)
    with pytest.raises(OSError):
        StudyClient(study).journal.append([{"op": "x", "time": 0}])
    assert target.read_text() == ""
