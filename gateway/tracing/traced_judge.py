"""A traced judge: each grading a ``judge <name>`` span with ``gen_ai.evaluation.*`` and the grader's $."""

from typing import Any

from opentelemetry.semconv._incubating.attributes import gen_ai_attributes as gen_ai

from routeyard.gateway.tracing import Tracer
from routeyard.gateway.tracing.span_failure import mark_failed
from routeyard.judges.judge import Answer, Judge, Judgement


class TracedJudge:
    """``judge`` with a span per grading: ``gen_ai.evaluation.name`` and ``.score.value``, whether it
    was confident, the model judged, and a paid grading's grader and $ (its own upstream call, through
    a traced backend, is a child span)."""

    def __init__(self, judge: Judge, tracer: Tracer) -> None:
        self.name = judge.name
        self.inner = judge
        self._tracer = tracer

    def __getattr__(self, name: str) -> Any:
        return getattr(self.inner, name)

    async def judge(self, prompt: str, answer: Answer) -> Judgement:
        """``judge.judge(prompt, answer)`` in a span."""
        attributes = {gen_ai.GEN_AI_EVALUATION_NAME: self.name}
        if answer.model is not None:
            attributes["routeyard.judge.answer_model"] = answer.model
        with self._tracer.start_as_current_span(
            f"judge {self.name}", attributes=attributes, record_exception=False, set_status_on_exception=False
        ) as span:
            try:
                judgement = await self.inner.judge(prompt, answer)
            except BaseException as exc:
                mark_failed(span, exc)
                raise
            span.set_attribute(gen_ai.GEN_AI_EVALUATION_SCORE_VALUE, judgement.score)
            span.set_attribute("routeyard.judge.confident", judgement.confident)
            span.set_attribute("routeyard.cost_usd", judgement.cost_usd)
            if judgement.grader is not None:
                span.set_attribute("routeyard.judge.grader", judgement.grader)
            return judgement


def traced_judge(judge: Judge, tracer: Tracer | None) -> Judge:
    """``judge`` in a :class:`TracedJudge`, or itself when ``tracer`` is None."""
    return judge if tracer is None else TracedJudge(judge, tracer)
