"""The one exception type that the CLI turns into a one-line message."""


class DPFusionError(Exception):
    """A user-facing failure: bad input, corrupt file, missing weights, wrong model."""
