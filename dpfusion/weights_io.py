"""Weights on disk as ``NAME.safetensors`` beside a JSON config, written and located in one way."""

from __future__ import annotations

import json
import pickle
import re
from pathlib import Path
from typing import TYPE_CHECKING, Any

import torch
from safetensors.torch import save_file

from dpfusion.atomic import atomic_path
from dpfusion.errors import DPFusionError

if TYPE_CHECKING:
    from dpfusion.configs import Configurable


def save_weights(
    folder: Path, weights_name: str, config_name: str, tensors: dict[str, torch.Tensor], config: Configurable
) -> Path:
    """Write the tensors and the config's document, each atomically; returns the weights path."""
    with atomic_path(folder / weights_name) as tmp:
        save_file({k: v.detach().contiguous() for k, v in tensors.items()}, str(tmp))
    config.save_config(folder / config_name)
    return folder / weights_name


def weights_files(path: str | Path, weights_name: str, config_name: str, what: str) -> tuple[Path, Path]:
    """(config, weights) paths for a folder or its weights file; both must exist."""
    path = Path(path)
    folder = path if path.is_dir() else path.parent
    config_path, weights_path = folder / config_name, folder / weights_name
    for required in (config_path, weights_path):
        if not required.is_file():
            raise DPFusionError(f"{what} incomplete: {required} not found")
    return config_path, weights_path


def read_json_object(path: Path, what: str) -> dict[str, Any]:
    """A JSON object from ``path``; missing, unreadable, not JSON or not an object: one line naming ``what``."""
    if not path.is_file():
        raise DPFusionError(f"{what} not found: {path}")
    try:
        data = json.loads(path.read_text())
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise DPFusionError(f"{path}: invalid JSON ({one_line(exc)})") from None
    if not isinstance(data, dict):
        raise DPFusionError(f"{path}: not a {what} (a JSON object was expected)")
    return data


def one_line(exc: BaseException, limit: int = 300) -> str:
    """An exception's message on one line (torch's are often many), shortened."""
    text = " ".join(str(exc).split())
    return text if len(text) <= limit else text[: limit - 3] + "..."


def _refusal(text: str) -> str:
    """torch's weights-only refusal (300 characters advising ``weights_only=False``) as one short line.

    torch names what it blocked as ``GLOBAL module.name`` in every variant of the message
    (an unlisted global, a blocked module such as ``posix.system``): that name is the news.
    """
    found = re.search(r"GLOBAL ([\w.]+)", text)
    if found:
        return f"refused: holds a Python object ({found.group(1)}), not only tensors; dpfusion loads weights only"
    detail = re.search(r"WeightsUnpickler error:\s*(.+)", text)
    if detail:
        reason = one_line(detail.group(1), limit=160)
    elif "Weights only load failed" in text:
        reason = "the weights-only loader refused it"
    else:
        reason = one_line(text, limit=160)
    return f"not a loadable weights file (UnpicklingError: {reason})"


def load_torch_file(path: Path) -> Any:
    """``torch.load`` restricted to tensors and plain containers, every failure a one-line DPFusionError."""
    if not path.is_file():
        raise DPFusionError(f"checkpoint not found: {path}")
    try:
        return torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as exc:  # a pickle that is more than tensors, or not a pickle at all
        raise DPFusionError(f"{path}: {_refusal(str(exc))}") from None
    except Exception as exc:  # damaged or not a torch file
        raise DPFusionError(f"{path}: not a loadable weights file ({type(exc).__name__}: {one_line(exc)})") from None
