"""``${lit_hpo.resume_from:}``: the running trial's checkpoint, for a config's ``ckpt_path``.

A project whose training script already passes its own setting to ``fit``
(``trainer.fit(model, data, ckpt_path=cfg.ckpt_path)``) resumes trials with no code
change: ``ckpt_path: ${lit_hpo.resume_from:}`` in its config is the checkpoint a resumed
or promoted trial must continue from, and ``null`` outside a study or for a trial that
starts from scratch. The sweeper registers the resolver in every Hydra run that can see
it, and each worker does before running a trial.
"""

from __future__ import annotations

from lit_hpo.context import current_trial

NAME = "lit_hpo.resume_from"


def resume_from() -> str | None:
    trial = current_trial()
    return trial.resume_from if trial is not None else None


def register() -> None:
    from omegaconf import OmegaConf

    if not OmegaConf.has_resolver(NAME):
        OmegaConf.register_new_resolver(NAME, resume_from, use_cache=False)
