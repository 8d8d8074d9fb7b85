"""The study directory is untrusted input: crafted journal lines, a full disk, stale
attempts, planted symlinks. Every case runs real files (and, where it says so, real
processes); bad input must end with a clear message and an untouched journal."""

from __future__ import annotations

import json
import os
import pickle
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from lit_hpo import load_study
from lit_hpo.cli import main
from lit_hpo.journal import Journal, JournalCorruptError, JournalWriteError
from lit_hpo.repair import RepairRefusedError, repair
from lit_hpo.spec import spec_from_config
from lit_hpo.study import StudyClient
from tests.conftest import (
    ROOT,
    SEEDS,
    SLEEPY,
    SMALL,
    fill,
    running_trials,
    small_disk,
    study_env,
    wait_for,
)


@pytest.fixture
def study(recorded_study: Path) -> Path:
    return recorded_study


def _records(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text().splitlines()]


def _trials(study: Path) -> int:
    return len(load_study(study).state.trials)


def _next_claim(study: Path, config: dict) -> dict:
    return {"op": "claim", "trial": _trials(study), "worker": 0, "config": config,
            "time": time.time() - 60}  # fmt: skip


def _true_claim(study: Path) -> dict:
    """The claim lit_hpo itself would write next (the config the seed gives the id)."""
    return _next_claim(study, StudyClient(study).config_of(_trials(study)))


def _lost(trial: int) -> dict:
    return {"op": "lost", "trial": trial, "attempt": 0, "reason": "worker_died",
            "time": time.time() - 30}  # fmt: skip


GOOD = {"model.learning_rate": 0.1, "data.batch_size": 128}
# (name, what to append given the recorded study's records, expected message)
CRAFTED = [
    ("code-via-extra-config-keys",
     lambda s: [_next_claim(s, {**GOOD, "+model.evil._target_": "torch.load"})],
     r"config has the keys"),
    ("trial-dir-outside-the-study",
     lambda s: [_next_claim(s, {**GOOD, "hydra.sweep.subdir": "../../x"})],
     r"config has the keys"),
    ("value-outside-its-domain",
     lambda s: [_next_claim(s, {**GOOD, "data.batch_size": 10**6})],
     r"data.batch_size=1000000, outside"),
    ("duplicated-claim-line",
     lambda s: [_records(s / "journal.jsonl")[2]],
     r"claims trial 0, but the next trial id is"),
    ("negative-trial-id",
     lambda s: [{**_records(s / "journal.jsonl")[4], "trial": -1}],
     r"names trial -1"),
    ("boolean-trial-id",
     lambda s: [{**_records(s / "journal.jsonl")[4], "trial": True}],
     r"names trial True"),
    ("report-for-a-trial-never-claimed",
     lambda s: [{**_records(s / "journal.jsonl")[4], "trial": 999}],
     r"names trial 999, but trials 0\.\.\d+ exist"),
    ("negative-epoch-fake-best",
     lambda s: [_true_claim(s), {"op": "report", "trial": _trials(s), "epoch": -1,
                "value": 0.0001, "decision": "continue", "time": time.time()}],
     r"'epoch' is -1"),
    ("second-header",
     lambda s: [_records(s / "journal.jsonl")[0]],
     r"second one"),
    ("far-future-time-spends-the-budget",
     lambda s: [{"op": "session", "time": time.time() + 10**7, "n_workers": 1,
                 "budget": {"max_wallclock_time": 300, "max_trials": None}}],
     r"ahead of this host's clock"),
    ("unknown-status",
     lambda s: [_true_claim(s),
                {"op": "end", "trial": _trials(s), "status": "hacked", "time": time.time()}],
     r"status is 'hacked'"),
    ("non-text-error-breaks-status",
     lambda s: [_true_claim(s), {"op": "end", "trial": _trials(s), "status": "failed",
                "reason": "error", "error": 5, "time": time.time()}],
     r"'error' is 5, not text"),
    ("non-text-reason-skips-the-retry-count",
     lambda s: [_true_claim(s), {**_lost(_trials(s)), "reason": ["interrupted"]}],
     r"'reason' is \['interrupted'\], not text"),
    ("non-text-report-reason",
     lambda s: [_true_claim(s), {"op": "report", "trial": _trials(s), "epoch": 1,
                "value": 0.5, "decision": "stop", "reason": {"a": 1}, "time": time.time()}],
     r"'reason' is \{'a': 1\}, not text"),
    ("terminal-escape-in-a-reason",
     lambda s: [_true_claim(s), {**_lost(_trials(s)), "reason": "\x1b]0;owned\x07"}],
     r"'reason' is .*, not printable text"),
    ("non-number-pid",
     lambda s: [{**_true_claim(s), "pid": "1; rm -rf ~"}],
     r"'pid' is '1; rm -rf ~', not an integer >= 1"),
]  # fmt: skip


