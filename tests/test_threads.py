"""Decoding from several threads at once gives the bytes of serial decodes (issue 17).

The codec adapter once swapped ``g_s`` in place to read the latent, and ``with_quality`` views
share one module: a thread synthesising while another probed would have run the probe.
"""

from __future__ import annotations

import threading

import numpy as np
import pytest
import torch

from dpfusion.api import Model
from dpfusion.fusion.schedule import NoiseSchedule
from tests.fusion.conftest import build_fusion
from tests.test_session import _with_adapter

ROUNDS = 3


def _run_concurrently(work: list, threads: int = 4) -> list:
    """Each thread runs every ``threads``-th job of ``work``; all start at one barrier."""
    results: list = [None] * len(work)
    errors: list[BaseException] = []
    barrier = threading.Barrier(threads)

    def worker(offset: int) -> None:
        barrier.wait()
        try:
            for index in range(offset, len(work), threads):
                results[index] = work[index]()
        except BaseException as exc:  # noqa: BLE001 - re-raised in the main thread
            errors.append(exc)

    pool = [threading.Thread(target=worker, args=(i,)) for i in range(threads)]
    for thread in pool:
        thread.start()
    for thread in pool:
        thread.join()
    if errors:
        raise errors[0]
    return results


@pytest.fixture
def model(tiny_gain_codec) -> Model:
    fusion = _with_adapter(build_fusion(tiny_gain_codec.latent_channels, seed=2), tiny_gain_codec)
    return Model(tiny_gain_codec, fusion, NoiseSchedule(num_train_steps=100), image_dial=False)


def test_four_threads_decoding_same_and_different_files_give_serial_bytes(model, tiny_image_factory):
    torch.set_num_threads(1)
    files = [model.compress(tiny_image_factory(40, 56, seed), quality=rate) for seed, rate in ((0, 0.0), (1, 2.5))]
    files.append(files[0])  # the same file twice
    jobs = [(data, tau, steps) for data in files for tau in (1.0, 0.0, 0.4) for steps in (1, 2)] * ROUNDS
    serial = [model.decompress(data, tau, steps=steps) for data, tau, steps in jobs]
    assert not np.array_equal(serial[0], serial[2])  # tau matters, so a mixed-up result would show
    concurrent = _run_concurrently([lambda j=j: model.decompress(j[0], j[1], steps=j[2]) for j in jobs])
    for got, expected in zip(concurrent, serial, strict=True):
        np.testing.assert_array_equal(got, expected)


def test_four_threads_sharing_one_session(model, tiny_image):
    data = model.compress(tiny_image)
    taus = [0.0, 0.25, 0.5, 0.75, 1.0] * 4
    serial = [model.decompress(data, tau) for tau in taus]
    session = model.open(data)
    concurrent = _run_concurrently([lambda t=t: session.render(t) for t in taus])
    for got, expected in zip(concurrent, serial, strict=True):
        np.testing.assert_array_equal(got, expected)


def test_decoding_never_modifies_the_shared_model(model, tiny_image):
    children = dict(model.codec.model.named_children())
    data = model.compress(tiny_image)
    model.decompress(data, 0.0)
    with model.codec.swapped_analysis(torch.nn.Identity()) as coder:
        assert coder.model.g_a is not children["g_a"]
        assert model.codec.model.g_a is children["g_a"]
    assert dict(model.codec.model.named_children()) == children
