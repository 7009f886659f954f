"""Assemble the training folder on a fresh machine from sources installable by name.

Sources: the project's shared training photos, plus photographs inside Debian
wallpaper packages (fetched with ``apt-get download``, unpacked with ``dpkg-deb``,
no root needed). JPEG sources are downscaled (at least 2x) to hide their block
artefacts, and every photo ends up no longer than ``max_side`` pixels.

Twenty of the shared photos go to ``validation/`` instead of ``train/``: every choice of a
training step, loss weight or dial calibration is made on them, never on Kodak (the report).
The pick is a hash of each photo's name, so every machine holds out the same twenty.
"""

from __future__ import annotations

import hashlib
import subprocess
import tempfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image

from dpfusion.errors import DPFusionError
from dpfusion.imageio import load_image, save_png


@dataclass(frozen=True)
class DebianPhotos:
    package: str
    folder: str
    exclude_prefix: tuple[str, ...] = ()
    only: tuple[str, ...] = ()


DEBIAN_SOURCES = (
    DebianPhotos("lomiri-wallpapers-16.04", "usr/share/backgrounds", exclude_prefix=("umang_",)),
    DebianPhotos("mate-backgrounds", "usr/share/backgrounds/mate/nature"),
    DebianPhotos("palapeli-data", "usr/share/palapeli/collection"),
    DebianPhotos(
        "lxqt-themes",
        "usr/share/lxqt/wallpapers",
        only=(
            "Butterfly-Kenneth-Wimer.jpg",
            "after-the-rain.jpg",
            "fog.jpg",
            "appleflower.png",
            "butterfly.png",
            "cloud.png",
            "drop.png",
            "flowers.png",
        ),
    ),
)

PHOTO_SUFFIXES = (".jpg", ".jpeg", ".png")
TRAIN_DIR, VALIDATION_DIR = "train", "validation"
VALIDATION_COUNT = 20


def validation_names(sources: list[tuple[str, Path]], count: int = VALIDATION_COUNT) -> set[str]:
    """The ``count`` shared photos (by name) with the smallest SHA-256 of their name: a fixed, content-blind pick."""
    shared = sorted((p.name for origin, p in sources if origin == "shared"), key=_name_hash)
    return set(shared[:count])


def _name_hash(name: str) -> str:
    return hashlib.sha256(name.encode()).hexdigest()


def _downscale(path: Path, max_side: int) -> Image.Image:
    image = Image.fromarray(load_image(path))
    factor = 2 if path.suffix.lower() in (".jpg", ".jpeg") else 1
    while max(image.size) / factor > max_side:
        factor += 1
    if factor > 1:
        image = image.resize((image.width // factor, image.height // factor), Image.Resampling.LANCZOS)
    return image


def _fetch_debian(source: DebianPhotos, workdir: Path) -> list[Path]:
    try:
        subprocess.run(["apt-get", "download", source.package], cwd=workdir, check=True, capture_output=True)
        deb = next(workdir.glob(f"{source.package}_*.deb"))
        unpacked = workdir / source.package
        subprocess.run(["dpkg-deb", "-x", str(deb), str(unpacked)], check=True, capture_output=True)
    except (OSError, subprocess.CalledProcessError, StopIteration) as exc:
        raise DPFusionError(f"could not fetch Debian package {source.package}: {exc}") from None
    folder = unpacked / source.folder
    files = sorted(p for p in folder.iterdir() if p.suffix.lower() in PHOTO_SUFFIXES)
    if source.only:
        files = [p for p in files if p.name in source.only]
    return [p for p in files if not p.name.startswith(source.exclude_prefix)]


def prepare_training_folder(
    out_dir: str | Path,
    shared_train: str | Path | None,
    debian: bool = True,
    max_side: int = 1024,
) -> list[Path]:
    """Write every photo as PNG under ``out_dir/train`` or ``out_dir/validation``; returns the written paths."""
    out_dir = Path(out_dir)
    sources: list[tuple[str, Path]] = []
    if shared_train is not None:
        shared = Path(shared_train)
        if not shared.is_dir():
            raise DPFusionError(f"shared training folder not found: {shared}")
        sources += [("shared", p) for p in sorted(shared.rglob("*")) if p.suffix.lower() in PHOTO_SUFFIXES]
    written: list[Path] = []
    with tempfile.TemporaryDirectory() as tmp:
        if debian:
            for source in DEBIAN_SOURCES:
                sources += [(source.package, p) for p in _fetch_debian(source, Path(tmp))]
        held_out = validation_names(sources)
        for origin, path in sources:
            split = VALIDATION_DIR if path.name in held_out else TRAIN_DIR
            target = out_dir / split / origin / (path.stem + ".png")
            if not target.exists():
                save_png(target, np.asarray(_downscale(path, max_side)))
            written.append(target)
    if not written:
        raise DPFusionError("no training photos found in the given sources")
    return written
