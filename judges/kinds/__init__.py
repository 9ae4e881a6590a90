"""Judge kinds: one module here per kind of :class:`~routeyard.judges.judge.Judge` a cascade can use.

A kind module registers a :class:`JudgeKind` in :data:`JUDGE_KINDS` when it is imported: its name (what
a cascade's ``judge.kind`` says), its config (a :class:`JudgeConfig` subclass whose ``kind`` is a
``Literal`` of that name) and how to build the judge from that config and a :class:`JudgeContext`. A new
kind is one new module in this package (or in another distribution, through the entry-point group
``routeyard.judge``); :func:`build_judge` builds any of them.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from routeyard.judges.chat_completer import ChatCompleter
from routeyard.judges.heuristic_checks import HeuristicJudge, WithHeuristics
from routeyard.judges.judge import Judge
from routeyard.predictor.embedder import Embedder
from routeyard.registry import ConfiguredKind, KindConfig, Registry


class JudgeConfig(KindConfig):
    """The configuration of a judge; each kind subclasses it.

    ``heuristics`` (default true): run the cheap checks (empty, refusal, truncated) first and ask the
    judge only about answers that pass them (meaningless for the ``heuristics`` kind, which is them).
    """

    heuristics: bool = True

    def problems(self, backends: set[str]) -> list[str]:
        """What is wrong with the config that its fields alone do not show (a backend that is not one of
        ``backends``, the gateway's backend names; an unusable artifact), one sentence each; [] when
        nothing is. Reads files, never loads a model."""
        return []


@dataclass(frozen=True)
class JudgeContext:
    """What building a judge may use.

    Attributes:
        embedder: the gateway's prompt embedder (a learned judge embeds prompts and answers with it).
        completer: ``completer(backend)`` is a :class:`ChatCompleter` over the gateway backend of that
            name (an LLM judge grades through it); raises ``ValueError`` for a name that is no backend.
    """

    embedder: Embedder
    completer: Callable[[str], ChatCompleter]


JudgeKind = ConfiguredKind[JudgeConfig, JudgeContext, Judge]
"""A kind of judge (the record ``routeyard.registry.ConfiguredKind`` describes)."""


JUDGE_KINDS: Registry[JudgeKind] = Registry("judge", __name__)
"""Every judge kind, by name."""


def build_judge(config: JudgeConfig, context: JudgeContext) -> Judge:
    """The judge ``config`` describes, built by the kind named ``config.kind``, behind the heuristic
    checks when ``config.heuristics`` (unless it is the heuristic judge itself).

    Raises ``routeyard.registry.UnknownKindError`` for an unregistered kind and ``ValueError`` when the
    kind cannot build it.
    """
    judge = JUDGE_KINDS.get(config.kind).build(config, context)
    if config.heuristics and not isinstance(judge, HeuristicJudge):
        return WithHeuristics(judge)
    return judge
