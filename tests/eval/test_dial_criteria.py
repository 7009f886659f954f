"""The dial's acceptance figures, on hand-made curves whose answers are known."""

from __future__ import annotations

import pytest

from dpfusion.eval.dial_criteria import Point, best_blend_lpips, blend_gap, curve_points, evenness, verdict, wasted
from dpfusion.eval.records import Curve, Results


def _doc(points: list[tuple[float, float, float]], rate: float = 0.0) -> Results:
    curves = [Curve(f"tau{t:g}", "m", "dpfusion", {"psnr": [p], "lpips_alex": [q]}, t, 1, [rate]) for t, p, q in points]
    return Results("m", curves + [Curve("jpeg", "JPEG", "jpeg", {"bpp": []}, qualities=[])])


EVEN = [(0.0, 30.0, 0.1), (0.25, 30.5, 0.15), (0.5, 31.0, 0.2), (0.75, 31.5, 0.25), (1.0, 32.0, 0.3)]


def test_an_even_dial_scores_zero_and_a_switch_does_not():
    assert evenness(curve_points(_doc(EVEN), 0.0)) == pytest.approx(0.0)
    switch = [(0.0, 30.0, 0.1), (0.5, 31.9, 0.29), (1.0, 32.0, 0.3)]
    assert evenness(curve_points(_doc(switch), 0.0)) == pytest.approx(0.45)


def test_blend_gap_compares_at_no_lower_psnr():
    blend = [Point(t, p, q) for t, p, q in EVEN]
    assert best_blend_lpips(blend, 31.0) == pytest.approx(0.2)
    assert best_blend_lpips(blend, 32.5) == float("inf")
    worse = [Point(0.0, 30.0, 0.1), Point(0.5, 31.0, 0.24), Point(1.0, 32.0, 0.3)]
    assert blend_gap(worse, blend) == (pytest.approx(0.04 / 0.2), 0)
    assert blend_gap(blend, blend) == (pytest.approx(0.0, abs=1e-9), 0)
    above = [Point(0.0, 30.0, 0.1), Point(0.5, 32.5, 0.29), Point(0.7, 31.0, 0.22), Point(1.0, 32.0, 0.3)]
    assert blend_gap(above, blend) == (pytest.approx(0.01 / 0.2), 1)  # 32.5 dB: beyond every blend sample


def test_wasted_positions_respect_the_margins_and_exempt_tau_one():
    points = [Point(0.0, 30.0, 0.10), Point(0.5, 31.0, 0.22), Point(0.7, 31.2, 0.21),
              Point(0.9, 31.205, 0.2104), Point(1.0, 30.9, 0.3)]  # fmt: skip
    assert wasted(points) == ((0.5, 0.7),)  # 0.7 vs 0.9: within both margins; tau = 1 is never listed


def test_verdict_reads_both_documents():
    result = verdict(_doc(EVEN), _doc(EVEN), 0.0)
    assert result.rate == 0.0 and result.evenness == pytest.approx(0.0) and result.wasted == ()
    assert result.blend_gap == pytest.approx(0.0, abs=1e-9)
