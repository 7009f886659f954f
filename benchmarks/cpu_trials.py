"""The CPU speed-ups tried and not kept, each against the current code, side by side in one run.

    python benchmarks/cpu_trials.py [--image KODAK.png] [--rate 3] [--threads 2] [--repeats 5] [--no-compile]

Two groups on one bitstream (kodim23 at rate 3 by default), each timed round-robin with the first
round discarded; per trial: the median time, the median of its per-round ratio to the current code
and that ratio's range, and the largest difference of its output from the current one.
``g_s + adapter`` (tau = 0): channels_last blocks, torch.compile (the optional ``--compile`` path).
``fusion`` (condition + one step): channels_last, the folded ``main_in`` / ``merge``,
``torch.inference_mode``, torch.compile. docs/METHOD.md ("Decode speed on the CPU") has the results.
"""

from __future__ import annotations

import argparse
import copy
import statistics
import time
import warnings
from collections.abc import Callable
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import Tensor, nn

warnings.filterwarnings("ignore", category=FutureWarning)

from dpfusion.api import load  # noqa: E402
from dpfusion.fusion.decoding import condition_of, fuse_latents, synthesize_fused, tau_to_latent_grid  # noqa: E402
from dpfusion.fusion.network import LatentFusion, timestep_embedding  # noqa: E402
from dpfusion.fusion.samplers import sampler_for  # noqa: E402
from dpfusion.imageio import load_image  # noqa: E402

KODAK = Path(__file__).resolve().parents[1].parent / "shared" / "data" / "kodak" / "kodim23.png"
LAST = torch.channels_last


class FoldedInput(nn.Module):
    """``merge(cat(main_in(y_t), cond))`` as one 3x3 convolution of ``y_t`` plus ``W_c cond``, computed once."""

    def __init__(self, fusion: LatentFusion):
        super().__init__()
        width = fusion.config["channels"]
        merge = fusion.merge.weight[:, :, 0, 0]
        self.fusion, self.cond_weight = fusion, merge[:, width:]
        self.conv = nn.Conv2d(fusion.main_in.in_channels, width, 3, padding=1)
        self.conv.weight.data = torch.einsum("oc,clhw->olhw", merge[:, :width], fusion.main_in.weight)
        self.conv.bias.data = merge[:, :width] @ fusion.main_in.bias + fusion.merge.bias

    def forward(self, y_t_n: Tensor, y_hat_n: Tensor, t_fraction: float, cond_term: Tensor) -> Tensor:
        f = self.fusion
        emb = f.time_mlp(timestep_embedding(torch.full((y_t_n.shape[0],), t_fraction), f.config["channels"]))
        h = self.conv(y_t_n) + cond_term
        for unit in f.units:
            h = unit(h, emb)
        return y_hat_n + f.out(F.silu(f.out_norm(h)))


def _synthesis_trials(model, y_hat: Tensor, zero: Tensor, size, compiled: bool) -> dict[str, Callable[[], Tensor]]:
    codec, fusion = model.codec, model.fusion
    g_s, last_blocks = codec.model.g_s, copy.deepcopy(fusion.adapter).to(memory_format=LAST)
    blocks = dict(zip(last_blocks.config["positions"], last_blocks.blocks, strict=True))

    def channels_last() -> Tensor:
        h = y_hat
        for index, child in enumerate(g_s):
            h = child(h)
            if index in blocks:
                h = h + blocks[index](h.contiguous(memory_format=LAST)).contiguous()
        return codec.crop(h.clamp_(0, 1), size)

    trials = {"now": lambda: synthesize_fused(codec, fusion, y_hat, zero, size), "channels_last blocks": channels_last}
    if compiled:
        compiled_model = copy.copy(model)
        compiled_model.fusion = copy.copy(fusion)
        compiled_model.fusion._modules = {**fusion._modules, "adapter": copy.deepcopy(fusion.adapter)}
        compiled_model.compile()
        trials["torch.compile"] = lambda: synthesize_fused(codec, compiled_model.fusion, y_hat, zero, size)
    return trials


def _fusion_trials(model, y_hat: Tensor, zero: Tensor, compiled: bool) -> dict[str, Callable[[], Tensor]]:
    fusion, last, folded = model.fusion, copy.deepcopy(model.fusion).to(memory_format=LAST), FoldedInput(model.fusion)
    sampler = sampler_for(fusion, model.schedule, 1)
    grid = zero.expand(1, 1, *y_hat.shape[2:])

    def run(module: LatentFusion, latent: Tensor) -> Tensor:
        return fuse_latents(module, latent, [zero], sampler, 0, condition=condition_of(module, latent))

    def fold() -> Tensor:
        y_n, cond = condition_of(fusion, y_hat)
        term = torch.einsum("oc,bchw->bohw", folded.cond_weight, cond)
        noise = torch.randn(y_hat.shape, generator=torch.Generator().manual_seed(0))
        out = sampler.sample(lambda sample, t: folded(sample, y_n, t, term), noise, y_n, grid)
        return fusion.fused_latent(y_hat, out, y_n)

    def inference() -> Tensor:
        with torch.inference_mode():
            return run(fusion, y_hat)

    trials = {
        "now": lambda: run(fusion, y_hat),
        "channels_last": lambda: run(last, y_hat.contiguous(memory_format=LAST)).contiguous(),
        "folded main_in + merge": fold,
        "inference_mode": inference,
    }
    if compiled:
        module = copy.deepcopy(fusion)
        module.forward = torch.compile(module.forward, dynamic=False)
        module.encode_condition = torch.compile(module.encode_condition, dynamic=False)
        trials["torch.compile"] = lambda: run(module, y_hat)
    return trials


@torch.no_grad()
def _measure(name: str, trials: dict[str, Callable[[], Tensor]], repeats: int) -> None:
    outputs = {label: fn() for label, fn in trials.items()}  # the discarded round: warms up, compiles
    times: dict[str, list[float]] = {label: [] for label in trials}
    for _ in range(repeats):
        for label, fn in trials.items():
            started = time.perf_counter()
            fn()
            times[label].append(time.perf_counter() - started)
    print(f"{name}: {'trial':<24}{'median ms':>11}{'/ now':>8}{'range':>14}{'max |diff|':>12}")
    for label, values in times.items():
        ratios = [v / now for v, now in zip(values, times["now"], strict=True)]
        diff = float((outputs[label] - outputs["now"]).abs().max())
        spread = f"{min(ratios):.2f} - {max(ratios):.2f}"
        print(f"{'':<{len(name) + 2}}{label:<24}{statistics.median(values) * 1e3:>11.1f}"
              f"{statistics.median(ratios):>8.2f}{spread:>14}{diff:>12.3g}")  # fmt: skip


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--image", default=str(KODAK))
    parser.add_argument("--rate", type=float, default=3.0)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--no-compile", action="store_true", help="skip the torch.compile trials (minutes each)")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    model = load(quality=args.rate)
    session = model.open(model.compress(load_image(args.image), quality=args.rate))
    y_hat, size = session.y_hat, session.image_size
    zero = tau_to_latent_grid(0.0, size, tuple(y_hat.shape[2:]), model.codec.stride)
    started = time.perf_counter()
    _measure("g_s + adapter", _synthesis_trials(model, y_hat, zero, size, not args.no_compile), args.repeats)
    _measure("fusion", _fusion_trials(model, y_hat, zero, not args.no_compile), args.repeats)
    print(f"{args.threads} threads, {args.repeats} rounds, took {time.perf_counter() - started:.0f} s")


if __name__ == "__main__":
    main()
