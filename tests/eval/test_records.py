"""Typed result records: JSON and back is the identity, and a malformed file is one line."""

from __future__ import annotations

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from dpfusion.errors import DPFusionError
from dpfusion.eval.records import Curve, ImageRow, Results, UnitRecord
from dpfusion.eval.records import _row as row_from_dict

FEW = settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])
finite = st.floats(allow_nan=False, allow_infinity=False, width=32)
maybe = st.one_of(st.none(), finite)
values = st.dictionaries(st.sampled_from(["psnr", "lpips_alex", "dists"]), maybe, max_size=3)
curves = st.builds(
    Curve,
    id=st.text(min_size=1, max_size=8),
    name=st.text(max_size=8),
    kind=st.sampled_from(["dpfusion", "jpeg", "curve"]),
    results=st.dictionaries(st.sampled_from(["bpp", "psnr"]), st.lists(maybe, max_size=3), max_size=2),
    tau=maybe,
    steps=st.one_of(st.none(), st.integers(1, 50)),
    rates=st.one_of(st.none(), st.lists(finite, max_size=3)),
)
rows = st.builds(
    ImageRow,
    codec=st.sampled_from(["dpfusion", "webp"]),
    image=st.text(min_size=1, max_size=6),
    rate=maybe,
    quality=st.one_of(st.none(), st.integers(1, 100)),
    tau=maybe,
    steps=st.one_of(st.none(), st.integers(1, 9)),
    seed=st.one_of(st.none(), st.integers(0, 9)),
    bytes=st.integers(0, 10**6),
    pixels=st.integers(1, 10**6),
    bpp=finite,
    encode_time=finite,
    decode_time=finite,
    values=values,
)


@FEW
@given(st.builds(Results, name=st.text(max_size=8), curves=st.lists(curves, max_size=3), per_image=st.lists(rows)))
def test_results_round_trip_through_their_json_form(results):
    assert Results.from_dict(results.to_dict()) == results


@FEW
@given(rows)
def test_image_rows_round_trip_through_their_csv_form(row):
    assert row_from_dict(row.to_dict()) == row


def test_unit_records_round_trip_and_omit_what_they_lack():
    record = UnitRecord("k", "jpeg", "a.png", 10, 4, 20.0, 0.1, 0.2, {"1": {"psnr": 30.0}}, quality=50)
    data = record.to_dict()
    assert "rate" not in data and "errors" not in data and UnitRecord.from_dict(data) == record


def test_a_curve_without_results_is_one_line():
    with pytest.raises(DPFusionError, match="curve lacks results"):
        Curve.from_dict({"id": "x", "name": "x", "kind": "curve"})
