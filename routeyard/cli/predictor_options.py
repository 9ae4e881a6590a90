"""The predictor kinds' hyperparameters as command-line options, made from their ``parameters`` models.

Every field of every registered kind's parameters model becomes ``--<field-name>`` (``prior_k`` is
``--prior-k``), shared by the kinds that have a field of that name; a field whose option the command
already has (``--seed``) becomes ``--<kind>-<field>`` for each kind, setting that kind's alone. Options
are optional: what is not given takes the kind's default (or, where the command searches, is chosen by
cross-validation). An option given for kinds that do not have it is an error, never silently ignored.
"""

from __future__ import annotations

import argparse
import typing
from dataclasses import dataclass
from typing import Any

from pydantic.fields import FieldInfo

from routeyard.predictor.kinds import PREDICTOR_KINDS

_ORIGIN = "predictor_options"


@dataclass(frozen=True)
class _Option:
    dest: str
    field: str
    kinds: tuple[str, ...]


def add_predictor_options(parser: argparse.ArgumentParser) -> None:
    """Add every registered predictor kind's hyperparameters to ``parser`` (see the module docstring)."""
    options: dict[str, _Option] = {}
    group = parser.add_argument_group(
        "predictor hyperparameters (a value given is pinned; the others are searched, or each kind's default)"
    )
    for kind in PREDICTOR_KINDS:
        for field, info in kind.parameters.model_fields.items():
            dest = f"parameter_{field}"
            if dest in options:
                options[dest] = _Option(dest, field, (*options[dest].kinds, kind.name))
                continue
            option = _add(group, field, kind.name, info)
            options[option.dest] = option
    parser.set_defaults(**{_ORIGIN: tuple(options.values())})


def predictor_parameters(args: argparse.Namespace, kind: str) -> dict[str, Any]:
    """The hyperparameters given on the command line that apply to predictor ``kind``."""
    options: tuple[_Option, ...] = getattr(args, _ORIGIN)
    return {o.field: getattr(args, o.dest) for o in options if hasattr(args, o.dest) and kind in o.kinds}


def check_predictor_options(args: argparse.Namespace, kinds: tuple[str, ...]) -> None:
    """Raise ``ValueError`` for a hyperparameter option given that none of ``kinds`` has."""
    options: tuple[_Option, ...] = getattr(args, _ORIGIN)
    for option in options:
        if hasattr(args, option.dest) and not set(option.kinds) & set(kinds):
            raise ValueError(
                f"--{option.field.replace('_', '-')} is a hyperparameter of {', '.join(option.kinds)}, "
                f"not of {', '.join(kinds) or 'any predictor asked for'}"
            )


def _add(group: argparse._ArgumentGroup, field: str, kind: str, info: FieldInfo) -> _Option:
    """Add ``--<field>`` (shared by kinds), or ``--<kind>-<field>`` (this kind's) where the command has
    ``--<field>`` already; returns the option added."""
    arguments = _argument_type(info.annotation)
    help_text = f"{kind}: {info.description or field} (default {info.default!r})"
    flag, dest = "--" + field.replace("_", "-"), f"parameter_{field}"
    try:
        group.add_argument(flag, dest=dest, default=argparse.SUPPRESS, help=help_text, **arguments)
    except argparse.ArgumentError:  # the command has that option already (--seed): qualify it
        flag, dest = f"--{kind}-{field.replace('_', '-')}", f"parameter_{kind}_{field}"
        group.add_argument(flag, dest=dest, default=argparse.SUPPRESS, help=help_text, **arguments)
    return _Option(dest, field, (kind,))


def _argument_type(annotation: Any) -> dict[str, Any]:
    """argparse's ``type``/``choices`` for a field's annotation (int, float, str, bool or a Literal)."""
    if typing.get_origin(annotation) is typing.Literal:
        return {"choices": typing.get_args(annotation)}
    if annotation is bool:
        return {"type": _boolean, "metavar": "{true,false}"}
    if annotation in (int, float, str):
        return {"type": annotation, "metavar": annotation.__name__.upper()}
    return {"type": str, "metavar": "TEXT"}


def _boolean(text: str) -> bool:
    if text.lower() in ("true", "1", "yes"):
        return True
    if text.lower() in ("false", "0", "no"):
        return False
    raise argparse.ArgumentTypeError(f"expected true or false, got {text!r}")
