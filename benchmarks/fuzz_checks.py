"""How the gateway fuzzer judges an answer, and the figures of a run.

An answer has a problem (:func:`problems_of`) when:

- there is none, though the probe waited for it (``no answer``);
- its status is 5xx other than the documented upstream ones (502, 503, 504 with an OpenAI-shaped body),
  or a stream it sent carried an ``internal error`` (``server error``);
- it is a 4xx or 5xx whose body is not ``{"error": {"message", "type", "param", "code"}}`` with a
  non-empty message and type (``not OpenAI-shaped``), or an error event of a stream is not;
  the plain-text 400 of uvicorn's HTTP parser (a request it could not parse never reaches the app)
  is told apart as ``HTTP parser's plain 400``;
- it contains a secret, in its body or a header (``echoes a secret``);
- it is under 400 though the probe was past any sane limit (``oversized request accepted``).

:class:`Tally` counts what a run sent and got, keeps a few reproducers per problem and gives the run's
figures. :func:`log_problems` reads the gateway's log for internal errors and secrets.
"""

from __future__ import annotations

import collections
import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from benchmarks.fuzz_probe import Probe
from benchmarks.fuzz_sender import Answer

UPSTREAM_STATUSES = frozenset({502, 503, 504})
"""The documented 5xx: an upstream failed, timed out or none was available (``routeyard.gateway.errors``)."""
PARSER_REFUSAL = b"Invalid HTTP request received."
"""The body of uvicorn's own 400 for a request its HTTP parser refused."""
INTERNAL_ERROR_MARK = "internal error"
"""How the gateway's log and its error bodies name an exception nothing handled (a 500)."""

NO_ANSWER = "no answer"
SERVER_ERROR = "server error"
NOT_OPENAI_SHAPED = "not OpenAI-shaped"
PARSER_PLAIN_400 = "HTTP parser's plain 400"
SECRET_ECHOED = "echoes a secret"
OVERSIZED_ACCEPTED = "oversized request accepted"
_ERROR_FIELDS = {"message", "type", "param", "code"}
EXAMPLES_KEPT = 5


def openai_error(body: bytes | str) -> dict[str, Any] | None:
    """The error object of an OpenAI-shaped error body, or None when the body is not one."""
    try:
        value = json.loads(body)
    except ValueError:
        return None
    error = value.get("error") if isinstance(value, dict) and set(value) == {"error"} else None
    if not isinstance(error, dict) or set(error) != _ERROR_FIELDS:
        return None
    texts_ok = all(isinstance(error[name], str) and error[name] for name in ("message", "type"))
    param_ok = error["param"] is None or isinstance(error["param"], str)
    code_ok = error["code"] is None or isinstance(error["code"], str | int)
    return error if texts_ok and param_ok and code_ok else None


def problems_of(probe: Probe, answer: Answer, secrets: Iterable[str]) -> list[str]:
    """What is wrong with ``answer`` to ``probe`` (see the module docstring); empty when nothing is."""
    if answer.status is None:
        return [NO_ANSWER] if probe.answer_expected else []
    found = []
    shaped = openai_error(answer.body) is not None
    if answer.status >= 500 and not (answer.status in UPSTREAM_STATUSES and shaped):
        found.append(SERVER_ERROR)
    if answer.status >= 400 and not shaped:
        found.append(PARSER_PLAIN_400 if answer.body == PARSER_REFUSAL else NOT_OPENAI_SHAPED)
    if answer.status < 400 and "text/event-stream" in answer.headers.get("content-type", ""):
        found += _stream_problems(answer.body)
    seen = answer.body + "\n".join(f"{k}: {v}" for k, v in answer.headers.items()).encode("utf-8", "replace")
    if any(secret.encode() in seen for secret in secrets):
        found.append(SECRET_ECHOED)
    if probe.must_refuse and answer.status < 400:
        found.append(OVERSIZED_ACCEPTED)
    return found


def _stream_problems(body: bytes) -> list[str]:
    """Problems of the error events of an SSE body: one not OpenAI-shaped, or an internal error."""
    found = []
    for line in body.split(b"\n"):
        if not line.startswith(b"data:") or b'"error"' not in line:
            continue
        error = openai_error(line.removeprefix(b"data:").strip())
        if error is None:
            found.append(NOT_OPENAI_SHAPED)
        elif error["type"] == "server_error":
            found.append(SERVER_ERROR)
    return found


def log_problems(log_text: str, secrets: Iterable[str]) -> dict[str, int]:
    """How many internal errors the gateway's log reports, and how many secrets it contains."""
    return {
        "internal errors logged": log_text.count(INTERNAL_ERROR_MARK),
        "secrets in the log": sum(log_text.count(secret) for secret in secrets),
    }


@dataclass
class Tally:
    """What a run sent and got: counts by family, status and problem, and up to :data:`EXAMPLES_KEPT`
    reproducers per problem (secrets masked by ``placeholders``: value → placeholder)."""

    placeholders: Mapping[str, str] = field(default_factory=dict)
    sent: int = 0
    families: collections.Counter[str] = field(default_factory=collections.Counter)
    statuses: collections.Counter[str] = field(default_factory=collections.Counter)
    problems: collections.Counter[str] = field(default_factory=collections.Counter)
    examples: dict[str, list[str]] = field(default_factory=dict)

    def record(self, probe: Probe, answer: Answer) -> list[str]:
        """Count ``answer`` to ``probe``; its problems (also counted, and kept as examples)."""
        self.sent += 1
        self.families[probe.family] += 1
        self.statuses[str(answer.status) if answer.status is not None else "none"] += 1
        found = problems_of(probe, answer, self.placeholders.keys())
        for problem in dict.fromkeys(found):
            self.problems[problem] += 1
            kept = self.examples.setdefault(problem, [])
            if len(kept) < EXAMPLES_KEPT:
                kept.append(self._example(probe, answer))
        return found

    def _example(self, probe: Probe, answer: Answer) -> str:
        got = f"{answer.status} {answer.body[:300]!r}" if answer.status is not None else answer.failure
        text = f"{probe.describe(self.placeholders)}\n  -> {got}"
        for secret, placeholder in self.placeholders.items():
            text = text.replace(secret, placeholder)
        return text

    def figures(self) -> dict[str, Any]:
        """The run's figures, JSON-ready."""
        five_xx = sum(count for status, count in self.statuses.items() if status.startswith("5"))
        return {
            "requests sent": self.sent,
            "by family": dict(sorted(self.families.items())),
            "status histogram": dict(sorted(self.statuses.items())),
            "5xx answers": five_xx,
            "5xx other than documented upstream ones": self.problems[SERVER_ERROR],
            "errors not OpenAI-shaped": self.problems[NOT_OPENAI_SHAPED],
            "HTTP parser's plain 400s": self.problems[PARSER_PLAIN_400],
            "answers echoing a secret": self.problems[SECRET_ECHOED],
            "oversized requests accepted": self.problems[OVERSIZED_ACCEPTED],
            "no answer": self.problems[NO_ANSWER],
            "examples": self.examples,
        }
