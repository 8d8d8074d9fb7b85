"""The journal contract over both backends (the study directory's file, a real PostgreSQL
server): real processes, real locks, real kills; and what only the server has (a killed
or hung lock holder, a server restart)."""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from lit_hpo.journal import Journal, JournalWriteError
from lit_hpo.pg_journal import PgJournal, check_url
from lit_hpo.spec import spec_from_config
from lit_hpo.study import StudyClient
from tests.conftest import ROOT, SEEDS, fill, small_disk, wait_for
from tests.records import replayed_stops

pytestmark = pytest.mark.slow

OPEN = """
import sys
from lit_hpo.journal import Journal
from lit_hpo.pg_journal import PgJournal
def open_journal(directory, url):
    if url == "-":
        return Journal(directory + "/journal.jsonl")
    return PgJournal(url, directory)
"""
WRITER = (
    OPEN
    + """
journal = open_journal(sys.argv[1], sys.argv[2])
writer, count = int(sys.argv[3]), int(sys.argv[4])
for i in range(count):
    journal.append([{"op": "test", "writer": writer, "i": i}])
    if writer < 0:
        print(i, flush=True)  # acknowledged: the append returned
"""
)
CLAIMER = """
import os, sys, time
from lit_hpo.study import StudyClient
url = None if sys.argv[3] == "-" else sys.argv[3]
client = StudyClient(sys.argv[1], journal=url)
worker = int(sys.argv[2])
while not os.path.exists(os.path.join(sys.argv[1], "go")):  # start together
    time.sleep(0.01)
while (trial := client.claim(worker)) is not None:
    for epoch in range(1, 11):
        time.sleep(0.002)
        value = (trial.trial_id * 7919 % 101) / 101 + 1.0 / epoch
        if client.report(trial.trial_id, epoch, value).stop:
            break
    client.end(trial.trial_id, "completed")
"""


@pytest.fixture(params=["file", "postgres"])
def url(request: pytest.FixtureRequest) -> str | None:
    """``None`` for the file journal, else the server's URL."""
    if request.param == "file":
        return None
    return str(request.getfixturevalue("pg_url"))


def _journal(directory: Path, url: str | None) -> Journal | PgJournal:
    return Journal(directory / "journal.jsonl") if url is None else PgJournal(url, str(directory))


def _run(*args: str) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-c", *args], cwd=ROOT)


def test_processes_append_every_record_exactly_once_in_order(
    tmp_path: Path, url: str | None
) -> None:
    writers, count = 6, 200
    procs = [_run(WRITER, str(tmp_path), url or "-", str(w), str(count)) for w in range(writers)]
    assert [p.wait(timeout=300) for p in procs] == [0] * writers
    records, end = _journal(tmp_path, url).read(0)
    assert sorted((r["writer"], r["i"]) for r in records) == [
        (w, i) for w in range(writers) for i in range(count)
    ]
    for w in range(writers):  # each writer's records in the order it wrote them
        assert [r["i"] for r in records if r["writer"] == w] == list(range(count))
    if url is not None:
        assert end == writers * count  # offsets are sequence numbers, without gaps


def test_incremental_reads_return_each_record_once(tmp_path: Path, url: str | None) -> None:
    journal = _journal(tmp_path, url)
    assert journal.read(0) == ([], 0)
    journal.append([{"op": "t", "a": 1}, {"op": "t", "a": 2}])
    first, offset = journal.read(0)
    with journal.locked():  # re-entrant: an append inside a step is part of it
        start, end = journal.append([{"op": "t", "a": 3}])
        assert journal.read(offset)[0] == [{"op": "t", "a": 3}]
    assert start == offset
    second, final = journal.read(offset)
    assert [r["a"] for r in first] == [1, 2] and [r["a"] for r in second] == [3]
    assert final == end and journal.read(final) == ([], final)


def test_concurrent_claims_are_unique_and_replay_gives_every_decision(
    tmp_path: Path, url: str | None
) -> None:
    spec = spec_from_config({**SEEDS, "max_wallclock_time": None, "max_trials": 40,
                             "journal": url})  # fmt: skip
    StudyClient(tmp_path, journal=url).open(spec, n_workers=4)
    procs = [_run(CLAIMER, str(tmp_path), str(w), url or "-") for w in range(4)]
    time.sleep(1.0)
    (tmp_path / "go").touch()
    assert [p.wait(timeout=300) for p in procs] == [0] * 4
    records, _ = _journal(tmp_path, url).read(0)
    claims = [r for r in records if r["op"] == "claim"]
    assert [r["trial"] for r in claims] == list(range(40))
    assert len({r["worker"] for r in claims}) > 1
    # Replay from scratch: every recorded decision is the one the rule gives again.
    assert replayed_stops(records) > 5


