"""A visual grid of one bitstream decoded at several tau (paper Fig. 6): full images, then crops."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np
from matplotlib.figure import Figure
from matplotlib.patches import Rectangle

from dpfusion.errors import DPFusionError
from dpfusion.eval.plots import save_figure

Crop = tuple[int, int, int, int]  # x, y, width, height


def parse_crop(text: str) -> Crop:
    try:
        x, y, w, h = (int(v) for v in text.split(","))
    except ValueError:
        raise DPFusionError(f"--crop must be X,Y,W,H (four integers), got {text!r}") from None
    if x < 0 or y < 0 or w < 1 or h < 1:
        raise DPFusionError(f"--crop needs x, y >= 0 and a positive size, got {text!r}")
    return x, y, w, h


def default_crop(height: int, width: int) -> Crop:
    """A centred square of half the shorter side."""
    side = max(1, min(height, width) // 2)
    return (width - side) // 2, (height - side) // 2, side, side


def tau_grid(
    images: Sequence[np.ndarray],
    titles: Sequence[str],
    path: str | Path,
    crop: Crop | None = None,
    suptitle: str | None = None,
) -> Path:
    """Top row: the images with the crop outlined; bottom row: the crops, enlarged."""
    if not images:
        raise DPFusionError("nothing to draw")
    height, width = images[0].shape[:2]
    x, y, w, h = crop if crop is not None else default_crop(height, width)
    if x + w > width or y + h > height:
        raise DPFusionError(f"crop {x},{y},{w},{h} does not fit the {width}x{height} image")
    columns = len(images)
    aspect = height / width
    fig = Figure(figsize=(3 * columns, 3 * aspect + 3))
    axes = fig.subplots(2, columns, squeeze=False)
    for column, (image, title) in enumerate(zip(images, titles, strict=True)):
        top, bottom = axes[0][column], axes[1][column]
        top.imshow(image)
        top.add_patch(Rectangle((x - 0.5, y - 0.5), w, h, fill=False, edgecolor="red", linewidth=1))
        top.set_title(title, fontsize=8)
        bottom.imshow(image[y : y + h, x : x + w], interpolation="nearest")
        for ax in (top, bottom):
            ax.set_xticks([])
            ax.set_yticks([])
    if suptitle:
        fig.suptitle(suptitle, fontsize=9)
    return save_figure(fig, path)
