"""The training folder: a fixed, name-hashed validation split that training never reads."""

from __future__ import annotations

import hashlib

import pytest
from PIL import Image

from dpfusion.errors import DPFusionError
from dpfusion.train import data_sources
from dpfusion.train.data_sources import (
    TRAIN_DIR,
    VALIDATION_DIR,
    DebianPhotos,
    prepare_training_folder,
    select_photos,
    validation_names,
)
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


def test_listed_debian_photos_are_named_by_their_folder_and_a_missing_one_is_refused(tmp_path):
    for name in ("Path", "Grey"):
        (tmp_path / name / "contents").mkdir(parents=True)
        Image.fromarray(structured_image(20, 24, seed=1)).save(tmp_path / name / "contents" / "2560x1600.jpg")
    source = DebianPhotos("pkg", "x", only=("Path/contents/2560x1600.jpg", "Grey/contents/2560x1600.jpg"))
    assert [name for name, _ in select_photos(source, tmp_path)] == ["Path", "Grey"]
    flat = DebianPhotos("pkg", "x", only=("Path/contents/2560x1600.jpg", "Kite.jpg"))
    with pytest.raises(DPFusionError, match="pkg lacks Kite.jpg"):
        select_photos(flat, tmp_path)


def test_held_out_debian_photos_all_go_to_validation(tmp_path, monkeypatch):
    photos = tmp_path / "deb"
    photos.mkdir()
    for i in range(3):
        Image.fromarray(structured_image(40, 48, seed=i)).save(photos / f"wall{i}.png")
    sources = (DebianPhotos("kept", "x"), DebianPhotos("new", "x", held_out=True))

    def fetch(source, workdir):
        return select_photos(source, photos)

    monkeypatch.setattr(data_sources, "DEBIAN_SOURCES", sources)
    monkeypatch.setattr(data_sources, "_fetch_debian", fetch)
    prepare_training_folder(tmp_path / "out", None)
    assert sorted(p.name for p in (tmp_path / "out" / VALIDATION_DIR / "new").glob("*.png")) == [
        "wall0.png", "wall1.png", "wall2.png",
    ]  # fmt: skip
    assert not (tmp_path / "out" / VALIDATION_DIR / "kept").exists()
    assert len(list((tmp_path / "out" / TRAIN_DIR / "kept").glob("*.png"))) == 3
