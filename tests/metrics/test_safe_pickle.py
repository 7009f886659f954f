from __future__ import annotations

import collections
import os
import pickle
from pathlib import Path

import numpy as np
import pytest

from dpfusion.errors import DPFusionError
from dpfusion.metrics.safe_pickle import load_array_pickle


class _RunsCommand:
    """What a malicious checkpoint does: unpickling it calls os.system."""

    def __init__(self, marker: Path):
        self.marker = marker

    def __reduce__(self):
        return os.system, (f"touch {self.marker}",)


def test_loads_nested_dicts_of_arrays():
    tree = {"net": {"Conv_0": {"kernel": np.arange(12, dtype=np.float32).reshape(1, 2, 2, 3), "bias": np.ones(3)}}}
    loaded = load_array_pickle(pickle.dumps(tree, protocol=4), "test")
    np.testing.assert_array_equal(loaded["net"]["Conv_0"]["kernel"], tree["net"]["Conv_0"]["kernel"])
    assert loaded["net"]["Conv_0"]["bias"].dtype == np.float64


@pytest.mark.parametrize(
    "payload",
    [
        {"kernel": np.zeros(3), "extra": collections.OrderedDict()},  # a non-array class
        {"kernel": np.zeros(3), "step": 7},  # a non-array leaf built without any global
        {"kernel": np.array([object()], dtype=object)},  # arrays of objects can carry anything
        [np.zeros(3)],  # not a dict
    ],
    ids=["ordered-dict", "int-leaf", "object-array", "list-root"],
)
def test_refuses_anything_but_numeric_arrays(payload):
    with pytest.raises(DPFusionError, match="refusing to load test"):
        load_array_pickle(pickle.dumps(payload), "test")


def test_never_calls_a_pickled_callable(tmp_path):
    marker = tmp_path / "executed"
    data = pickle.dumps({"kernel": np.zeros(3), "payload": _RunsCommand(marker)})
    with pytest.raises(DPFusionError, match="posix.system|os.system|nt.system"):
        load_array_pickle(data, "test")
    assert not marker.exists()


def test_refuses_truncated_data():
    with pytest.raises(DPFusionError, match="refusing"):
        load_array_pickle(pickle.dumps({"kernel": np.zeros(3)})[:-5], "test")
