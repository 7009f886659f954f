"""The decode session gives the same bytes as the one-shot path, and re-rendering never parses or entropy-decodes.

``_one_shot`` is the decode as ``Model.decompress_many`` did it before the session existed, written
out from the primitives (parse, ``decode_latent``, the tau-DDIM of eq. 4, ``g_s`` with the adapter's
blocks, the dial's blend): the reference every refactoring of the decode path is held to.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch

from dpfusion.api import Model
from dpfusion.bitstream import unpack
from dpfusion.codecs.adapter import Encoded
from dpfusion.fusion.decoding import tau_to_latent_grid
from dpfusion.fusion.dial import DialCalibration
from dpfusion.fusion.image_dial import image_calibration
from dpfusion.fusion.network import LatentFusion
from dpfusion.fusion.sampler import TauDDIMSampler
from dpfusion.fusion.schedule import NoiseSchedule
from dpfusion.fusion.synthesis_adapter import SynthesisAdapter
from dpfusion.imageio import to_uint8
from tests.fusion.conftest import build_fusion

torch.set_num_threads(1)
SCHEDULE = NoiseSchedule(num_train_steps=100)
DIAL = DialCalibration(knots=(0.0, 0.5, 1.0), weights={0.0: (1.0, 0.2, 0.0), 3.0: (1.0, 0.05, 0.0)})


def _with_adapter(fusion: LatentFusion, codec) -> LatentFusion:
    adapter = SynthesisAdapter.for_synthesis(codec.model.g_s, codec.latent_channels, hidden=4)
    generator = torch.Generator().manual_seed(5)
    with torch.no_grad():
        for param in adapter.parameters():
            param.copy_(0.2 * torch.randn(param.shape, generator=generator))
    fusion.attach_adapter(adapter.eval())
    return fusion


@pytest.fixture
def models(tiny_gain_codec) -> dict[str, Model]:
    fusion = _with_adapter(build_fusion(tiny_gain_codec.latent_channels, seed=3), tiny_gain_codec)
    # float32 blocks: the bit-for-bit comparisons below hold there; oneDNN's bf16 kernels (``auto`` on AMX) may
    # round a pixel one level differently between two equal paths (seen once in paper mode)
    return {
        mode: Model(tiny_gain_codec, fusion, SCHEDULE, mode, DIAL, precision="fp32", image_dial=False)
        for mode in ("dial", "linear", "paper")
    }


def _fused(model: Model, y_hat: torch.Tensor, grids: list[torch.Tensor], steps: int, seed: int) -> torch.Tensor:
    fusion = model.fusion
    out = y_hat.repeat(len(grids), 1, 1, 1)
    active = [i for i, g in enumerate(grids) if not bool(torch.all(g == 1.0))]
    if not active:
        return out
    y_n = fusion.normalize(y_hat)
    cond = fusion.encode_condition(y_n)
    noise = torch.randn(y_hat.shape, generator=torch.Generator().manual_seed(seed)).expand(len(active), -1, -1, -1)
    tau = torch.cat([grids[i].expand(1, 1, *y_hat.shape[2:]) for i in active])
    fused_n = TauDDIMSampler(model.schedule, steps).sample(
        lambda s, t: fusion(s, y_n, t, cond), noise.contiguous(), y_n, tau
    )
    out[active] = y_hat + fusion.scale * (fused_n - y_n)
    return out


def _image(model: Model, codec, latent: torch.Tensor, grid: torch.Tensor, size) -> torch.Tensor:
    if bool(torch.all(grid == 1.0)):
        return codec.synthesize(latent, size)
    strength = (1.0 - grid) ** 6
    return codec.synthesize(
        latent, size, lambda y, part: model.fusion.adapter(codec.model.g_s, y, part, model.precision), strength
    )


@torch.no_grad()
def _one_shot(model: Model, data: bytes, taus: list, steps: int, seed: int) -> list[np.ndarray]:
    file = unpack(data)
    codec = model.codec.with_quality(file.quality)
    size = (file.height, file.width)
    y_hat = codec.decode_latent(Encoded(file.strings, size))
    grid = lambda t: tau_to_latent_grid(t, size, tuple(y_hat.shape[2:]), codec.stride)  # noqa: E731
    if model.tau_mode == "paper":
        grids = [grid(t) for t in taus]
        latents = _fused(model, y_hat, grids, steps, seed)
        return [to_uint8(_image(model, codec, lat[None], g, size)) for lat, g in zip(latents, grids, strict=True)]
    base = codec.synthesize(y_hat, size)
    zero = grid(0.0)
    real = _image(model, codec, _fused(model, y_hat, [zero], steps, seed), zero, size)
    images = []
    dial = model.dial if file.dial is None else image_calibration(file.dial, file.quality)  # the sender's, if any
    for tau in taus:
        w = dial.weight(tau, file.quality) if model.tau_mode == "dial" else 1.0 - np.asarray(tau, np.float32)
        if not np.any(w) or np.all(w == 1.0):  # the ends themselves, not blends that round
            images.append(to_uint8(base if not np.any(w) else real))
            continue
        w = torch.from_numpy(np.asarray(w, np.float32)).reshape(1, 1, *np.shape(w)) if np.ndim(w) else float(w)
        images.append(to_uint8(base + w * (real - base)))
    return images


def _taus(image: np.ndarray) -> list:
    ramp = np.linspace(0.0, 1.0, image.shape[1], dtype=np.float32)[None].repeat(image.shape[0], 0)
    return [0.0, 0.3, 0.75, 1.0, ramp]


@pytest.mark.parametrize("mode", ["dial", "linear", "paper"])
@pytest.mark.parametrize("steps", [1, 3])
def test_decompress_many_equals_the_one_shot_path(models, tiny_image, mode, steps):
    model = models[mode]
    data = model.compress(tiny_image, quality=2.0)
    taus = _taus(tiny_image)
    expected = _one_shot(model, data, taus, steps, seed=4)
    assert not np.array_equal(expected[0], expected[3])  # the fusion module really changes the image
    got = model.decompress_many(data, taus, steps=steps, seed=4)
    for a, b in zip(got, expected, strict=True):
        np.testing.assert_array_equal(a, b)
    np.testing.assert_array_equal(model.decompress(data, tau=0.3, steps=steps, seed=4), expected[1])


@pytest.mark.parametrize("mode", ["dial", "paper"])
def test_a_session_renders_each_tau_as_the_one_shot_path_does(models, tiny_image, mode):
    model = models[mode]
    data = model.compress(tiny_image, quality=1.5)
    taus = _taus(tiny_image)
    expected = _one_shot(model, data, taus, steps=2, seed=9)
    session = model.open(data)
    for tau, image in zip(reversed(taus), reversed(expected), strict=True):  # one at a time, base first
        np.testing.assert_array_equal(session.render(tau, steps=2, seed=9), image)
    for a, b in zip(session.render_many(taus, steps=2, seed=9), expected, strict=True):
        np.testing.assert_array_equal(a, b)


class _Counter:
    def __init__(self, monkeypatch, owner, name: str) -> None:
        self.calls = 0
        original = getattr(owner, name)

        def counted(*args, **kwargs):
            self.calls += 1
            return original(*args, **kwargs)

        monkeypatch.setattr(owner, name, counted)


@pytest.mark.parametrize("mode", ["dial", "paper"])
def test_re_rendering_never_parses_or_entropy_decodes(models, tiny_image, monkeypatch, mode):
    import dpfusion.codecs.adapter as adapter
    import dpfusion.session as session_module

    model = models[mode]
    data = model.compress(tiny_image)
    parses = _Counter(monkeypatch, session_module, "parse_for_decoding")
    entropy = _Counter(monkeypatch, adapter.CodecAdapter, "decode_latent")
    conditions = _Counter(monkeypatch, type(model.fusion), "encode_condition")
    forwards = _Counter(monkeypatch, type(model.fusion), "forward")
    session = model.open(data)
    assert (parses.calls, entropy.calls) == (1, 1)
    first = session.render(0.0, steps=3)
    assert forwards.calls == 3  # one network pass per step
    for tau in (0.1, 0.5, 0.9, 1.0):
        session.render(tau, steps=3)
    session.render(0.4, steps=3, seed=1)
    assert (parses.calls, entropy.calls, conditions.calls) == (1, 1, 1)
    # dial: both ends cached, a new tau is a blend (the new seed decodes one more tau = 0); paper: eq. 4 per tau
    assert forwards.calls == (6 if mode == "dial" else 3 * 5)
    np.testing.assert_array_equal(session.render(0.0, steps=3), first)


@pytest.mark.parametrize("mode", ["dial", "linear"])
def test_tau_zero_alone_never_decodes_the_base_image(models, tiny_image, monkeypatch, mode):
    import dpfusion.codecs.adapter as adapter

    session = models[mode].open(models[mode].compress(tiny_image))
    synthesis = _Counter(monkeypatch, adapter.CodecAdapter, "synthesize")
    session.render(0.0)
    assert synthesis.calls == 1  # the adapted g_s of the realistic end, no plain g_s for a blend of weight 1
    session.render(0.5)
    assert synthesis.calls == 2  # now the base is needed, once


def test_progress_reports_every_sampler_step(models, tiny_image):
    session = models["dial"].open(models["dial"].compress(tiny_image))
    seen: list[tuple[int, int]] = []
    session.render(0.2, steps=4, progress=lambda done, total: seen.append((done, total)))
    assert seen == [(1, 4), (2, 4), (3, 4), (4, 4)]
    seen.clear()
    session.render(0.7, steps=4, progress=lambda done, total: seen.append((done, total)))
    assert seen == []  # both ends cached: nothing left to sample


def test_a_session_refuses_what_the_one_shot_path_refuses(models, tiny_image, tiny_codec_factory):
    from dpfusion import container
    from dpfusion.errors import DPFusionError

    model = models["dial"]
    with pytest.raises(DPFusionError, match="fingerprint"):
        model.open(container.compress(tiny_codec_factory("gain-hyperprior", 1, 1.0), tiny_image))
    session = model.open(model.compress(tiny_image))
    for bad in (1.5, np.zeros((3, 3), np.float32)):
        with pytest.raises(DPFusionError, match="tau"):
            session.render(bad)
    with pytest.raises(DPFusionError, match="seed"):
        session.render(0.5, seed=-1)
    bare = Model(model.codec).open(model.compress(tiny_image))
    with pytest.raises(DPFusionError, match="fusion module"):
        bare.render(0.5)