@pytest.mark.parametrize("name, crafted, message", CRAFTED, ids=[c[0] for c in CRAFTED])
def test_a_crafted_line_fails_closed_everywhere_and_leaves_the_journal_untouched(
    study: Path, name: str, crafted, message: str, capsys: pytest.CaptureFixture[str]
) -> None:
    path = study / "journal.jsonl"
    with open(path, "a") as file:
        for record in crafted(study):
            file.write(json.dumps(record) + "\n")
    before = path.read_bytes()
    line = before.count(b"\n")
    with pytest.raises(JournalCorruptError, match=rf"line {line} .*{message}.*lit-hpo repair"):
        load_study(study)
    assert main(["status", str(study)]) == 2  # the CLI says so too, without a traceback
    assert f"line {line} " in capsys.readouterr().err
    assert main(["verify", str(study)]) == 1
    assert f"journal.jsonl:{line}:" in capsys.readouterr().out
    assert path.read_bytes() == before
    assert main(["repair", str(study)]) == 0  # the way out: quarantine that line alone
    assert load_study(study).state.n_records == line - 1


def test_a_forged_config_is_never_run_when_its_trial_is_resumed(study: Path) -> None:
    """In-domain values that are not what the seed gives trial N: the worker that would
    resume it recomputes the config and refuses."""
    forged = _next_claim(study, {"model.learning_rate": 0.5, "data.batch_size": 64})
    session = {"op": "session", "time": time.time() - 90, "n_workers": 1,
               "budget": {"max_wallclock_time": None, "max_trials": 100}}  # fmt: skip
    with open(study / "journal.jsonl", "a") as file:
        for record in (session, forged, _lost(forged["trial"])):
            file.write(json.dumps(record) + "\n")
    client = StudyClient(study)
    with pytest.raises(JournalCorruptError, match=r"not the configuration the study's seed"):
        client.claim(0)
    assert main(["verify", str(study)]) == 1


PAYLOAD = """
import pathlib
class Boom:
    def __reduce__(self):
        return (pathlib.Path.touch, (pathlib.Path({marker!r}),))
"""


@pytest.mark.slow
def test_a_rerun_never_runs_code_from_a_journal_line(tmp_path: Path, fashion_root: Path) -> None:
    """The reported attack, end to end: a claim whose config instantiates torch.load on a
    planted pickle, then a `lost` record, then the owner's rerun (a real Hydra process)."""
    study = tmp_path / "study"
    overrides = ["hpo=asha", "model=mlp", "hpo.n_workers=1", "hpo.max_trials=1",
                 "hpo.max_wallclock_time=null", "trainer.max_epochs=2", *SMALL]  # fmt: skip
    command = [sys.executable, "train.py", "-m", *overrides, f"hydra.sweep.dir={study}"]
    run = subprocess.run(command, cwd=ROOT, env=study_env(fashion_root), capture_output=True,
                         text=True, timeout=240)  # fmt: skip
    assert run.returncode == 0, run.stdout + run.stderr
    marker = tmp_path / "owned"
    namespace: dict = {}
    exec(PAYLOAD.format(marker=str(marker)), namespace)
    (tmp_path / "evil.pkl").write_bytes(pickle.dumps(namespace["Boom"]()))
    config = {**load_study(study).state.trials[0].config,
              "+model.evil._target_": "torch.load",
              "+model.evil._args_": [str(tmp_path / "evil.pkl")],
              "+model.evil.weights_only": False}  # fmt: skip
    with open(study / "journal.jsonl", "a") as file:
        file.write(json.dumps(_next_claim(study, config)) + "\n" + json.dumps(_lost(1)) + "\n")
    rerun = subprocess.run([*command[:-1], "hpo.max_trials=3", command[-1]], cwd=ROOT,
                           env=study_env(fashion_root), capture_output=True, text=True,
                           timeout=240)  # fmt: skip
    assert rerun.returncode != 0
    assert "cannot be replayed" in rerun.stderr + rerun.stdout
    assert not marker.exists()


def test_a_full_disk_loses_no_acknowledged_append(tmp_path: Path) -> None:
    """1,000 appends at the edge of a full (real, 1 MiB tmpfs) filesystem: each one is
    either on disk whole or refused with a clear error; nothing acknowledged is lost."""
    with small_disk(tmp_path / "disk", "1m") as disk:
        journal = Journal(disk / "journal.jsonl")
        filler = fill(disk / "filler", leave=64 * 1024)
        acknowledged, refused = [], 0
        for index in range(1000):
            record = {"op": "report", "i": index, "pad": "x" * (50 + (index * 37) % 900)}
            try:
                journal.append([record])
            except JournalWriteError as error:
                refused += 1
                assert "the disk is full" in str(error) and "journal is unchanged" in str(error)
                if refused % 10 == 0:  # free a little now and then: stay at the edge
                    size = filler.stat().st_size
                    os.truncate(filler, max(0, size - 8192))
                continue
            acknowledged.append(index)
        records, _ = journal.read(0)
        assert [r["i"] for r in records] == acknowledged  # 0 lost, no fragments
        assert refused > 100 and len(acknowledged) > 100  # it really was at the edge
        assert (disk / "journal.jsonl").read_bytes().endswith(b"\n")


