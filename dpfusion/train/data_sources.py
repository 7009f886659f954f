"""Assemble the training folder on a fresh machine from sources installable by name.

Sources: the project's shared training photos, plus photographs inside Debian
wallpaper packages (fetched with ``apt-get download``, unpacked with ``dpkg-deb``,
no root needed). JPEG sources are downscaled (at least 2x) to hide their block
artefacts, and every photo ends up no longer than ``max_side`` pixels.

Twenty of the shared photos go to ``validation/`` instead of ``train/``: every choice of a
training step, loss weight or dial calibration is made on them, never on Kodak (the report).
The pick is a hash of each photo's name, so every machine holds out the same twenty. The shipped
fusion module was trained before that split existed, so ``validation/`` also holds photos from
Debian packages that no training run has read (``held_out`` sources): the only validation photos
that are as new to the module as Kodak is.
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
    """Paths under ``folder``; a nested one is named after its first folder (``Path/contents/x.jpg`` is ``Path``)."""
    held_out: bool = False
    """Every photo goes to ``validation/``."""


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
    DebianPhotos(
        "plasma-workspace-wallpapers",
        "usr/share/wallpapers",
        only=tuple(
            f"{name}/contents/images/2560x1600.jpg"
            for name in (
                "BytheWater",
                "ColdRipple",
                "ColorfulCups",
                "DarkestHour",
                "EveningGlow",
                "FallenLeaf",
                "Grey",
                "OneStandsOut",
                "Path",
                "summer_1am",
            )
        ),
        held_out=True,
    ),
    DebianPhotos(
        "lomiri-wallpapers-20.04", "usr/share/backgrounds", only=("Kleiber_by_Lukas_Baubkus.jpg",), held_out=True
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


def _fetch_debian(source: DebianPhotos, workdir: Path) -> list[tuple[str, Path]]:
    try:
        subprocess.run(["apt-get", "download", source.package], cwd=workdir, check=True, capture_output=True)
        deb = next(workdir.glob(f"{source.package}_*.deb"))
        unpacked = workdir / source.package
        subprocess.run(["dpkg-deb", "-x", str(deb), str(unpacked)], check=True, capture_output=True)
    except (OSError, subprocess.CalledProcessError, StopIteration) as exc:
        raise DPFusionError(f"could not fetch Debian package {source.package}: {exc}") from None
    return select_photos(source, unpacked / source.folder)


def select_photos(source: DebianPhotos, folder: Path) -> list[tuple[str, Path]]:
    """``(name, path)`` of the source's photos in its unpacked folder; a listed photo that is missing is an error."""
    if source.only:
        missing = [name for name in source.only if not (folder / name).is_file()]
        if missing:
            raise DPFusionError(f"Debian package {source.package} lacks {', '.join(missing)}")
        return [(Path(name).parts[0] if "/" in name else Path(name).stem, folder / name) for name in source.only]
    files = sorted(p for p in folder.iterdir() if p.suffix.lower() in PHOTO_SUFFIXES)
    return [(p.stem, p) for p in files if not p.name.startswith(source.exclude_prefix)]


def prepare_training_folder(
    out_dir: str | Path,
    shared_train: str | Path | None,
    debian: bool = True,
    max_side: int = 1024,
) -> list[Path]:
    """Write every photo as PNG under ``out_dir/train`` or ``out_dir/validation``; returns the written paths."""
    out_dir = Path(out_dir)
    sources: list[tuple[str, Path]] = []
    photos: list[tuple[str, str, Path, bool]] = []  # origin, name, path, held out whatever its name
    if shared_train is not None:
        shared = Path(shared_train)
        if not shared.is_dir():
            raise DPFusionError(f"shared training folder not found: {shared}")
        sources += [("shared", p) for p in sorted(shared.rglob("*")) if p.suffix.lower() in PHOTO_SUFFIXES]
        photos += [("shared", p.stem, p, False) for _, p in sources]
    written: list[Path] = []
    with tempfile.TemporaryDirectory() as tmp:
        if debian:
            for source in DEBIAN_SOURCES:
                for name, path in _fetch_debian(source, Path(tmp)):
                    sources.append((source.package, path))
                    photos.append((source.package, name, path, source.held_out))
        held_out = validation_names(sources)
        for origin, name, path, new_to_every_run in photos:
            split = VALIDATION_DIR if new_to_every_run or path.name in held_out else TRAIN_DIR
            target = out_dir / split / origin / (name + ".png")
            if not target.exists():
                save_png(target, np.asarray(_downscale(path, max_side)))
            written.append(target)
    if not written:
        raise DPFusionError("no training photos found in the given sources")
    return written