def test_sigkilled_writers_leave_a_replayable_journal_and_a_free_lock(
    tmp_path: Path, url: str | None
) -> None:
    for round_ in range(3):
        procs = [_run(WRITER, str(tmp_path), url or "-", str(10 * round_ + w), "100000")
                 for w in range(3)]  # fmt: skip
        time.sleep(1.5 + 0.3 * round_)
        for p in procs:
            os.kill(p.pid, signal.SIGKILL)
            p.wait()
    journal = _journal(tmp_path, url)
    journal.append([{"op": "after"}])
    records, _ = journal.read(0)
    assert records[-1] == {"op": "after"}
    for w in {r["writer"] for r in records[:-1]}:
        mine = [r["i"] for r in records if r.get("writer") == w]
        assert mine == list(range(len(mine)))  # nothing lost or doubled before the kill


HOLDER = (
    OPEN
    + """
import time
journal = PgJournal(sys.argv[2], sys.argv[1], idle_timeout=float(sys.argv[3]))
with journal.locked():
    journal.append([{"op": "held"}])
    print("locked", flush=True)
    time.sleep(600)
"""
)


@pytest.mark.parametrize("how", ["SIGKILL", "SIGSTOP"])
def test_a_killed_or_hung_lock_holder_frees_the_study(
    tmp_path: Path, pg_url: str, how: str
) -> None:
    """A killed holder's lock goes with its connection; a hung one's (a stopped process,
    a node without power) when the server ends its idle transaction (the lease)."""
    holder = subprocess.Popen([sys.executable, "-c", HOLDER, str(tmp_path), pg_url, "2"],
                              cwd=ROOT, stdout=subprocess.PIPE, text=True)  # fmt: skip
    try:
        assert holder.stdout is not None and holder.stdout.readline().strip() == "locked"
        os.kill(holder.pid, getattr(signal, how))
        waiter = PgJournal(pg_url, str(tmp_path), timeout=30)
        start = time.monotonic()
        waiter.append([{"op": "after"}])
        waited = time.monotonic() - start
    finally:
        holder.kill()
        holder.wait()
    records, _ = waiter.read(0)
    # The holder's step never committed: its record is gone, and nothing else is.
    assert records == [{"op": "after"}]
    assert waited < (1.0 if how == "SIGKILL" else 10.0)


def _cut_mid_step(pg_url: str, study_dir: Path, step: Callable[[], Any]) -> Any:
    """Run ``step`` while the server drops its connection in the middle of it, as a
    restart or failover does: another transaction holds an uncommitted row with the
    sequence number the step will append, so the step's insert waits (holding the
    study's lock); its backend is terminated then, and the row rolled back."""
    import threading

    import psycopg

    study = str(study_dir.absolute())
    waiting = ("SELECT pid FROM pg_stat_activity WHERE wait_event_type = 'Lock' "
               "AND query LIKE 'INSERT INTO lit_hpo_journal%%'")  # fmt: skip
    outcome: list[Any] = []

    def run() -> None:
        try:
            outcome.append(step())
        except BaseException as err:  # re-raised below, in the test's thread
            outcome.append(err)

    with (
        psycopg.connect(pg_url, autocommit=True) as admin,
        psycopg.connect(pg_url, autocommit=True) as blocker,
    ):
        blocker.execute("BEGIN")
        seq = blocker.execute("SELECT coalesce(max(seq), 0) + 1 FROM lit_hpo_journal "
                              "WHERE study = %s", (study,)).fetchone()[0]  # fmt: skip
        blocker.execute("INSERT INTO lit_hpo_journal VALUES (%s, %s, '{}')", (study, seq))
        thread = threading.Thread(target=run)
        thread.start()
        wait_for(lambda: admin.execute(waiting).fetchall(), timeout=30)
        (pid,) = admin.execute(waiting).fetchone()
        assert admin.execute("SELECT pg_terminate_backend(%s)", (pid,)).fetchone()[0]
        blocker.execute("ROLLBACK")
        thread.join(60)
    if isinstance(outcome[0], BaseException):
        raise outcome[0]
    return outcome[0]


