"""Where the time of a default tau = 0 decode goes, split by part, from cProfile.

    python benchmarks/decode_profile.py [--image KODAK.png] [--rate 3] [--threads 2] [--repeats 3]

One bitstream (kodim23 at rate 3 by default) is decoded ``repeats`` times with the default model
and ``Model.decompress(data, 0.0)`` under cProfile (one warm-up decode first). The cumulative time of
the functions that implement each part is its share: entropy decoding (CompressAI's entropy models
and their index tables), the integer hyper-synthesis (``h_s`` in fixed point), ``g_s``, the fusion
module's condition encoder, the fusion network's step(s), the synthesis adapter's blocks, and the
rest (parsing, checks, noise, blending, rounding to 8 bits). Every part runs whole torch kernels,
so cProfile's per-call overhead is negligible against them.
"""

from __future__ import annotations

import argparse
import cProfile
import inspect
import pstats
import warnings
from pathlib import Path

import torch

warnings.filterwarnings("ignore", category=FutureWarning)

from compressai.entropy_models import EntropyModel, GaussianConditional  # noqa: E402

from dpfusion.api import load  # noqa: E402
from dpfusion.codecs.adapter import CodecAdapter  # noqa: E402
from dpfusion.codecs.integer import _IntegerForward  # noqa: E402
from dpfusion.fusion.network import LatentFusion  # noqa: E402
from dpfusion.fusion.synthesis_adapter import SynthesisAdapter, _Block  # noqa: E402
from dpfusion.imageio import load_image  # noqa: E402

KODAK = Path(__file__).resolve().parents[1].parent / "shared" / "data" / "kodak" / "kodim23.png"


def _key(function) -> tuple[str, int, str]:
    """cProfile's key of a Python function."""
    code = inspect.unwrap(function).__code__  # the function itself, not torch.no_grad's shared wrapper
    return code.co_filename, code.co_firstlineno, code.co_name


def _parts() -> dict[str, list[tuple[str, int, str]]]:
    """Part -> the functions whose cumulative time is the part's (none of them calls another of its list)."""
    return {
        "entropy decoding": [_key(EntropyModel.decompress), _key(GaussianConditional.build_indexes)],
        "integer hyper-synthesis (h_s)": [_key(_IntegerForward.__call__)],
        "condition encoder": [_key(LatentFusion.encode_condition)],
        "fusion network step(s)": [_key(LatentFusion.forward)],
        "synthesis adapter blocks": [_key(_Block.forward)],
        "adapted g_s around the blocks": [_key(SynthesisAdapter.forward)],
        "all synthesis (plain and adapted g_s)": [_key(CodecAdapter.synthesize)],
    }


def _cumulative(stats: pstats.Stats, keys: list[tuple[str, int, str]]) -> float:
    return sum(stats.stats[key][3] for key in keys if key in stats.stats)


def profile(image: Path, rate: float, repeats: int) -> dict[str, float]:
    """Milliseconds per decode of each part, the rest, and the total."""
    model = load(quality=rate)
    data = model.compress(load_image(image), quality=rate)
    model.decompress(data, 0.0)
    profiler = cProfile.Profile()
    profiler.enable()
    for _ in range(repeats):
        model.decompress(data, 0.0)
    profiler.disable()
    stats = pstats.Stats(profiler)
    raw = {name: 1e3 * _cumulative(stats, keys) / repeats for name, keys in _parts().items()}
    adapted = raw.pop("adapted g_s around the blocks")
    synthesis = raw.pop("all synthesis (plain and adapted g_s)")
    raw["g_s in the adapted decode"] = adapted - raw["synthesis adapter blocks"]
    raw["g_s, plain (the tau = 1 image)"] = synthesis - adapted
    total = 1e3 * stats.total_tt / repeats
    raw["rest (parse, noise, blend, 8-bit)"] = total - sum(raw.values())
    raw["total"] = total
    return raw


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--image", default=str(KODAK))
    parser.add_argument("--rate", type=float, default=3.0)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    parts = profile(Path(args.image), args.rate, args.repeats)
    total = parts.pop("total")
    print(
        f"default tau = 0 decode of {Path(args.image).name} at rate {args.rate:g}, {args.threads} threads, "
        f"cProfile over {args.repeats} decodes: {total:.1f} ms per decode"
    )
    for name, ms in parts.items():
        print(f"{name:<40}{ms:>9.1f} ms{100 * ms / total:>7.1f} %")


if __name__ == "__main__":
    main()
