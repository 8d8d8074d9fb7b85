"""The foreign project's training script: everything comes from config, the resume path
included (``ckpt_path``), and ``fit`` runs with Lightning's defaults.

python -m tests.foreign.train_foreign -m hpo=promotion hydra.sweep.dir=DIR
"""

from __future__ import annotations

import hydra
import lightning as L
from hydra.utils import instantiate
from omegaconf import DictConfig

import lit_hpo


@hydra.main(version_base="1.3", config_path="conf", config_name="config")
def main(cfg: DictConfig) -> float:
    L.seed_everything(cfg.seed, verbose=False)
    model = instantiate(cfg.model)
    data = instantiate(cfg.data)
    callbacks = [instantiate(c) for c in cfg.callbacks.values()]
    trainer = L.Trainer(**cfg.trainer, callbacks=callbacks, logger=False)
    trial = lit_hpo.current_trial()
    ckpt_path = cfg.ckpt_path or (trial.resume_from if trial else None)
    trainer.fit(model, data, ckpt_path=ckpt_path)
    return float(trainer.callback_metrics["val/loss"])


if __name__ == "__main__":
    main()
