"""One module per ``dpfusion`` sub-command; each exposes ``register(subparsers)``."""
