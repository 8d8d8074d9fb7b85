"""Hydra sweeper plugin for lit_hpo (discovered through the ``hydra_plugins`` namespace)."""