def test_a_stale_attempt_never_ends_pauses_or_reports(tmp_path: Path) -> None:
    client = StudyClient(tmp_path)
    client.open(spec_from_config(SEEDS), n_workers=1)
    claim = client.claim(0)
    assert claim is not None
    client.report(claim.trial_id, 1, 0.5, 0)
    client.lose(claim.trial_id, 0, "lease_expired")  # pending; not resumed yet
    before = (tmp_path / "journal.jsonl").read_bytes()
    client.end(claim.trial_id, "completed", attempt=0)
    client.pause(claim.trial_id, 0)
    assert client.report(claim.trial_id, 2, 0.4, 0).reason == "stale"
    assert not client.heartbeat(claim.trial_id, 0)
    assert (tmp_path / "journal.jsonl").read_bytes() == before
    assert client.refresh().trials[claim.trial_id].status == "pending"


def test_repair_refuses_a_symlinked_journal_and_never_moves_the_header(
    study: Path, tmp_path: Path
) -> None:
    outside = tmp_path / "rcfile"
    outside.write_text("# a file outside the study\n")
    planted = tmp_path / "planted"
    planted.mkdir()
    (planted / "journal.jsonl").symlink_to(outside)
    with pytest.raises(RepairRefusedError, match="symbolic link"):
        repair(planted / "journal.jsonl")
    assert outside.read_text() == "# a file outside the study\n"
    # A newer format's header stays where it is: "upgrade lit_hpo".
    path = study / "journal.jsonl"
    lines = path.read_text().splitlines(keepends=True)
    header = json.loads(lines[0])
    path.write_text(json.dumps({**header, "format": 2}) + "\n" + "".join(lines[1:]))
    before = path.read_bytes()
    with pytest.raises(RepairRefusedError, match="upgrade lit_hpo"):
        repair(path)
    assert path.read_bytes() == before


def test_a_journal_planted_as_a_link_is_never_read_through(study: Path, tmp_path: Path) -> None:
    """A link in the journal's place (to a real study's journal elsewhere, here) is
    refused by name: its target is never read, so never replayed or echoed in an error."""
    from lit_hpo import load_study
    from lit_hpo.safefiles import UnsafePathError

    planted = tmp_path / "planted"
    planted.mkdir()
    (planted / "journal.jsonl").symlink_to(study / "journal.jsonl")
    with pytest.raises(UnsafePathError, match=r"journal\.jsonl is a symbolic link"):
        load_study(planted)
    assert load_study(study).state.trials  # the real file itself still loads


def test_a_fifo_planted_as_the_journal_is_refused_not_waited_on(tmp_path: Path) -> None:
    """Opening a FIFO for reading waits for a writer: in a subprocess, so that the old
    behaviour fails the test by its timeout instead of hanging the suite."""
    planted = tmp_path / "planted"
    planted.mkdir()
    os.mkfifo(planted / "journal.jsonl")
    code = (
        f"from lit_hpo.study import StudyClient\n"
        f"StudyClient({str(planted)!r}).refresh()"
    )  # what every worker step reads
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                            timeout=60)  # fmt: skip
    assert result.returncode != 0
    assert "journal.jsonl is not a regular file" in result.stderr


