"""When a study stops starting trials because it cannot work as configured."""

from __future__ import annotations

from lit_hpo.policy import SAME_ERROR, may_start_trial, misconfigured
from lit_hpo.summary import misconfigured_message
from tests import records as r

TRACEBACK = "Traceback (most recent call last):\n  ...\nFileNotFoundError: no FashionMNIST"


def _failed(trial: int, error: str = TRACEBACK, reason: str = "error", time: float = 1.0) -> list:
    return [r.claim(trial, time=time),
            r.end(trial, "failed", time=time, reason=reason, error=error)]  # fmt: skip


def test_the_same_error_in_the_first_trials_stops_the_study() -> None:
    records = [r.header(), r.session()]
    for trial in range(SAME_ERROR - 1):
        records += _failed(trial)
    assert misconfigured(r.state_of(*records)) is None  # two alike: not yet
    state = r.state_of(*records, *_failed(SAME_ERROR - 1))
    assert misconfigured(state).trial_id == SAME_ERROR - 1
    assert not may_start_trial(state, 2.0)
    message = misconfigured_message(misconfigured(state))
    assert f"the first {SAME_ERROR} trials failed with the same error" in message
    assert "FileNotFoundError: no FashionMNIST" in message and "rerun the same command" in message


def test_different_errors_or_a_report_keep_the_study_going() -> None:
    records = [r.header(), r.session()]
    for trial in range(SAME_ERROR):
        records += _failed(trial, error=f"ValueError: config {trial} is bad")
    assert misconfigured(r.state_of(*records)) is None
    alike = [r.header(), r.session(), r.claim(0), r.report(0, 1, 0.5), r.end(0, "completed")]
    for trial in range(1, SAME_ERROR + 1):
        alike += _failed(trial)
    assert misconfigured(r.state_of(*alike)) is None  # a trial reported: configs can work


def test_a_rerun_after_the_fix_goes_on() -> None:
    """Failures (and a missing callback) of an earlier run do not stop the next one."""
    records = [r.header(), r.session(time=0.0), *_failed(0, reason="no_report")]
    for trial in range(1, SAME_ERROR + 1):
        records += _failed(trial)
    assert misconfigured(r.state_of(*records)) is not None
    rerun = r.state_of(*records, r.session(time=10.0))
    assert misconfigured(rerun) is None and may_start_trial(rerun, 11.0)


def test_an_error_is_shown_without_the_control_characters_a_journal_line_may_carry() -> None:
    """A traceback's tail is any text (a user's exception message may hold color codes,
    so replay accepts it), but it reaches a terminal only as printable characters."""
    from lit_hpo.policy import error_line
    from lit_hpo.progress import end_text

    error = "Traceback (most recent call last):\nValueError: \x1b[31mred\x1b[0m\x07"
    state = r.state_of(r.header(), r.session(), *_failed(0, error=error))
    assert error_line(state.trials[0]) == "ValueError: ?[31mred?[0m?"
    assert end_text(state.trials[0], "validation_error").endswith(": ValueError: ?[31mred?[0m?")


def test_an_error_is_the_whole_exception_after_the_last_frame() -> None:
    """Hydra's InstantiationException spreads over three lines after the last frame (what
    failed, the cause, the config key); all three are the error, not just the last."""
    from lit_hpo.policy import error_line

    hydra = (
        "Traceback (most recent call last):\n"
        '  File "x.py", line 1, in <module>\n'
        "    main()\n"
        "ValueError: the cause\n\n"
        "The above exception was the direct cause of the following exception:\n\n"
        "Traceback (most recent call last):\n"
        '  File "_instantiate2.py", line 138, in _call_target\n'
        "    raise InstantiationException(_with_full_key(msg, full_key)) from e\n"
        "hydra.errors.InstantiationException: Error in call to target 'models.LeNet':\n"
        "TypeError(\"'>' not supported between instances of 'ListConfig' and 'int'\")\n"
        "full_key: model\n"
    )
    state = r.state_of(r.header(), r.session(), *_failed(0, error=hydra),
                       *_failed(1, error="plain message\nsecond line"),
                       *_failed(2, error="x" * 1000))  # fmt: skip
    assert error_line(state.trials[0]) == (
        "hydra.errors.InstantiationException: Error in call to target 'models.LeNet': "
        "TypeError(\"'>' not supported between instances of 'ListConfig' and 'int'\") "
        "full_key: model"
    )
    assert error_line(state.trials[1]) == "second line"  # no traceback: its last line
    assert error_line(state.trials[2]) == "x" * 397 + "..."
