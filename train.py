"""Train one model, or (with ``-m hpo=asha``) run a study of many.

python train.py                        # LeNet on FashionMNIST, 10 epochs
python train.py model=mlp              # d2l's DropoutMLP instead
python train.py -m hpo=asha            # asynchronous ASHA, 2 workers, 300 s
python train.py -m hpo=random hpo.n_workers=4 hpo.max_wallclock_time=60
"""

from __future__ import annotations

import hydra
import lightning as L
from hydra.core.hydra_config import HydraConfig
from hydra.utils import instantiate
from lightning.pytorch.loggers import TensorBoardLogger
from omegaconf import DictConfig

from lit_hpo import HPOCallback, current_trial


@hydra.main(version_base="1.3", config_path="conf", config_name="config")
def main(cfg: DictConfig) -> float:
    L.seed_everything(cfg.seed, verbose=False)
    output_dir = HydraConfig.get().runtime.output_dir
    model = instantiate(cfg.model)
    data = instantiate(cfg.data)
    trial = current_trial()  # None outside a study
    logger = TensorBoardLogger(
        save_dir=output_dir,
        name="tensorboard",
        version=trial.name if trial else "",  # run name: the trial's hyperparameters
        default_hp_metric=False,
    )
    trainer = L.Trainer(
        **cfg.trainer,
        logger=logger,
        callbacks=[HPOCallback()],
        default_root_dir=output_dir,
    )
    # A trial resumed after its worker died (or promoted from a pause) continues from its
    # last reported epoch; checkpoints load as weights only, never as code.
    resume_from = trial.resume_from if trial else None
    trainer.fit(model, data, ckpt_path=resume_from, weights_only=True if resume_from else None)
    metric = cfg.hpo.metric if cfg.get("hpo") else "validation_error"  # the study's metric
    return float(trainer.callback_metrics[metric])


if __name__ == "__main__":
    main()
