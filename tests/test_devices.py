from __future__ import annotations

import pytest

from lit_hpo.devices import default_n_workers, threads_per_worker, visible_gpus, worker_env


@pytest.mark.parametrize(
    "environ, count, expected",
    [
        pytest.param({}, 0, [], id="cpu-only"),
        pytest.param({}, 4, ["0", "1", "2", "3"], id="all-gpus"),
        pytest.param({"CUDA_VISIBLE_DEVICES": "2,3"}, 8, ["2", "3"], id="restricted"),
        pytest.param({"CUDA_VISIBLE_DEVICES": ""}, 8, [], id="hidden"),
        pytest.param({"CUDA_VISIBLE_DEVICES": "-1"}, 8, [], id="minus-one"),
        pytest.param(
            {"CUDA_VISIBLE_DEVICES": "GPU-ab12,GPU-cd34"}, 2, ["GPU-ab12", "GPU-cd34"], id="uuids"
        ),
    ],
)
def test_visible_gpus(environ: dict[str, str], count: int, expected: list[str]) -> None:
    assert visible_gpus(environ, count) == expected


def test_one_worker_per_gpu_each_pinned_to_its_own() -> None:
    gpus = ["2", "5"]
    n = default_n_workers(gpus, cpu_count=64)
    assert n == 2
    assert [worker_env(w, gpus) for w in range(n)] == [
        {"CUDA_VISIBLE_DEVICES": "2"},
        {"CUDA_VISIBLE_DEVICES": "5"},
    ]
    assert worker_env(2, gpus) == {"CUDA_VISIBLE_DEVICES": "2"}  # round-robin beyond


@pytest.mark.parametrize(
    "cpus, workers, threads",
    [pytest.param(2, 2, 1, id="this-machine"), pytest.param(1, 1, 1, id="one-core"),
     pytest.param(16, 2, 8, id="big-cpu")],
)  # fmt: skip
def test_cpu_defaults_do_not_oversubscribe(cpus: int, workers: int, threads: int) -> None:
    assert default_n_workers([], cpus) == workers
    assert threads_per_worker(workers, cpus) == threads
    assert worker_env(0, []) == {}


def test_multi_device_trials_get_their_own_gpu_groups() -> None:
    gpus = ["0", "1", "2", "3", "4", "5", "6", "7"]
    assert default_n_workers(gpus, 16, per_trial=2) == 4
    assert [worker_env(w, gpus, 2)["CUDA_VISIBLE_DEVICES"] for w in range(4)] == [
        "0,1", "2,3", "4,5", "6,7",
    ]  # fmt: skip
    assert worker_env(5, gpus, 3)["CUDA_VISIBLE_DEVICES"] == "3,4,5"  # round-robin over groups
    assert default_n_workers([], 2, per_trial=2) == 1  # CPU: the ranks share the cores
    with pytest.raises(ValueError, match=r"needs 4 GPUs \(trainer.devices=4\) but only 2"):
        default_n_workers(["0", "1"], 16, per_trial=4)
