"""The volume family of models (filled in by its issue)."""

MODELS: tuple = ()
