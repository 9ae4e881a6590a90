import numpy as np
import pytest

from routeyard.judges.simulated import simulated_verdicts

QUALITY = np.tile([0.0, 1.0], 50_000)


def test_zero_error_is_the_truth():
    verdicts = simulated_verdicts(QUALITY, threshold=0.5, error_rate=0.0, rng=np.random.default_rng(1))
    assert np.array_equal(verdicts, QUALITY >= 0.5)


def test_error_rate_flips_that_share_of_verdicts_reproducibly():
    a = simulated_verdicts(QUALITY, threshold=0.5, error_rate=0.2, rng=np.random.default_rng(7))
    b = simulated_verdicts(QUALITY, threshold=0.5, error_rate=0.2, rng=np.random.default_rng(7))
    assert np.array_equal(a, b)
    assert np.mean(a != (QUALITY >= 0.5)) == pytest.approx(0.2, abs=0.01)


def test_rejects_error_rate_outside_unit_interval():
    with pytest.raises(ValueError):
        simulated_verdicts(QUALITY, threshold=0.5, error_rate=1.5, rng=np.random.default_rng(0))