def test_a_step_the_server_drops_runs_again_and_is_recorded_once(
    tmp_path: Path, pg_url: str, capfd: pytest.CaptureFixture[str]
) -> None:
    """A worker's claim, heartbeat, report and end, each cut in the middle by the server
    (its connection terminated while it holds the study's lock): each step recorded
    nothing, runs again on the replayed journal, and is recorded once; the worker sees
    no error (before, the first cut ended the worker with exit code 74)."""
    client = StudyClient(tmp_path, journal=pg_url)
    client.open(spec_from_config({**SEEDS, "max_trials": 2}), n_workers=1)
    claim = _cut_mid_step(pg_url, tmp_path, lambda: client.claim(0))
    assert claim is not None and claim.trial_id == 0
    assert _cut_mid_step(pg_url, tmp_path, lambda: client.heartbeat(0, 0))
    decision = _cut_mid_step(pg_url, tmp_path, lambda: client.report(0, 1, 0.5))
    assert not decision.stop
    _cut_mid_step(pg_url, tmp_path, lambda: client.end(0, "completed"))
    assert capfd.readouterr().err.count("it recorded nothing and runs again") == 4
    records, _ = PgJournal(pg_url, str(tmp_path.absolute())).read(0)
    assert [r["op"] for r in records] == ["study", "session", "claim", "heartbeat", "report",
                                          "end"]  # fmt: skip
    state = StudyClient(tmp_path, journal=pg_url).refresh()
    assert [(t.status, [r.epoch for r in t.reports]) for t in state.trials] == [("completed", [1])]


def _pg_data() -> Path:
    return Path(os.environ.get("LOCAL_PG_DIR", "/tmp/local-postgres")) / "data"


ACKING_WRITER = """
import sys, time
from lit_hpo.pg_journal import PgJournal
journal = PgJournal(sys.argv[1], sys.argv[2])
with open(sys.argv[3], "a") as acks:
    for i in range(100000):
        while True:
            try:
                journal.append([{"op": "test", "i": i}])
                break
            except OSError:  # the server is away: try again (this append was not made)
                time.sleep(0.2)
        print(i, file=acks, flush=True)  # acknowledged: the append returned
"""


def test_a_server_restart_mid_study_loses_no_acknowledged_record(
    tmp_path: Path, pg_url: str
) -> None:
    if os.geteuid() != 0 or not (_pg_data() / "postmaster.pid").exists():
        pytest.skip("restarts only the local recipe's server (scripts/start-local-postgres.sh)")
    acks = tmp_path / "acks"
    acks.touch()

    def acked() -> list[int]:
        return [int(line) for line in acks.read_text().split()]

    writer = _run(ACKING_WRITER, pg_url, str(tmp_path), str(acks))
    try:
        wait_for(lambda: len(acked()) > 200)
        pg_ctl = sorted(Path("/usr/lib/postgresql").glob("*/bin/pg_ctl"))[-1]
        log = _pg_data().parent / "log" / "postgres.log"  # the server must not hold a pipe
        subprocess.run(["runuser", "-u", "postgres", "--", str(pg_ctl), "-D", str(_pg_data()),
                        "-l", str(log), "-m", "fast", "-w", "restart"], check=True,
                       stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)  # fmt: skip
        # The recipe's stop script stops the pid it recorded: record the new one.
        pid = (_pg_data() / "postmaster.pid").read_text().split()[0]
        (_pg_data().parent / "run" / "postgres.pid").write_text(pid + "\n")
        before = len(acked())
        wait_for(lambda: len(acked()) > before + 200)  # the writer goes on after the restart
    finally:
        writer.kill()
        writer.wait()
    records, end = PgJournal(pg_url, str(tmp_path)).read(0)
    stored = [r["i"] for r in records]
    assert stored == list(range(len(stored)))  # contiguous, nothing doubled
    assert set(acked()) <= set(stored)  # every acknowledged append survived the restart
    assert end == len(stored)


def test_urls_with_a_password_or_without_a_database_are_refused() -> None:
    assert check_url(None) is None
    assert check_url("postgresql://me@db.example:5432/hpo") == "postgresql://me@db.example:5432/hpo"
    with pytest.raises(ValueError, match=r"password.*\*\*\*.*pgpass"):
        check_url("postgresql://me:secret@db.example/hpo")
    with pytest.raises(ValueError, match="names no database"):
        check_url("postgresql://me@db.example")
    with pytest.raises(ValueError, match="PostgreSQL URL"):
        check_url("sqlite:///x.db")
    with pytest.raises(ValueError, match=r"hpo\.journal"):
        spec_from_config({**SEEDS, "journal": "postgresql://me:secret@h/db"})


