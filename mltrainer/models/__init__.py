"""Models: parameter specs, the base class, one module per family, one registry."""
