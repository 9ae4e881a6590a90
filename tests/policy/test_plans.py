"""Plans: names that read as what they do, specs that round-trip, and the agreement pair's settle rule."""

import numpy as np
import pytest

from routeyard.policy.plans import (
    AgreementPlan,
    SinglePlan,
    agreement_outcome,
    keeps_first,
    plan_from_spec,
    verdict_of,
)


def test_plans_round_trip_through_their_specs():
    for plan in (SinglePlan("gpt-4"), AgreementPlan("mixtral", "claude-instant", "gpt-4")):
        assert plan_from_spec(plan.spec()) == plan


def test_an_agreement_plan_is_named_by_what_it_does():
    plan = AgreementPlan("mixtral", "claude-instant", "gpt-4")
    assert plan.name == "agree(mixtral, claude-instant) else gpt-4"
    assert plan.models == ("mixtral", "claude-instant", "gpt-4")


@pytest.mark.parametrize(
    "spec", [{"kind": "vote"}, {"kind": "single"}, {"model": "x"}, {"kind": "agreement", "first": "a"}]
)
def test_a_spec_that_is_no_plan_is_refused(spec):
    with pytest.raises(ValueError):
        plan_from_spec(spec)


def test_an_agreement_plan_needs_three_different_models():
    with pytest.raises(ValueError, match="three different models"):
        AgreementPlan("a", "a", "b")


def test_the_pair_keeps_its_answer_on_agreement_or_when_the_fallback_accepts_what_it_cannot_tell():
    assert keeps_first(verdict_of(True), fallback_accepts=False)
    assert not keeps_first(verdict_of(False), fallback_accepts=True)
    assert keeps_first(verdict_of(None), fallback_accepts=True)
    assert not keeps_first(verdict_of(None), fallback_accepts=False)


def test_the_pair_pays_both_calls_and_the_escalation_only_when_taken():
    kept = np.array([True, False])
    quality, cost = agreement_outcome(
        kept,
        (np.array([1.0, 1.0]), np.array([0.1, 0.1])),
        np.array([0.2, 0.2]),
        (np.array([0.5, 0.0]), np.array([3.0, 3.0])),
    )
    np.testing.assert_allclose(quality, [1.0, 0.0])
    np.testing.assert_allclose(cost, [0.3, 3.3])
