"""Training images: an in-memory folder sampled into random crops by a seeded generator.

Crops are drawn in the training process from a ``torch.Generator`` whose state is
saved in every checkpoint, so a resumed run sees exactly the batches that an
uninterrupted run would have seen.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch
from torch import Tensor

from dpfusion.errors import DPFusionError
from dpfusion.imageio import image_files, load_image


class CropSampler:
    """Holds every training image as uint8 and hands out batches of random crops.

    Images smaller than the crop are skipped; flips are random too.
    """

    def __init__(self, folder: str | Path, crop: int):
        self.crop = crop
        self.images: list[Tensor] = []
        for path in image_files(folder, "training folder"):
            array = load_image(path)
            if min(array.shape[:2]) >= crop:
                self.images.append(torch.from_numpy(np.array(array)).permute(2, 0, 1))
        if not self.images:
            raise DPFusionError(f"no image under {folder} is at least {crop}x{crop} pixels")

    def __len__(self) -> int:
        return len(self.images)

    def sample(self, batch_size: int, generator: torch.Generator) -> Tensor:
        """A float batch (B, 3, crop, crop) in [0, 1]."""
        crops = []
        for _ in range(batch_size):
            index = int(torch.randint(len(self.images), (1,), generator=generator))
            image = self.images[index]
            _, height, width = image.shape
            top = int(torch.randint(height - self.crop + 1, (1,), generator=generator))
            left = int(torch.randint(width - self.crop + 1, (1,), generator=generator))
            crop = image[:, top : top + self.crop, left : left + self.crop]
            if bool(torch.rand(1, generator=generator) < 0.5):
                crop = crop.flip(-1)
            crops.append(crop)
        return torch.stack(crops).float().div_(255.0)