def test_one_study_never_mixes_journal_kinds(tmp_path: Path, pg_url: str) -> None:
    spec = spec_from_config(SEEDS)
    file_study, server_study = tmp_path / "file", tmp_path / "server"
    StudyClient(file_study).open(spec, 1)
    with pytest.raises(ValueError, match=r"keeps its journal in .*journal.jsonl; drop hpo.journal"):
        StudyClient(file_study, journal=pg_url).open(spec, 1)
    StudyClient(server_study, journal=pg_url).open(spec, 1)
    assert (server_study / "journal.pg").read_text().startswith(pg_url)
    assert not (server_study / "journal.jsonl").exists()
    with pytest.raises(ValueError, match=r"on a PostgreSQL server .*add hpo.journal"):
        StudyClient(server_study).open(spec, 1)


def test_a_directory_continues_only_the_server_study_it_belongs_to(
    tmp_path: Path, pg_url: str
) -> None:
    """One database, two machines with the same study path (a laptop and a cluster):
    the second is refused instead of mixed in; a directory never continues another
    database's study; a marker from before the creation time was recorded still works."""
    import psycopg

    spec = spec_from_config({**SEEDS, "journal": pg_url})
    study, marker = tmp_path / "study", tmp_path / "study" / "journal.pg"
    StudyClient(study, journal=pg_url).open(spec, 1)
    first = marker.read_text()
    assert first.startswith(pg_url) and "\ncreated " in first
    StudyClient(study, journal=pg_url).open(spec, 1)  # a rerun continues it
    StudyClient(study, journal=pg_url).join(spec)  # and a worker joins it

    shutil.rmtree(study)  # the other machine: same path, a fresh directory
    for step in (lambda c: c.open(spec, 1), lambda c: c.join(spec)):
        with pytest.raises(ValueError, match=r"already holds a study for .*has no journal\.pg"):
            step(StudyClient(study, journal=pg_url))
    assert not marker.exists()
    sessions = len(StudyClient(study, journal=pg_url).refresh().sessions)

    marker.write_text(first.splitlines()[0] + "\n")  # restored as the message says (the URL)
    StudyClient(study, journal=pg_url).open(spec, 1)
    assert marker.read_text() == first  # the creation time is recorded again
    assert len(StudyClient(study, journal=pg_url).refresh().sessions) == sessions + 1

    other = tmp_path / "other"
    StudyClient(other, journal=pg_url).open(spec, 1)
    foreign = (other / "journal.pg").read_text()
    marker.write_text(foreign)  # the marker of another study (created at another time)
    with pytest.raises(ValueError, match=r"names a study created .*holds another one"):
        StudyClient(study, journal=pg_url).open(spec, 1)
    marker.unlink()
    marker.symlink_to(other / "journal.pg")  # planted: never read (nor written) through
    with pytest.raises(OSError, match=r"journal\.pg is a symbolic link"):
        StudyClient(study, journal=pg_url).open(spec, 1)
    marker.unlink()
    marker.write_text(first)

    with psycopg.connect(pg_url, autocommit=True) as connection:  # "another database"
        connection.execute("DELETE FROM lit_hpo_journal WHERE study = %s", (str(other),))
    with pytest.raises(ValueError, match=r"names a study created .*holds no study for"):
        StudyClient(other, journal=pg_url).open(spec, 1)
    assert (other / "journal.pg").read_text() == foreign  # nothing written
    assert StudyClient(other, journal=pg_url).refresh().header is None


