"""FanOutUsageLog keeps its sinks apart: one that raises neither starves the others nor fails a request."""

import logging

import pytest

from routeyard.gateway.metrics import GatewayMetrics
from routeyard.gateway.usage import Attempt, ExplorationRecord, FanOutUsageLog, InMemoryUsageLog, RouteRecord

SECRET_PROMPT = "my secret prompt text"


class BrokenSink:
    """A UsageLog that raises on everything, quoting what it got (as a careless sink would)."""

    def record(self, record):
        raise RuntimeError(f"cannot keep {record}")

    def feedback(self, request_id, quality, rater=None):
        raise KeyError(request_id)

    def explored(self, record):
        raise ValueError(f"cannot keep {record}")


def a_record(request_id="req_" + "1" * 32, cost=0.002):
    return RouteRecord(
        request_id,
        0.0,
        "router-knn",
        "cheap",
        200,
        "a" * 64,
        cost_usd=cost,
        attempts=(Attempt("cheap", "ok", cost, 0.01),),
        prompt_turns=(SECRET_PROMPT,),
    )


def an_explored_answer():
    return ExplorationRecord(
        "req_" + "1" * 32,
        0.0,
        "router-knn",
        "dear",
        False,
        0.5,
        ("cheap", "dear"),
        1.0,
        0.01,
        0.0,
        "a" * 64,
        prompt_turns=(SECRET_PROMPT,),
    )


def test_a_sink_that_raises_is_logged_by_type_and_the_others_still_get_everything(caplog):
    before, after = InMemoryUsageLog(), InMemoryUsageLog()
    fan_out = FanOutUsageLog(before, BrokenSink(), after)
    with caplog.at_level(logging.ERROR, logger="routeyard.usage"):
        fan_out.record(a_record())  # does not raise
        fan_out.feedback("req_" + "1" * 32, 0.5)
        fan_out.explored(an_explored_answer())
    assert (
        [r.request_id for r in after.records] == [r.request_id for r in before.records] == ["req_" + "1" * 32]
    )
    assert after.feedbacks == before.feedbacks == {"req_" + "1" * 32: 0.5}
    assert list(after.explorations) == list(before.explorations) == [an_explored_answer()]
    assert fan_out.failures == 3
    assert caplog.messages == [
        "usage log BrokenSink failed on a record (RuntimeError)",
        "usage log BrokenSink failed on a feedback (KeyError)",
        "usage log BrokenSink failed on an explored answer (ValueError)",
    ]
    assert not any(SECRET_PROMPT in m or "req_" in m for m in caplog.messages)


def test_a_metrics_sink_refusing_a_negative_cost_does_not_cost_the_redis_record():
    metrics, kept = GatewayMetrics(), InMemoryUsageLog()
    with pytest.raises(ValueError):  # what the gateway's own metrics sink does with it
        GatewayMetrics().record(a_record(cost=-0.5))
    fan_out = FanOutUsageLog(metrics, kept)  # the gateway's order: metrics first, the log after
    fan_out.record(a_record("req_" + "2" * 32, cost=-0.5))
    fan_out.record(a_record("req_" + "3" * 32))
    assert [r.request_id for r in kept.records] == ["req_" + "2" * 32, "req_" + "3" * 32]
    assert fan_out.failures == 1
    assert metrics.registry.get_sample_value("routeyard_cost_usd_total", {"backend": "cheap"}) == 0.002
