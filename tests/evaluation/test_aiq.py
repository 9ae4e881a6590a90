import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from routeyard.evaluation.aiq import aiq, aiq_of_hulls, area_under_hull, routerbench_aiq
from routeyard.evaluation.hull import nondecreasing_hull, nondecreasing_hulls


def test_flat_single_point_at_the_range_start_scores_its_quality():
    hull = nondecreasing_hull([0.001], [0.62])
    assert aiq(hull, 0.001, 0.01) == pytest.approx(0.62)
    assert aiq(hull, 0.0005, 0.001) == pytest.approx(0.0)  # nothing reachable below the point


def test_hand_computed_two_segment_hull():
    # Hull (1, 0.2) – (3, 0.6) – (5, 0.8), flat after. Over [0, 6]:
    # 0 on [0,1]; trapezoid (0.2+0.6)/2*2 = 0.8; (0.6+0.8)/2*2 = 1.4; flat 0.8*1 = 0.8 → 3.0 / 6 = 0.5
    hull = nondecreasing_hull([1, 3, 5], [0.2, 0.6, 0.8])
    assert area_under_hull(hull, 0, 6) == pytest.approx(3.0)
    assert aiq(hull, 0, 6) == pytest.approx(0.5)
    assert routerbench_aiq(hull, 6) == pytest.approx(0.5)
    # A range starting mid-segment: on [2, 4], H(2)=0.4, H(3)=0.6, H(4)=0.7 → (0.5 + 0.65) / 2 = 0.575
    assert aiq(hull, 2, 4) == pytest.approx(0.575)


def test_degenerate_range_is_the_hull_there():
    hull = nondecreasing_hull([1, 3], [0.2, 0.6])
    assert aiq(hull, 2, 2) == pytest.approx(0.4)
    assert aiq(hull, 0.5, 0.5) == 0.0  # a router that cannot spend as little reaches nothing there


def test_routerbench_variant_of_free_routers_is_their_quality_at_zero_cost():
    assert routerbench_aiq(nondecreasing_hull([0.0, 0.0], [0.3, 0.7]), 0.0) == pytest.approx(0.7)
    with pytest.raises(ValueError):
        routerbench_aiq(nondecreasing_hull([1], [1]), -1.0)


point = st.tuples(st.integers(0, 1000).map(lambda x: x / 100), st.integers(0, 100).map(lambda x: x / 100))


@given(st.lists(point, min_size=1, max_size=20), point)
def test_adding_a_point_never_lowers_aiq(existing, extra):
    c, q = (np.array(v) for v in zip(*existing, strict=True))
    before = nondecreasing_hull(c, q)
    after = nondecreasing_hull(np.append(c, extra[0]), np.append(q, extra[1]))
    assert aiq(after, 0.5, 8.0) >= aiq(before, 0.5, 8.0) - 1e-12
    assert routerbench_aiq(after, 10.0) >= routerbench_aiq(before, 10.0) - 1e-12


@given(
    st.lists(st.lists(point, min_size=6, max_size=6), min_size=1, max_size=6),
    st.lists(st.tuples(st.integers(0, 600), st.integers(0, 400)), min_size=6, max_size=6),
)
def test_many_aiqs_at_once_are_the_aiqs_one_at_a_time(rows, ranges):
    cost = np.array([[c for c, _ in row] for row in rows])
    quality = np.array([[q for _, q in row] for row in rows])
    low = np.array([start / 100 for start, _ in ranges[: len(rows)]])
    high = low + np.array([width / 100 for _, width in ranges[: len(rows)]])  # some widths are 0
    together = aiq_of_hulls(nondecreasing_hulls(cost, quality), low, high)
    for b in range(len(rows)):
        alone = aiq(nondecreasing_hull(cost[b], quality[b]), low[b], high[b])
        assert together[b] == pytest.approx(alone, abs=1e-12)


def test_a_zero_width_range_counts_a_rounding_error_above_it_as_reached():
    at_price = nondecreasing_hull([0.0001 * (1 + 1e-15)], [0.7])
    assert aiq(at_price, 0.0001, 0.0001) == pytest.approx(0.7)
    dearer = nondecreasing_hull([0.00011, 0.0002], [0.7, 0.9])
    assert aiq(dearer, 0.0001, 0.0001) == 0.0
