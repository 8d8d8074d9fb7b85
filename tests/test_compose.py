"""Trial configs: the once-composed base + values must equal Hydra's full composition."""

from __future__ import annotations

import pytest
from hydra._internal.config_loader_impl import ConfigLoaderImpl
from hydra._internal.utils import create_config_search_path
from hydra.types import RunMode
from omegaconf import OmegaConf

from lit_hpo.compose import TrialComposer
from tests.conftest import ROOT


@pytest.fixture
def loader() -> ConfigLoaderImpl:
    return ConfigLoaderImpl(config_search_path=create_config_search_path(str(ROOT / "conf")))


def _composer(loader: ConfigLoaderImpl, *run: str) -> TrialComposer:
    master = loader.load_configuration("config", ["hpo=asha", *run], run_mode=RunMode.MULTIRUN)
    return TrialComposer(loader, master, ["hydra.sweep.dir=/tmp/study", *run])


def test_value_keys_take_the_fast_path_and_match_hydra(loader: ConfigLoaderImpl) -> None:
    compose = _composer(loader, "trainer.max_epochs=3", "model=mlp")
    first = compose({"model.learning_rate": 0.25, "data.batch_size": 64})
    assert compose.fast is True
    made = []
    for values in ({"model.learning_rate": 0.0123, "data.batch_size": 255},
                   {"model.learning_rate": 1.0, "data.batch_size": 32}):  # fmt: skip
        quick = compose(values)
        made.append(quick)
        full = compose._full([f"model.learning_rate={values['model.learning_rate']}",
                              f"data.batch_size={values['data.batch_size']}"])  # fmt: skip
        assert OmegaConf.to_yaml(quick) == OmegaConf.to_yaml(full)
        assert quick.model.learning_rate == values["model.learning_rate"]
        assert type(quick.data.batch_size) is int and quick.trainer.max_epochs == 3
        assert quick.model._target_ == "models.DropoutMLP"  # the run's group choice stays
        assert list(quick.hydra.overrides.task)[-2:] == [
            f"model.learning_rate={values['model.learning_rate']}",
            f"data.batch_size={values['data.batch_size']}",
        ]
    # copies of the base: trials never share (or change) a config
    assert [c.model.learning_rate for c in (first, *made)] == [0.25, 0.0123, 1.0]
    assert compose({"model.learning_rate": 0.5, "data.batch_size": 99}) is not made[-1]


def test_a_forked_worker_inherits_the_decision_and_a_sent_composer_decides_again(
    loader: ConfigLoaderImpl, monkeypatch: pytest.MonkeyPatch
) -> None:
    import os
    import pickle

    compose = _composer(loader, "trainer.max_epochs=3")
    compose({"model.learning_rate": 0.25, "data.batch_size": 64})  # the -m process's check
    full_compositions: list[list[str]] = []
    real = ConfigLoaderImpl.load_sweep_config

    def counted(self: ConfigLoaderImpl, master: object, overrides: list[str]) -> object:
        full_compositions.append(overrides)
        return real(self, master, overrides)

    monkeypatch.setattr(ConfigLoaderImpl, "load_sweep_config", counted)
    # A real fork, as a CPU worker starts: its first trial is a copy of the inherited base.
    read, write = os.pipe()
    pid = os.fork()
    if pid == 0:  # the child reports how many full compositions its first trial made
        try:  # and never returns into pytest, whatever happens
            config = compose({"model.learning_rate": 0.5, "data.batch_size": 32})
            ok = config.model.learning_rate == 0.5 and config.trainer.max_epochs == 3
            os.write(write, f"{len(full_compositions)} {ok}".encode())
        finally:
            os._exit(0)
    os.close(write)
    assert os.read(read, 100).decode() == "0 True"
    os.waitpid(pid, 0)
    # Sent to another process (fork server, SLURM task): no decision, no base; it composes
    # and compares again there, and still gives the same trial config.
    sent = pickle.loads(pickle.dumps(compose))
    assert (sent.fast, compose.fast) == (None, True)
    config = sent({"model.learning_rate": 0.5, "data.batch_size": 32})
    assert sent.fast is True and len(full_compositions) == 2  # the trial, then the base
    assert OmegaConf.to_yaml(config) == OmegaConf.to_yaml(
        compose({"model.learning_rate": 0.5, "data.batch_size": 32})
    )


