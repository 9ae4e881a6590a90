"""Registries of kinds: how a new predictor, judge, router or backend plugs into routeyard.

Every seam keeps one :class:`Registry` of its kinds. A kind is a small frozen record (its ``name``, its
config model, its constructor; each seam defines its own record type) that the module implementing it
registers when it is imported::

    PREDICTOR_KINDS.register(PredictorKind(name="knn", parameters=KnnParameters, train=…, load=…))

A registry finds its kinds the first time it is asked for one:

- the built-in ones by importing every module of the seam's *kinds package* (``predictor/kinds/``,
  ``judges/kinds/``, ``gateway/routers/``, ``gateway/backends/kinds/``), so a new built-in kind is one new
  file there and no other edit;
- third-party ones from the entry-point group ``routeyard.<seam>`` of any installed distribution, each
  entry point naming a module to import (``[project.entry-points."routeyard.predictor"] toy = "pkg.toy"``);
- kinds registered by hand (a test fixture) count from the moment they are registered.

Importing a registry imports no kind: nothing happens at import time. A pydantic union built from a
registry (:func:`kind_union`) knows the kinds registered when it is built: the gateway's settings build
theirs when ``routeyard.gateway.settings`` is imported (docs/architecture.md §6).
"""

from __future__ import annotations

import importlib
import pkgutil
import threading
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from importlib.metadata import entry_points
from typing import Annotated, Any, Generic, Protocol, TypeVar, Union

from pydantic import BaseModel, ConfigDict, Discriminator, Tag

from routeyard.validation import union_tag


class Named(Protocol):
    """What a kind record must have: the name configs and command lines use for it."""

    @property
    def name(self) -> str: ...


K = TypeVar("K", bound=Named)


class UnknownKindError(ValueError):
    """No kind of that name is registered; the message lists the known ones."""


class Registry(Generic[K]):
    """The kinds of one seam, by name (see the module docstring).

    ``seam`` names the seam in messages and the entry-point group (``routeyard.<seam>``);
    ``kinds_package`` is the dotted name of the package whose modules are the built-in kinds.
    """

    def __init__(self, seam: str, kinds_package: str) -> None:
        self.seam = seam
        self.kinds_package = kinds_package
        self._kinds: dict[str, K] = {}
        self._discovered = False
        self._discovering = False
        self._lock = threading.Lock()  # guards _kinds only, never held across an import
        self._discovery = threading.RLock()  # one discovery at a time; reentrant for the importing thread

    def register(self, kind: K) -> K:
        """Add ``kind``; returns it. Raises ``ValueError`` when another kind already has its name
        (registering the very same record again is allowed: a module imported twice)."""
        with self._lock:
            known = self._kinds.get(kind.name)
            if known is not None and known != kind:
                raise ValueError(f"a {self.seam} kind named {kind.name!r} is already registered")
            self._kinds[kind.name] = kind
        return kind

    def unregister(self, name: str) -> None:
        """Remove the kind called ``name`` (a test fixture's cleanup); no error when absent."""
        with self._lock:
            self._kinds.pop(name, None)

    def get(self, name: str) -> K:
        """The kind called ``name``; raises :class:`UnknownKindError` naming the known ones."""
        self._discover()
        with self._lock:
            kind = self._kinds.get(name)
        if kind is None:
            raise UnknownKindError(f"unknown {self.seam} kind {name!r}; known: {', '.join(self.names())}")
        return kind

    def names(self) -> tuple[str, ...]:
        """Every registered kind's name, sorted."""
        self._discover()
        with self._lock:
            return tuple(sorted(self._kinds))

    def __iter__(self) -> Iterator[K]:
        """The registered kinds, sorted by name."""
        self._discover()
        with self._lock:
            return iter([self._kinds[name] for name in sorted(self._kinds)])

    def __contains__(self, name: object) -> bool:
        self._discover()
        with self._lock:
            return name in self._kinds

    def _discover(self) -> None:
        """Import the built-in kind modules and the entry points' modules, once.

        A kind module that asks this registry while being imported by the discovery sees what is
        registered so far (no recursion). A failed import propagates and discovery is tried again at
        the next question, never left silently half done. ``register`` does not wait for a discovery,
        so a thread importing a kind module cannot deadlock with one discovering.
        """
        if self._discovered:
            return
        with self._discovery:
            if self._discovered or self._discovering:
                return
            self._discovering = True
            try:
                for module in self._kind_modules():
                    importlib.import_module(module)
                self._discovered = True
            finally:
                self._discovering = False

    def _kind_modules(self) -> list[str]:
        package = importlib.import_module(self.kinds_package)
        built_in = [
            module.name
            for module in pkgutil.iter_modules(package.__path__, prefix=self.kinds_package + ".")
            if not module.name.rpartition(".")[2].startswith("_")
        ]
        plugins = [entry.value.partition(":")[0] for entry in entry_points(group=f"routeyard.{self.seam}")]
        return built_in + plugins


Config = TypeVar("Config", bound="KindConfig")
Context = TypeVar("Context")
Built = TypeVar("Built")


@dataclass(frozen=True)
class ConfiguredKind(Generic[Config, Context, Built]):
    """The record of a kind configured in YAML (a judge, a router, a backend); each seam names its own
    alias, e.g. ``RouterKind = ConfiguredKind[RouterConfig, RouterContext, Router]``.

    Attributes:
        name: the kind's name, e.g. ``"fixed"``; its config's ``kind`` (a predictive router's config
            serves every predictor kind's name).
        config: its config model, a subclass of the seam's ``KindConfig`` subclass.
        build: ``build(config, context)`` makes the seam's object from a valid ``config`` whose
            ``problems()`` are none; raises ``ValueError`` (or ``OSError`` for a file it reads) with a
            clear message when what the config names cannot be used.
    """

    name: str
    config: type[Config]
    build: Callable[[Any, Context], Built]


class KindConfig(BaseModel):
    """The configuration of one kind: ``kind`` names it in its registry; unknown fields are errors.

    Each seam subclasses it once (``BackendConfig``, ``JudgeConfig``, ``RouterConfig``), and each kind
    of that seam once more, with ``kind`` as a ``Literal`` of its name.
    """

    model_config = ConfigDict(extra="forbid")

    kind: str


def kind_union(
    configs: Mapping[str, type[KindConfig]],
    *,
    default: str | None = None,
    tag_of: Callable[[str], str] | None = None,
    known: Sequence[str] | None = None,
) -> Any:
    """A pydantic discriminated union of ``configs`` (tag → config model), discriminated by ``kind``.

    ``default`` is the tag of an input without ``kind``; ``tag_of`` maps a ``kind`` value to a tag, for
    a config model that serves several kind names (a predictive router serves every predictor kind).
    An unknown or missing ``kind`` is a validation error that lists ``known`` (default: the tags). The
    tags pydantic puts in an error's location are marked (:func:`routeyard.validation.union_tag`), so
    ``validation_problems`` leaves them out: ``backends.0.retries``, not ``backends.0.openai.retries``.
    """

    def tag(value: Any) -> str | None:
        kind = value.get("kind", default) if isinstance(value, dict) else getattr(value, "kind", default)
        if not isinstance(kind, str):
            return None
        return union_tag(tag_of(kind) if tag_of is not None else kind)

    members = tuple(Annotated[model, Tag(union_tag(name))] for name, model in configs.items())
    message = f"kind must be one of: {', '.join(known if known is not None else configs)}"
    discriminator = Discriminator(tag, custom_error_type="unknown_kind", custom_error_message=message)
    return Annotated[Union[members], discriminator]  # noqa: UP007 — a Union built at run time
