"""Fusion weights on disk: ``fusion.safetensors`` plus ``fusion.json``, the module's manifest.

The manifest records the network's config, the noise schedule, the base codec the module was
trained for (its fingerprint) and the dial's calibration; loading refuses any other codec,
because a fusion module only knows the latent space it was trained on.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from safetensors.torch import load_file

from dpfusion.codecs.adapter import CodecAdapter
from dpfusion.configs import Configurable
from dpfusion.errors import DPFusionError
from dpfusion.fusion.dial import LINEAR, DialCalibration
from dpfusion.fusion.network import LatentFusion
from dpfusion.fusion.schedule import NoiseSchedule
from dpfusion.weights_io import one_line, save_weights, weights_files

WEIGHTS_NAME = "fusion.safetensors"
CONFIG_NAME = "fusion.json"


@dataclass(frozen=True)
class FusionManifest(Configurable):
    """What ``fusion.json`` holds; ``fusion`` is the network's document (built by ``build``, with weights)."""

    config_kind = "dpfusion.fusion-module"
    config_parts = {"schedule": NoiseSchedule, "dial": DialCalibration}

    fusion: dict[str, Any]
    schedule: NoiseSchedule
    base: dict[str, str]
    dial: DialCalibration | None = None
    trained_steps: int | None = None

    def __post_init__(self) -> None:
        object.__setattr__(self, "fusion", LatentFusion.as_document(self.fusion, "fusion network"))
        if not isinstance(self.base, dict) or not isinstance(self.base.get("fingerprint"), str):
            raise ValueError("base must name the codec and its weights fingerprint")

    @classmethod
    def legacy_config(cls, data: dict[str, Any]) -> dict[str, Any]:
        """Schema 1 held the same parts, each a bare dict (and anything ``extra`` added beside them)."""
        return {key: data[key] for key in ("fusion", "schedule", "base", "dial", "trained_steps") if key in data}

    def build(self) -> LatentFusion:
        """The network the manifest describes, with fresh weights."""
        return LatentFusion.from_document(self.fusion, "fusion network")


def save_fusion(
    folder: str | Path,
    fusion: LatentFusion,
    schedule: NoiseSchedule,
    codec: CodecAdapter,
    half: bool = False,
    dial: DialCalibration | None = None,
    trained_steps: int | None = None,
) -> Path:
    """Write weights (fp16 if ``half``) and manifest atomically; returns the weights path."""
    dtype = torch.float16 if half else torch.float32
    tensors = {k: v.to(dtype) for k, v in fusion.state_dict().items()}
    manifest = FusionManifest(fusion.document(), schedule, codec.identity(), dial, trained_steps)
    return save_weights(Path(folder), WEIGHTS_NAME, CONFIG_NAME, tensors, manifest)


def read_manifest(path: str | Path) -> tuple[FusionManifest, Path]:
    """The manifest of a fusion folder (or of its ``fusion.safetensors``) and the weights path."""
    config_path, weights_path = weights_files(path, WEIGHTS_NAME, CONFIG_NAME, "fusion checkpoint")
    return FusionManifest.load_config(config_path), weights_path


def load_dial(path: str | Path) -> DialCalibration:
    """The calibration stored in a fusion module's manifest; the linear blend when it has none."""
    manifest, _ = read_manifest(path)
    return LINEAR if manifest.dial is None else manifest.dial


def _check_base(manifest: FusionManifest, codec: CodecAdapter, fusion: LatentFusion, any_base: bool) -> None:
    expected = manifest.base["fingerprint"]
    if any_base and fusion.latent_channels != codec.latent_channels:
        raise DPFusionError(
            f"fusion module expects {fusion.latent_channels} latent channels, {codec.name} has {codec.latent_channels}"
        )
    if not any_base and expected != codec.fingerprint.hex():
        raise DPFusionError(
            f"fusion module was trained for {manifest.base.get('codec')} weights {expected}, "
            f"not for the loaded {codec.name} weights {codec.fingerprint.hex()}"
        )


def load_fusion(path: str | Path, codec: CodecAdapter, any_base: bool = False) -> tuple[LatentFusion, NoiseSchedule]:
    """Load a fusion module for ``codec``; ``path`` is the folder or its ``fusion.safetensors``.

    ``any_base`` accepts a module trained for other weights with the same latent width: a start
    for fine-tuning on a retrained codec, never a module to decode with.
    """
    manifest, weights_path = read_manifest(path)
    fusion = manifest.build()
    _check_base(manifest, codec, fusion, any_base)
    if fusion.adapter is not None:
        fusion.adapter.check(codec.model.g_s, codec.latent_channels)
    try:
        state = {k: v.float() for k, v in load_file(str(weights_path)).items()}
        fusion.load_state_dict(state)
    except Exception as exc:  # safetensors and load_state_dict raise several types
        raise DPFusionError(f"{weights_path}: weights do not fit the config ({one_line(exc)})") from None
    return fusion.eval(), manifest.schedule