def test_a_study_started_on_a_full_disk_stops_with_the_reason(tmp_path: Path,
                                                             url: str | None) -> None:  # fmt: skip
    """`-m` on a full disk (the study's directory; its journal there or on a server)
    stops at the first write with the reason, exit 74 and no traceback, and records
    nothing."""
    with small_disk(tmp_path / "disk", "1m") as disk:
        study = disk / "study"
        fill(disk / "filler")
        journal = [f"hpo.journal={url}"] if url else []
        run = subprocess.run(
            [sys.executable, "train.py", "-m", "hpo=random", *journal, f"hydra.sweep.dir={study}"],
            cwd=ROOT, capture_output=True, text=True, timeout=120,
        )  # fmt: skip
        written = study / ("journal.pg" if url else "journal.jsonl")
        verb = "write" if url else "append to"
        assert run.returncode == 74, run.stdout + run.stderr
        assert f"the study stopped: could not {verb} {written}: the disk is full" in run.stderr
        assert "Traceback" not in run.stdout + run.stderr
        assert StudyClient(study, journal=url).refresh().header is None  # nothing recorded


def test_a_full_disk_under_a_server_study_stops_with_the_reason_and_a_rerun_goes_on(
    tmp_path: Path, pg_url: str
) -> None:
    """The journal is on the server, the journal.pg marker in the directory: a disk that
    fills between the header and the marker's creation time leaves a study that a rerun
    continues (and whose marker it completes)."""
    spec = spec_from_config({**SEEDS, "journal": pg_url})
    with small_disk(tmp_path / "disk", "1m") as disk:
        study, marker = disk / "study", disk / "study" / "journal.pg"
        filler = fill(disk / "filler")
        os.truncate(filler, filler.stat().st_size - 4096)  # one page: one marker, not two
        with pytest.raises(JournalWriteError, match=r"could not write .*journal\.pg: the disk"):
            StudyClient(study, journal=pg_url).open(spec, 1)
        header = StudyClient(study, journal=pg_url).refresh().header
        assert header is not None and "created" not in marker.read_text()

        filler.unlink()
        StudyClient(study, journal=pg_url).open(spec, 1)  # the rerun goes on
        state = StudyClient(study, journal=pg_url).refresh()
        assert state.header == header and len(state.sessions) == 1
        assert marker.read_text().endswith(f"created {header['time']!r}\n")


def test_lit_hpo_verify_and_export_read_the_server(tmp_path: Path, pg_url: str) -> None:
    import psycopg

    spec = spec_from_config({**SEEDS, "journal": pg_url})
    client = StudyClient(tmp_path, journal=pg_url)
    client.open(spec, 1)
    claim = client.claim(0)
    assert claim is not None
    client.report(claim.trial.trial_id, 1, 0.5)
    lit_hpo = [sys.executable, "-m", "lit_hpo.cli"]

    def cli(*args: str) -> subprocess.CompletedProcess:
        return subprocess.run([*lit_hpo, *args, str(tmp_path), "--journal", pg_url],
                              capture_output=True, text=True, cwd=ROOT)  # fmt: skip

    assert cli("verify").returncode == 0
    out = tmp_path / "exported"
    out.mkdir()
    assert cli("export", "--format", "jsonl", "--out", str(out)).returncode == 0
    assert subprocess.run([*lit_hpo, "verify", str(out)], cwd=ROOT).returncode == 0
    assert "trial" in cli("status").stdout
    # A forged row (someone with write access to the table): verify names it.
    with psycopg.connect(pg_url, autocommit=True) as connection:
        connection.execute(
            "UPDATE lit_hpo_journal SET body = replace(body, '0.5', '\"x\"') "
            "WHERE study = %s AND body LIKE '%%report%%'", (str(tmp_path),)
        )  # fmt: skip
    bad = cli("verify")
    assert bad.returncode == 1 and "record 4" in bad.stdout, bad.stdout + bad.stderr


def test_tune_keeps_its_journal_on_the_server(tmp_path: Path, pg_url: str) -> None:
    """``lit_hpo.tune(..., journal=URL)``: the workers, their heartbeats and
    ``lit_hpo.report`` all write to the server; nothing to journal.jsonl."""
    from lit_hpo import loguniform, randint, tune
    from tests import tune_objectives as objectives

    space = {"learning_rate": loguniform(1e-2, 1), "batch_size": randint(32, 256), "max_epochs": 3}
    study = tune(objectives.curve, space, study_dir=tmp_path / "s", max_trials=6, n_workers=2,
                 max_wallclock_time=None, grace_period=1, journal=pg_url)  # fmt: skip
    assert len(study.trials) == 6 and set(study.trials.status) <= {"completed", "stopped"}
    assert not (tmp_path / "s" / "journal.jsonl").exists()
    again = PgJournal(pg_url, str(tmp_path / "s")).read(0)[0]
    assert sum(r["op"] == "report" for r in again) == len(study.results) > 6
