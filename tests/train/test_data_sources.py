"""The training folder: a fixed, name-hashed validation split that training never reads."""

from __future__ import annotations

import hashlib

from PIL import Image

from dpfusion.train.data_sources import TRAIN_DIR, VALIDATION_DIR, prepare_training_folder, validation_names
from tests.train.conftest import structured_image


def test_validation_names_are_the_smallest_name_hashes_of_the_shared_photos(tmp_path):
    names = [f"photo{i}.png" for i in range(30)]
    sources = [("shared", tmp_path / n) for n in names] + [("debian-pkg", tmp_path / "wall.png")]
    picked = validation_names(sources, count=5)
    expected = sorted(names, key=lambda n: hashlib.sha256(n.encode()).hexdigest())[:5]
    assert picked == set(expected) and "wall.png" not in picked


def test_prepare_writes_disjoint_train_and_validation_folders(tmp_path):
    shared = tmp_path / "shared"
    shared.mkdir()
    for i in range(25):
        Image.fromarray(structured_image(40, 48, seed=i)).save(shared / f"img{i:02d}.png")
    written = prepare_training_folder(tmp_path / "out", shared, debian=False)
    train = {p.name for p in (tmp_path / "out" / TRAIN_DIR).rglob("*.png")}
    held_out = {p.name for p in (tmp_path / "out" / VALIDATION_DIR).rglob("*.png")}
    assert len(held_out) == 20 and len(train) == 5 and not train & held_out
    assert len(written) == 25 and held_out == validation_names([("shared", shared / n) for n in train | held_out])
