"""Optional ``torch.compile`` of the decoder's heaviest part: ``g_s`` with the synthesis adapter's blocks.

Off by default (``load(compile=True)``, ``--compile``): compiling takes about a minute per image
(or tile) size on a CPU and pays off only over many decodes of one size: a slider, a server, the
tiles of a large photo. It changes tau < 1 images by float rounding only (inductor fuses and
reorders the arithmetic; measured in ``benchmarks/decode_latency.py --compile``) and never tau = 1,
which does not run the adapter. Where ``torch.compile`` is missing or fails (no C++ compiler, an
operation it cannot trace), the first decode warns once and every decode after it runs the
eager module, so asking for compilation never breaks a decode.
"""

from __future__ import annotations

import threading
import warnings
from collections.abc import Callable

import torch
from torch import Tensor

from dpfusion.fusion.synthesis_adapter import SynthesisAdapter

_LOCK = threading.Lock()
"""dynamo is not meant to compile in two threads at once; one lock for every compiled module (a module-level
lock also leaves the modules copyable)."""


class CompiledOrEager:
    """``eager``, run through ``torch.compile`` while that works; gradients always take the eager path."""

    def __init__(self, eager: Callable[..., Tensor]) -> None:
        self.eager = eager
        self._compiled: Callable[..., Tensor] | None = None
        try:
            self._compiled = torch.compile(eager, dynamic=False)
        except Exception as exc:  # noqa: BLE001 - any failure of an optional speed-up falls back to eager
            _fell_back(exc)

    def __call__(self, *args: object) -> Tensor:
        if self._compiled is not None and not torch.is_grad_enabled():
            with _LOCK:
                try:
                    return self._compiled(*args)
                except Exception as exc:  # noqa: BLE001 - as above; eager raises again if the input is at fault
                    self._compiled = None
                    _fell_back(exc)
        return self.eager(*args)


def _fell_back(exc: Exception) -> None:
    first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
    warnings.warn(f"torch.compile unavailable ({first}); decoding without it", stacklevel=3)


def compile_adapter(adapter: SynthesisAdapter) -> None:
    """Route the adapted synthesis (``adapter(g_s, latent, strength)``) through ``torch.compile``."""
    if not isinstance(adapter.forward, CompiledOrEager):
        adapter.forward = CompiledOrEager(adapter.forward)
