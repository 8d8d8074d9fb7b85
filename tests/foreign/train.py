"""The foreign project's training script, as such projects write it: everything comes
from config, the checkpoint to resume from included. Nothing here knows about lit_hpo:
the callback and ``ckpt_path: ${lit_hpo.resume_from:}`` are in ``conf/``.

cd <this directory> && python train.py -m hpo=promotion hydra.sweep.dir=DIR
"""

from __future__ import annotations

import hydra
import lightning as L
from hydra.utils import instantiate
from omegaconf import DictConfig


@hydra.main(version_base="1.3", config_path="conf", config_name="config")
def main(cfg: DictConfig) -> float:
    L.seed_everything(cfg.seed, verbose=False)
    model = instantiate(cfg.model)
    data = instantiate(cfg.data)
    callbacks = [instantiate(c) for c in cfg.callbacks.values()]
    trainer = L.Trainer(**cfg.trainer, callbacks=callbacks, logger=False)
    trainer.fit(model, data, ckpt_path=cfg.ckpt_path)
    return float(trainer.callback_metrics["val/loss"])


if __name__ == "__main__":
    main()
