import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from routeyard.evaluation.hull import nondecreasing_hull, nondecreasing_hulls

# Costs and qualities on a grid: exact ties and collinear points are common, float pathologies are not.
costs = st.integers(0, 1000).map(lambda x: x / 100)
qualities = st.integers(0, 100).map(lambda x: x / 100)
point_sets = st.lists(st.tuples(costs, qualities), min_size=1, max_size=30)


def hull_of(points):
    c, q = zip(*points, strict=True)
    return nondecreasing_hull(np.array(c), np.array(q))


@given(point_sets)
def test_hull_is_non_decreasing_and_concave(points):
    hull = hull_of(points)
    assert np.all(np.diff(hull.cost) > 0)
    assert np.all(np.diff(hull.quality) >= 0)
    slopes = np.diff(hull.quality) / np.diff(hull.cost)
    assert np.all(np.diff(slopes) <= 1e-9 * (1 + np.abs(slopes[1:])))


@given(point_sets)
def test_no_point_lies_above_the_hull(points):
    hull = hull_of(points)
    c, q = (np.array(v) for v in zip(*points, strict=True))
    assert hull.cost[0] == c.min()
    assert np.all(q <= hull(c) + 1e-9)


@given(point_sets)
def test_hull_reaches_the_best_quality_at_its_cheapest(points):
    hull = hull_of(points)
    c, q = (np.array(v) for v in zip(*points, strict=True))
    assert hull.max_quality == q.max()
    assert hull.cost_at_max_quality == c[q == q.max()].min()


@given(point_sets, st.randoms(use_true_random=False))
def test_hull_ignores_order_and_duplicates(points, random):
    shuffled = points + random.sample(points, k=len(points) // 2)
    random.shuffle(shuffled)
    a, b = hull_of(points), hull_of(shuffled)
    np.testing.assert_array_equal(a.cost, b.cost)
    np.testing.assert_array_equal(a.quality, b.quality)


def test_one_point_is_its_own_hull_flat_after_and_zero_before():
    hull = nondecreasing_hull([0.5], [0.7])
    assert hull.cost.tolist() == [0.5]
    assert hull([0.1, 0.5, 99.0]).tolist() == [0.0, 0.7, 0.7]


def test_equal_costs_keep_the_best_and_dominated_points_drop():
    hull = nondecreasing_hull([1, 1, 2, 3, 4], [0.2, 0.5, 0.55, 0.9, 0.8])
    assert hull.cost.tolist() == [1, 3]
    assert hull.quality.tolist() == [0.5, 0.9]


def test_known_envelope():
    # (2, 0.6) lies above the chord (1, 0.2)–(4, 1.0), so it is a vertex; (3, 0.7) lies below (2,.6)–(4,1).
    hull = nondecreasing_hull([1, 2, 3, 4], [0.2, 0.6, 0.7, 1.0])
    assert hull.cost.tolist() == [1, 2, 4]


def test_rejects_empty_and_non_finite():
    with pytest.raises(ValueError):
        nondecreasing_hull([], [])
    with pytest.raises(ValueError):
        nondecreasing_hull([1.0, np.nan], [0.1, 0.2])


@given(st.lists(st.lists(st.tuples(costs, qualities), min_size=12, max_size=12), min_size=1, max_size=8))
def test_many_hulls_at_once_are_the_hulls_one_at_a_time(rows):
    cost = np.array([[c for c, _ in row] for row in rows])
    quality = np.array([[q for _, q in row] for row in rows])
    hulls = nondecreasing_hulls(cost, quality)
    for b in range(len(rows)):
        one = nondecreasing_hull(cost[b], quality[b])
        np.testing.assert_array_equal(hulls[b].cost, one.cost)
        np.testing.assert_array_equal(hulls[b].quality, one.quality)
