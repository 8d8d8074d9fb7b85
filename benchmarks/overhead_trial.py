"""One Syne Tune trial of ``benchmarks/overhead.py`` (its LocalBackend entry point).

Syne Tune starts a fresh process per trial: this script. It sleeps ``--epoch_sleep``
per epoch and reports ``validation_error`` through ``syne_tune.Reporter`` — as a plain
loop (variant a), or as ``SleepyModule`` under a Lightning Trainer that reports at every
validation end (variant b: the process imports torch and Lightning, as every real
Syne Tune trial does). Stamps go to ``$BENCH_STAMPS/<pid>.json``.
"""

import time

T_START = time.time()  # first statement: the interpreter is up, nothing imported yet

import argparse  # noqa: E402
import json  # noqa: E402
import os  # noqa: E402
import sys  # noqa: E402

LIGHTNING = "--lightning" in sys.argv and sys.argv[sys.argv.index("--lightning") + 1] == "1"
if LIGHTNING:
    import lightning as L
    from sleepy import SleepyData, SleepyModule, trainer

from syne_tune import Reporter  # noqa: E402
from workload import metric  # noqa: E402

T_IMPORTED = time.time()


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--x", type=float, required=True)
    parser.add_argument("--epochs", type=int, required=True)
    parser.add_argument("--epoch_sleep", type=float, required=True)
    parser.add_argument("--lightning", type=int, default=0)
    args, _ = parser.parse_known_args()
    report = Reporter()
    stamps = {"start": T_START, "imported": T_IMPORTED}
    if LIGHTNING:

        class Report(L.Callback):
            def on_validation_end(self, trainer: L.Trainer, module: L.LightningModule) -> None:
                if not trainer.sanity_checking:
                    value = float(trainer.callback_metrics["validation_error"])
                    report(epoch=trainer.current_epoch + 1, validation_error=value)

        module = SleepyModule(args.x, args.epoch_sleep)
        trainer(args.epochs, [Report()]).fit(module, SleepyData())
        stamps["fit_start"] = module.stamps["fit_start"]
    else:
        for epoch in range(1, args.epochs + 1):
            time.sleep(args.epoch_sleep)
            report(epoch=epoch, validation_error=metric(args.x, epoch))
    stamps["end"] = time.time()
    directory = os.environ.get("BENCH_STAMPS")
    if directory:
        with open(os.path.join(directory, f"{os.getpid()}.json"), "w") as file:
            json.dump(stamps, file)


if __name__ == "__main__":
    main()
