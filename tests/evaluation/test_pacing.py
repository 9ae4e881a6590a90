import numpy as np
import pytest

from routeyard.evaluation.pacing import best_fixed_w, model_spend_per_prompt, simulate_pacing
from routeyard.evaluation.points import point_of_choice
from routeyard.evaluation.replayed_routers import Predictions
from routeyard.policy.pacing import PacingTuning
from routeyard.policy.willingness_to_pay import choose_by_willingness_to_pay
from tests.evaluation.tables import synthetic_table

TUNING = PacingTuning(w_min=1e-5, w_max=10.0, w_initial=1e-3, response_seconds=40.0)


@pytest.fixture(scope="module")
def table():
    return synthetic_table(models=5, per_dataset=600, graded=True, seed=7)


@pytest.fixture(scope="module")
def predictions(table):
    """The truth blurred with noise, as a predictor's would be."""
    rng = np.random.default_rng(1)
    quality = np.clip(0.6 * table.quality + 0.2 + rng.normal(0.0, 0.1, table.quality.shape), 0.0, 1.0)
    return Predictions(quality, table.cost * rng.lognormal(0.0, 0.3, table.cost.shape))


@pytest.mark.parametrize("fraction", [0.3, 0.6, 0.9])
def test_a_paced_stream_spends_its_target_at_the_quality_of_the_best_fixed_w(table, predictions, fraction):
    """Targets between the cheapest and the dearest spend routing on these predictions can reach."""
    rows = np.arange(0, table.n_prompts, 2)
    arrays = predictions.quality[rows], predictions.cost[rows], table.quality[rows], table.cost[rows]
    cheapest = best_fixed_w(*arrays, budget_usd_per_prompt=0.0).cost
    dearest = best_fixed_w(*arrays, budget_usd_per_prompt=np.inf).cost
    target = cheapest + fraction * (dearest - cheapest)
    run = simulate_pacing(
        table.quality, table.cost, predictions, rows, target_usd_per_prompt=target, seed=0, tuning=TUNING
    )
    assert run.final_spend_ratio == pytest.approx(1.0, abs=0.05)
    assert run.mean_cost == pytest.approx(run.cumulative_spend[-1] / len(rows))
    assert run.hindsight.cost <= run.mean_cost
    assert run.quality_ratio >= 0.97


def test_the_run_reports_every_prompt_in_a_seeded_order(table, predictions):
    rows = np.arange(100, 400)
    target = 0.5 * model_spend_per_prompt(table.cost, rows, table.n_models - 1)

    def run(seed):
        return simulate_pacing(
            table.quality,
            table.cost,
            predictions,
            rows,
            target_usd_per_prompt=target,
            seed=seed,
            tuning=TUNING,
        )

    first, again, other = run(3), run(3), run(4)
    assert sorted(first.rows) == list(rows)
    np.testing.assert_array_equal(first.rows, again.rows)
    np.testing.assert_array_equal(first.willingness_to_pay, again.willingness_to_pay)
    assert not np.array_equal(first.rows, other.rows)
    assert first.willingness_to_pay[0] == TUNING.w_initial
    assert np.all((first.willingness_to_pay >= TUNING.w_min) & (first.willingness_to_pay <= TUNING.w_max))
    assert np.all(np.diff(first.cumulative_spend) >= 0)
    ratio = first.spend_ratio
    assert len(ratio) == len(rows) and ratio[-1] == first.final_spend_ratio


def test_the_quality_scored_is_the_recorded_quality_of_each_choice(table, predictions):
    rows = np.arange(0, 200)
    run = simulate_pacing(
        table.quality, table.cost, predictions, rows, target_usd_per_prompt=1e-3, seed=0, tuning=TUNING
    )
    choices = [
        choose_by_willingness_to_pay(predictions.quality[[r]], predictions.cost[[r]], w)[0]
        for r, w in zip(run.rows, run.willingness_to_pay, strict=True)
    ]
    got = table.quality[run.rows, choices]
    paid = table.cost[run.rows, choices]
    assert run.mean_quality == pytest.approx(got.mean())
    np.testing.assert_allclose(run.cumulative_spend, np.cumsum(paid))


def test_best_fixed_w_is_the_best_under_the_budget_on_a_fine_sweep(table, predictions):
    arrays = predictions.quality, predictions.cost, table.quality, table.cost
    budget = 0.4 * table.cost[:, -1].mean()
    best = best_fixed_w(*arrays, budget_usd_per_prompt=budget)
    assert best.cost <= budget
    choice = choose_by_willingness_to_pay(predictions.quality, predictions.cost, best.willingness_to_pay)
    assert (best.cost, best.quality) == point_of_choice(table.quality, table.cost, choice)
    for w in np.geomspace(1e-6, 1e4, 400):
        cost, quality = point_of_choice(
            table.quality, table.cost, choose_by_willingness_to_pay(predictions.quality, predictions.cost, w)
        )
        assert cost > budget or quality <= best.quality + 1e-12


def test_best_fixed_w_below_the_cheapest_spend_is_the_cheapest(table, predictions):
    arrays = predictions.quality, predictions.cost, table.quality, table.cost
    best = best_fixed_w(*arrays, budget_usd_per_prompt=0.0)
    assert best.willingness_to_pay == 0.0 and best.cost > 0.0


def test_an_empty_stream_is_refused(table, predictions):
    with pytest.raises(ValueError, match="no rows"):
        simulate_pacing(
            table.quality, table.cost, predictions, np.arange(0), target_usd_per_prompt=1e-3, seed=0
        )
