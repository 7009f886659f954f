"""Loading torch files: a pickle that is more than tensors is refused in one line that names what it holds."""

from __future__ import annotations

import os
import pathlib

import pytest
import torch

from dpfusion.cli import main
from dpfusion.errors import DPFusionError
from dpfusion.weights_io import load_torch_file


class _RunsACommand:
    def __reduce__(self):
        return (os.system, ("echo this must never run",))


@pytest.mark.parametrize(
    ("payload", "blocked"),
    [
        ({"w": torch.zeros(2), "path": pathlib.PurePosixPath("x")}, "pathlib.PurePosixPath"),  # not allowlisted
        ({"w": torch.zeros(2), "cmd": _RunsACommand()}, f"{os.system.__module__}.system"),  # a blocked module
    ],
)
def test_unsafe_pickle_is_one_short_line_naming_the_global(tmp_path, payload, blocked) -> None:
    path = tmp_path / "evil.pt"
    torch.save(payload, path)
    with pytest.raises(DPFusionError) as info:
        load_torch_file(path)
    message = str(info.value)
    expected = f"{path}: refused: holds a Python object ({blocked}), not only tensors; dpfusion loads weights only"
    assert message == expected
    assert "weights_only" not in message


def test_not_a_pickle_is_one_line(tmp_path) -> None:
    path = tmp_path / "junk.pt"
    path.write_bytes(b"\x80\x02junk" * 10)
    with pytest.raises(DPFusionError, match="not a loadable weights file") as info:
        load_torch_file(path)
    assert "\n" not in str(info.value) and "weights_only" not in str(info.value) and len(str(info.value)) < 300


def test_the_cli_refuses_an_unsafe_checkpoint_in_one_line(tmp_path, tiny_png, capsys) -> None:
    path = tmp_path / "evil.pt"
    torch.save({"cmd": _RunsACommand()}, path)
    code = main(["compress", str(tiny_png), "--model", "gain-hyperprior", "--checkpoint", str(path)])
    out, err = capsys.readouterr()
    assert code == 1 and out == "" and "this must never run" not in out
    assert err.count("\n") == 1 and err.startswith("dpfusion: error: ") and "system), not only tensors" in err