def test_pids_no_process_can_have_do_not_block_or_crash_unlock(
    study: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """unlock and repair first ask whether the journal's processes still run: a line whose
    pid names a process group (0, -1), a bool or a number beyond any pid is none."""
    path = study / "journal.jsonl"
    hostile = [{"op": "note", "pid": pid} for pid in (0, -1, True, 2**62)]
    path.write_bytes(path.read_bytes() + b"".join(json.dumps(r).encode() + b"\n" for r in hostile))
    assert main(["unlock", str(study)]) == 0
    planted = tmp_path / "planted"
    planted.mkdir()
    (planted / "journal.jsonl").symlink_to(path)
    for command in ("unlock", "verify"):  # never read through a link
        assert main([command, str(planted)]) != 0
        assert "journal.jsonl is a symbolic link" in capsys.readouterr().err


def test_repair_strips_a_bom_keeps_the_mode_and_survives_deep_nesting(study: Path) -> None:
    path = study / "journal.jsonl"
    os.chmod(path, 0o600)
    data = path.read_bytes()
    deep = b"[" * 100_000 + b"]" * 100_000
    path.write_bytes(b"\xef\xbb\xbf" + data + deep + b"\n")
    assert main(["verify", str(study)]) == 1
    assert main(["unlock", str(study)]) == 0
    backup, quarantine, moved = repair(path)
    assert moved == 2  # the BOM and the deep line
    assert path.read_bytes() == data
    assert {os.stat(p).st_mode & 0o777 for p in (path, backup, quarantine)} == {0o600}
    assert load_study(study).state.n_records == data.count(b"\n")


def _run_command(study: Path, *extra: str) -> list[str]:
    """Two workers, trials long enough (a few seconds) to be caught running."""
    return [sys.executable, "train.py", "-m", "hpo=asha", "model=mlp", "hpo.n_workers=2",
            "hpo.max_wallclock_time=600", "trainer.max_epochs=3",
            "trainer.limit_train_batches=300", "trainer.limit_val_batches=5", *extra,
            f"hydra.sweep.dir={study}"]  # fmt: skip


def _start_run(study: Path, fashion_root: Path, *extra: str) -> subprocess.Popen:
    return subprocess.Popen(
        _run_command(study, *extra), cwd=ROOT, env=study_env(fashion_root),
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, start_new_session=True,
    )  # fmt: skip


def _rerun(study: Path, fashion_root: Path, max_trials: int) -> subprocess.CompletedProcess:
    return subprocess.run(_run_command(study, f"hpo.max_trials={max_trials}"), cwd=ROOT,
                          env=study_env(fashion_root), capture_output=True, text=True,
                          timeout=300)  # fmt: skip


def _worker_pids(study: Path) -> set[int]:
    logs = "".join(p.read_text() for p in (study / "workers").glob("*.log"))
    return {int(pid) for pid in re.findall(r"worker \d+: pid (\d+)", logs)}


def _alive(pids: set[int]) -> set[int]:
    from lit_hpo.checkpoints import pid_alive

    return {pid for pid in pids if pid_alive(pid) and not _zombie(pid)}


def _zombie(pid: int) -> bool:
    try:
        return Path(f"/proc/{pid}/stat").read_text().split(") ")[1].startswith("Z")
    except (OSError, IndexError):
        return False


def _two_running(study: Path) -> bool:
    return sum(bool(t.reports) for t in running_trials(study)) == 2


@pytest.mark.slow
def test_a_second_run_on_a_live_study_is_refused(tmp_path: Path, fashion_root: Path) -> None:
    first = _start_run(tmp_path, fashion_root)
    try:
        wait_for(lambda: len(running_trials(tmp_path)) == 2)
        before = (tmp_path / "journal.jsonl").read_bytes()
        second = _start_run(tmp_path, fashion_root)
        out, _ = second.communicate(timeout=120)
        assert second.returncode != 0
        assert f"already being run (pid {first.pid} on host" in out, out
        assert (tmp_path / "journal.jsonl").read_bytes().startswith(before)
        assert all(t.status == "running" for t in running_trials(tmp_path))
    finally:
        os.killpg(first.pid, signal.SIGKILL)
        first.communicate()


def test_a_study_directory_it_cannot_write_is_refused_before_anything_starts(
    tmp_path: Path,
) -> None:
    """A read-only disk, and a run.lock planted as a link to a file outside the study:
    `-m` refuses at once, naming the directory and the fix, with no traceback, and
    writes nothing (never through the link). So does a worker joining a study there."""
    outside = tmp_path / "owners_file"
    outside.write_text("precious\n")
    planted = tmp_path / "planted"
    planted.mkdir()
    (planted / "run.lock").symlink_to(outside)
    with small_disk(tmp_path / "disk", "4m") as disk:
        (disk / "study").mkdir()
        joined = [sys.executable, "train.py", "-m", *SLEEPY, "model.epoch_sleep=0",
                  "trainer.max_epochs=1", "hpo.max_trials=1", f"hydra.sweep.dir={disk / 'old'}"]  # fmt: skip
        created = subprocess.run(joined, cwd=ROOT, capture_output=True, text=True, timeout=120)
        assert created.returncode == 0, created.stdout + created.stderr
        journal = (disk / "old" / "journal.jsonl").read_bytes()
        subprocess.run(["mount", "-o", "remount,ro", str(disk)], check=True)
        for study, why in [(disk / "study", "Read-only file system"),
                           (planted, "run.lock is a symbolic link")]:  # fmt: skip
            run = subprocess.run([sys.executable, "train.py", "-m", "hpo=random",
                                  f"hydra.sweep.dir={study}"], cwd=ROOT, capture_output=True,
                                 text=True, timeout=120)  # fmt: skip
            out = run.stdout + run.stderr
            assert run.returncode == 1, out
            assert f"cannot run a study in {study}: " in out and why in out, out
            assert "hydra.sweep.dir=<dir>" in out and "Traceback" not in out, out
        # A worker joining an existing study there (hpo.worker, as on another host).
        run = subprocess.run([*joined, "++hpo.worker=3"], cwd=ROOT, capture_output=True,
                             text=True, timeout=120)  # fmt: skip
        out = run.stdout + run.stderr
        assert run.returncode == 1, out
        assert f"worker 3 cannot join the study in {disk / 'old'}: Read-only file system" in out
        assert "make the directory writable" in out and "Traceback" not in out, out
        assert (disk / "old" / "journal.jsonl").read_bytes() == journal
        assert sorted(p.name for p in planted.iterdir()) == ["run.lock"]
        assert outside.read_text() == "precious\n" and list((disk / "study").iterdir()) == []


@pytest.mark.slow
@pytest.mark.parametrize("sig", [signal.SIGKILL, signal.SIGTERM], ids=["SIGKILL", "SIGTERM"])
def test_killing_the_run_alone_leaves_no_worker_behind(
    tmp_path: Path, fashion_root: Path, sig: signal.Signals
) -> None:
    run = _start_run(tmp_path, fashion_root)
    wait_for(lambda: _two_running(tmp_path))
    workers = _worker_pids(tmp_path)
    assert len(workers) == 2
    killed = time.monotonic()
    os.kill(run.pid, sig)  # the -m process only, not its group
    out, _ = run.communicate(timeout=120)
    wait_for(lambda: not _alive(workers), timeout=10)
    print(f"{sig.name}: workers gone {time.monotonic() - killed:.2f} s after the signal")
    state = load_study(tmp_path).state
    if sig == signal.SIGTERM:  # like Ctrl-C: a message, the table, resumable trials
        assert run.returncode == 143, out
        assert "terminated (SIGTERM)" in out and "tuning status" in out
        assert {(t.status, t.reason) for t in state.trials} == {("pending", "interrupted")}
    else:  # the workers record their trials as interrupted themselves
        wait_for(lambda: not load_study(tmp_path).state.running(), timeout=10)
    rerun = _rerun(tmp_path, fashion_root, max_trials=2)
    assert rerun.returncode == 0, rerun.stdout + rerun.stderr
    assert "left trials" not in rerun.stdout  # nothing was still running
    trials = load_study(tmp_path).state.trials
    assert [t.attempt for t in trials] == [1, 1]
    assert all(t.status in ("completed", "stopped") for t in trials)


def test_worker_time_counts_only_time_inside_runs() -> None:
    from lit_hpo.results import busy_seconds, utilization
    from tests import records

    state = records.state_of(
        records.header(), records.session(0.0, n_workers=1), records.claim(0, time=1.0),
        records.report(0, 1, 0.5, time=5.0),  # then the whole run is killed
        records.session(1000.0, n_workers=1),  # the rerun, 1000 s later
        {"op": "lost", "trial": 0, "attempt": 0, "reason": "interrupted", "time": 1000.0},
    )  # fmt: skip
    assert busy_seconds(state.trials[0], now=1000.0) == 4.0
    assert utilization(state, now=1000.0) <= 1.0


@pytest.mark.slow
def test_a_metric_that_is_never_logged_ends_the_study_at_once(
    tmp_path: Path, fashion_root: Path
) -> None:
    started = time.monotonic()
    run = subprocess.run(
        [sys.executable, "train.py", "-m", "hpo=asha", "model=mlp", "hpo.n_workers=2",
         "hpo.metric=validation_eror", "hpo.max_wallclock_time=300", "trainer.max_epochs=2",
         *SMALL, f"hydra.sweep.dir={tmp_path}"],
        cwd=ROOT, env=study_env(fashion_root), capture_output=True, text=True, timeout=280,
    )  # fmt: skip
    assert run.returncode == 1, run.stdout + run.stderr
    assert "'validation_eror' was not logged" in run.stderr
    assert "validation_error" in run.stderr  # the names that were logged
    trials = load_study(tmp_path).state.trials
    assert 1 <= len(trials) <= 2 and {t.reason for t in trials} == {"metric_not_logged"}
    assert time.monotonic() - started < 120  # not the whole 300 s budget


@pytest.mark.slow
def test_trials_that_all_fail_alike_end_the_study_and_a_fixed_rerun_goes_on(
    tmp_path: Path, fashion_root: Path
) -> None:
    """No dataset: every trial would fail the same way for the whole budget. The study
    stops after the third, exit 1, with the error; the rerun with the data continues."""
    missing = tmp_path / "no_data"
    missing.mkdir()
    command = [sys.executable, "train.py", "-m", "hpo=asha", "model=mlp", "hpo.n_workers=2",
               "hpo.max_wallclock_time=300", "trainer.max_epochs=2", *SMALL,
               f"hydra.sweep.dir={tmp_path / 'study'}"]  # fmt: skip
    env = {**study_env(fashion_root), "LIT_HPO_DATA": str(missing)}
    started = time.monotonic()
    run = subprocess.run([*command, "data.download=false"], cwd=ROOT, env=env,
                         capture_output=True, text=True, timeout=280)  # fmt: skip
    assert run.returncode == 1, run.stdout + run.stderr
    assert "trials failed with the same error before any reported" in run.stderr
    assert "FashionMNIST was not found" in run.stderr
    trials = load_study(tmp_path / "study").state.trials
    assert 3 <= len(trials) <= 4 and {t.status for t in trials} == {"failed"}
    assert time.monotonic() - started < 120
    again = subprocess.run([*command, "hpo.max_trials=6", "hpo.max_wallclock_time=null"],
                           cwd=ROOT, env=study_env(fashion_root), capture_output=True,
                           text=True, timeout=280)  # fmt: skip
    assert again.returncode == 0, again.stdout + again.stderr
    assert any(t.reports for t in load_study(tmp_path / "study").state.trials)


def test_planted_symlinks_are_never_written_through(study: Path, tmp_path: Path) -> None:
    from lit_hpo.plots import save_figures
    from lit_hpo.safefiles import UnsafePathError, open_append

    outside = tmp_path / "owners_file"
    outside.write_text("precious\n")
    for name in ("incumbent.png", "results.csv", "trials.csv"):
        (study / name).symlink_to(outside)
    save_figures(load_study(study))
    assert main(["export", str(study)]) == 0
    assert outside.read_text() == "precious\n"
    assert not (study / "incumbent.png").is_symlink() and (study / "results.csv").is_file()
    (study / "workers").mkdir()
    (study / "workers" / "worker_0.log").symlink_to(outside)
    with pytest.raises(UnsafePathError, match="symbolic link"):
        open_append(study / "workers" / "worker_0.log")


@pytest.mark.slow
def test_a_unicode_study_path_and_a_planted_multirun_yaml(
    tmp_path: Path, fashion_root: Path
) -> None:
    study = tmp_path / "my study ünï 日本"
    study.mkdir()
    outside = tmp_path / "owners_file"
    outside.write_text("precious\n")
    (study / "multirun.yaml").symlink_to(outside)
    run = subprocess.run(
        [sys.executable, "train.py", "-m", "hpo=asha", "model=mlp", "hpo.n_workers=1",
         "hpo.max_trials=1", "hpo.max_wallclock_time=null", "trainer.max_epochs=2", *SMALL,
         f"hydra.sweep.dir='{study}'"],  # quoted, as on a shell: it has spaces
        cwd=ROOT, env=study_env(fashion_root), capture_output=True, text=True, timeout=240,
    )  # fmt: skip
    assert run.returncode == 0, run.stdout + run.stderr
    assert outside.read_text() == "precious\n"
    assert (study / "trial_0" / ".hydra" / "config.yaml").is_file()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["my study ünï 日本", "owners_file"]


@pytest.mark.slow
def test_a_study_that_fills_its_disk_stops_with_the_reason_and_resumes_losslessly(
    tmp_path: Path, fashion_root: Path
) -> None:
    with small_disk(tmp_path / "disk", "64m") as disk:
        study = disk / "study"
        overrides = ["hpo=asha", "model=mlp", "hpo.n_workers=2", "hpo.max_trials=4",
                     "hpo.max_wallclock_time=null", "trainer.max_epochs=3",
                     "trainer.limit_train_batches=100", "trainer.limit_val_batches=5",
                     f"hydra.sweep.dir={study}"]  # fmt: skip
        command = [sys.executable, "train.py", "-m", *overrides]
        run = subprocess.Popen(command, cwd=ROOT, env=study_env(fashion_root),
                               stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                               start_new_session=True)  # fmt: skip
        wait_for(lambda: any(t.reports for t in running_trials(study)))
        filler = fill(disk / "filler")  # the disk is now full
        before = len(Journal(study / "journal.jsonl").read(0)[0])
        out, _ = run.communicate(timeout=240)
        assert run.returncode == 74, out
        assert "the study stopped" in out and "the disk is full" in out, out
        assert len(Journal(study / "journal.jsonl").read(0)[0]) >= before  # every line whole
        filler.unlink()  # space is freed: the rerun continues the study
        rerun = subprocess.run(command, cwd=ROOT, env=study_env(fashion_root),
                               capture_output=True, text=True, timeout=300)  # fmt: skip
        assert rerun.returncode == 0, rerun.stdout + rerun.stderr
        study_state = load_study(study)
        assert len(study_state.state.trials) == 4
        assert {t.status for t in study_state.state.trials} <= {"completed", "stopped"}
        for _, epochs in study_state.results.groupby("trial_id").epoch:
            assert list(epochs) == list(range(1, len(epochs) + 1))  # nothing lost or repeated


def test_a_planted_checkpoint_directory_link_fails_the_trial_and_writes_nothing(
    tmp_path: Path,
) -> None:
    from lit_hpo.context import TrialContext, trial_context
    from lit_hpo.safefiles import UnsafePathError
    from tests.scripted import ScriptedModel, scripted_trainer

    client = StudyClient(tmp_path / "study")
    client.open(spec_from_config(SEEDS), n_workers=1)
    claim = client.claim(0)
    assert claim is not None
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    (tmp_path / "study" / "checkpoints").mkdir()
    (tmp_path / "study" / "checkpoints" / "trial_0").symlink_to(elsewhere)
    with (
        trial_context(TrialContext(str(tmp_path / "study"), claim.trial_id)),
        pytest.raises(UnsafePathError, match="symbolic link"),
    ):
        scripted_trainer(tmp_path).fit(ScriptedModel([0.4] * 10))
    assert list(elsewhere.iterdir()) == []


def test_a_worker_log_planted_as_a_link_or_fifo_is_not_read(tmp_path: Path) -> None:
    """The `-m` process reads a dead worker's last log line for its message: never
    through a link, and a FIFO is refused, not waited on (in a subprocess, so that the
    old behaviour fails by its timeout instead of hanging the suite)."""
    secret = tmp_path / "secret.txt"
    secret.write_text("a line from outside the study\n")
    (tmp_path / "link.log").symlink_to(secret)
    os.mkfifo(tmp_path / "fifo.log")
    code = (
        "from lit_hpo.launcher import _last_line\n"
        f"print(_last_line({str(tmp_path / 'link.log')!r}))\n"
        f"print(_last_line({str(tmp_path / 'fifo.log')!r}))"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                            timeout=60)  # fmt: skip
    assert result.returncode == 0, result.stderr
    assert result.stdout.splitlines() == ["a worker could not write to the journal"] * 2


def test_a_fifo_planted_as_a_worker_log_is_refused_not_waited_on(tmp_path: Path) -> None:
    """A worker appends its output to ``workers/worker_<n>.log``: a FIFO there, read by
    someone or by no one, is refused by name (in a subprocess, so that the old behaviour,
    an open that waits for a reader, fails by its timeout instead of hanging the suite)."""
    fifo = tmp_path / "worker_0.log"
    os.mkfifo(fifo)
    code = (
        "import os\n"
        "from lit_hpo.safefiles import UnsafePathError, open_append\n"
        "for reader in (False, True):\n"
        f"    held = os.open({str(fifo)!r}, os.O_RDONLY | os.O_NONBLOCK) if reader else None\n"
        "    try:\n"
        f"        open_append({str(fifo)!r})\n"
        "    except UnsafePathError as err:\n"
        "        print(err)\n"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                            timeout=60)  # fmt: skip
    assert result.returncode == 0, result.stderr
    refusal = f"{fifo} is not a regular file; lit_hpo writes only regular files in the study "
    assert result.stdout.splitlines() == [refusal + "directory. Remove it and rerun."] * 2


def _checkpoint(path: Path, epoch: int) -> Path:
    import torch

    path.parent.mkdir(parents=True, exist_ok=True)
    torch.save({"epoch": epoch, "state_dict": {"w": torch.zeros(2)}}, path)
    return path


def test_checkpoints_are_never_read_or_pruned_through_a_planted_link(tmp_path: Path) -> None:
    """A link at ``checkpoints/``, at ``checkpoints/trial_<id>/`` or in a checkpoint's
    place: resuming reads nothing through it (the trial fails, naming the link, or falls
    back to a real checkpoint) and pruning deletes nothing outside the study."""
    from lit_hpo import checkpoints as ck

    study, elsewhere = tmp_path / "study", tmp_path / "elsewhere"
    theirs = [_checkpoint(elsewhere / "trial_0" / f"epoch_{e}-attempt_0.ckpt", e) for e in (1, 2)]
    (study / "checkpoints").mkdir(parents=True)
    (study / "checkpoints" / "trial_0").symlink_to(elsewhere / "trial_0")
    top = tmp_path / "top"  # here checkpoints/ itself is the link
    top.mkdir()
    (top / "checkpoints").symlink_to(elsewhere)
    for planted in (study, top):
        ck.prune(planted, 0, keep=1)
        ck.prune(planted, 0, keep=0)
        assert all(path.exists() for path in theirs)
        with pytest.raises(FileNotFoundError, match=r"cannot be resumed: .*symbolic link"):
            ck.resume_point(planted, 0, [(1, 0), (2, 0)])
    # a link in the place of the newest checkpoint: the real older one is chosen
    real = _checkpoint(ck.checkpoint_path(tmp_path / "s2", 0, 1), 1)
    ck.checkpoint_path(tmp_path / "s2", 0, 2).symlink_to(theirs[1])
    assert ck.resume_point(tmp_path / "s2", 0, [(1, 0), (2, 0)]) == (1, real)
    with pytest.raises(FileNotFoundError, match="symbolic link"):
        ck.resume_point(tmp_path / "s2", 0, [(2, 0)])


def test_a_fifo_in_a_checkpoints_place_is_skipped_not_waited_on(tmp_path: Path) -> None:
    """In a subprocess, so that reading the FIFO (which waits for a writer) fails the
    test by its timeout instead of hanging the suite."""
    from lit_hpo import checkpoints as ck

    real = _checkpoint(ck.checkpoint_path(tmp_path, 0, 1), 1)
    os.mkfifo(ck.checkpoint_path(tmp_path, 0, 2))
    code = (
        "from lit_hpo import checkpoints as ck\n"
        f"print(ck.resume_point({str(tmp_path)!r}, 0, [(1, 0), (2, 0)]))\n"
        f"print(ck.load_problem(ck.checkpoint_path({str(tmp_path)!r}, 0, 2)))"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                            timeout=60)  # fmt: skip
    assert result.returncode == 0, result.stderr
    assert result.stdout.splitlines() == [
        f"(1, {real!r})",
        f"UnsafePathError: {ck.checkpoint_path(tmp_path, 0, 2)} is not a regular file; "
        "lit_hpo reads checkpoints only from a real file in the study directory. Remove it "
        "and rerun.",
    ]


@pytest.mark.slow
def test_a_study_started_from_inside_a_trial_is_refused_and_touches_nothing(
    tmp_path: Path, fashion_root: Path
) -> None:
    """What Lightning's `ddp` launcher does for rank 1: rerun the command line, with the
    trial's environment."""
    env = {**study_env(fashion_root), "LIT_HPO_STUDY_DIR": str(tmp_path), "LIT_HPO_TRIAL_ID": "0"}
    run = subprocess.run([sys.executable, "train.py", "-m", "hpo=asha", f"hydra.sweep.dir={tmp_path}"],
                         cwd=ROOT, env=env, capture_output=True, text=True, timeout=120)  # fmt: skip
    assert run.returncode != 0
    assert "a trial cannot start a study" in run.stderr
    assert list(tmp_path.iterdir()) == []


@pytest.mark.slow
def test_a_line_forged_during_a_run_stops_it_with_the_way_out_and_repair_lets_it_go_on(
    tmp_path: Path, fashion_root: Path
) -> None:
    run = _start_run(tmp_path, fashion_root, "hpo.max_trials=3")
    wait_for(lambda: _two_running(tmp_path))
    workers = _worker_pids(tmp_path)
    forged = {"op": "report", "trial": 999, "attempt": 0, "epoch": 1, "value": 0.0001,
              "decision": "continue", "time": time.time()}  # fmt: skip
    with open(tmp_path / "journal.jsonl", "a") as file:
        file.write(json.dumps(forged) + "\n")
    out, _ = run.communicate(timeout=120)
    assert run.returncode == 65, out
    assert "cannot be replayed" in out and "lit-hpo repair" in out, out
    wait_for(lambda: not _alive(workers), timeout=10)
    assert main(["repair", str(tmp_path)]) == 0
    rerun = _rerun(tmp_path, fashion_root, max_trials=3)
    assert rerun.returncode == 0, rerun.stdout + rerun.stderr
    assert {t.status for t in load_study(tmp_path).state.trials} <= {"completed", "stopped"}


@pytest.mark.slow
def test_a_rerun_on_a_headerless_journal_is_refused_and_writes_no_header(
    study: Path, fashion_root: Path
) -> None:
    path = study / "journal.jsonl"
    path.write_bytes(b"".join(path.read_bytes().splitlines(keepends=True)[1:]))
    before = path.read_bytes()
    run = subprocess.run([sys.executable, "train.py", "-m", "hpo=asha", f"hydra.sweep.dir={study}"],
                         cwd=ROOT, env=study_env(fashion_root), capture_output=True, text=True,
                         timeout=120)  # fmt: skip
    assert run.returncode != 0
    assert "does not start with a header" in run.stderr and "Traceback" not in run.stderr
    assert path.read_bytes() == before