def test_a_key_that_selects_a_config_group_keeps_full_composition(loader: ConfigLoaderImpl) -> None:
    compose = _composer(loader)
    assert compose({"model": "mlp"}).model._target_ == "models.DropoutMLP"
    assert compose.fast is False
    assert compose({"model": "lenet"}).model._target_ == "models.LeNet"


@pytest.mark.parametrize(
    "value",
    ["/studies/my study ünï 日本", "a\\b", "ends\\", "it's", "\\'", "x\\\\'y", "", 'q"q', "é,è",
     1e-05, 3, 0.1, True, None, [1, "é", "a b"]],
)  # fmt: skip
def test_overrides_keep_their_values_through_hydras_grammar(value: object) -> None:
    from hydra.core.override_parser.overrides_parser import OverridesParser

    from lit_hpo.compose import format_override

    parsed = OverridesParser.create().parse_override(format_override("model.name", value))
    assert parsed.value() == value and type(parsed.value()) is type(value)


def test_a_renamed_hydra_internal_falls_back_to_full_composition_with_one_warning(
    loader: ConfigLoaderImpl, monkeypatch: pytest.MonkeyPatch
) -> None:
    def renamed() -> None:  # what importing the private names does on a Hydra that lacks them
        raise ImportError("cannot import name 'get_overrides_dirname'")

    monkeypatch.setattr("lit_hpo.compose.hydra_internals", renamed)
    compose = _composer(loader, "trainer.max_epochs=3")
    with pytest.warns(RuntimeWarning, match="composed in full instead"):
        first = compose({"model.learning_rate": 0.25, "data.batch_size": 64})
    assert compose.fast is False
    second = compose({"model.learning_rate": 0.5, "data.batch_size": 32})  # no second warning
    assert first.model.learning_rate == 0.25 and second.data.batch_size == 32


def test_each_copy_of_the_base_is_a_whole_and_separate_config() -> None:
    from lit_hpo.compose import copier

    base = OmegaConf.create({"model": {"lr": 0.1, "layers": [1, 2]}, "name": "${model.lr}"})
    OmegaConf.set_struct(base, True)
    fresh = copier(base)
    one, two = fresh(), fresh()
    one.model.lr, two.model.layers[0] = 0.5, 7
    assert (one.name, two.name, base.name) == (0.5, 0.1, 0.1)  # interpolations stay live
    assert list(base.model.layers) == [1, 2] and OmegaConf.is_struct(one)
    # A value that does not pickle (allow_objects): copied with copy.deepcopy instead.
    local = OmegaConf.create({"f": lambda: 1}, flags={"allow_objects": True})
    assert copier(local)().f() == 1


def test_a_copy_keeps_a_structured_nodes_class_even_once_its_module_was_reimported(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Hydra imports its plugins again when it scans them: the launcher's config class in
    a composed config is then no longer the one its module names (plain pickle refuses)."""
    import dataclasses
    import pickle

    from lit_hpo.compose import copier

    @dataclasses.dataclass
    class LauncherConf:  # a local class: pickle cannot find it by name either
        n: int = 1

    base = OmegaConf.create({"launcher": LauncherConf()})
    with pytest.raises((pickle.PicklingError, AttributeError)):
        pickle.dumps(base)
    fresh = copier(base)

    def no_deepcopy(*args: object, **kwargs: object) -> None:
        raise AssertionError("copied with copy.deepcopy, not from the pickled bytes")

    monkeypatch.setattr("copy.deepcopy", no_deepcopy)
    copy = fresh()
    assert OmegaConf.get_type(copy, "launcher") is LauncherConf and copy.launcher.n == 1
    copy.launcher.n = 2
    assert base.launcher.n == 1
