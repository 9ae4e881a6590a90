"""The kind registry: discovery of a kinds package, registration, unknown kinds, config unions."""

import sys
from dataclasses import dataclass
from typing import Literal

import pytest
from pydantic import BaseModel, ValidationError

from routeyard.registry import KindConfig, Registry, UnknownKindError, kind_union


@dataclass(frozen=True)
class Shape:
    name: str
    sides: int


@pytest.fixture
def kinds_package(tmp_path, monkeypatch):
    """A package ``shapes_kinds`` on sys.path; write modules into the returned directory."""
    package = tmp_path / "shapes_kinds"
    package.mkdir()
    (package / "__init__.py").write_text(
        "from tests.test_registry import Registry\nSHAPES = Registry('shape', __name__)\n"
    )
    monkeypatch.syspath_prepend(str(tmp_path))
    yield package
    for name in [m for m in sys.modules if m.startswith("shapes_kinds")]:
        del sys.modules[name]


def _kind_module(package, name, sides, extra=""):
    (package / f"{name}.py").write_text(
        "from shapes_kinds import SHAPES\n"
        "from tests.test_registry import Shape\n"
        f"{extra}\nSHAPES.register(Shape({name!r}, {sides}))\n"
    )


def test_every_module_of_the_kinds_package_is_a_kind_found_on_first_question(kinds_package):
    _kind_module(kinds_package, "triangle", 3)
    _kind_module(kinds_package, "square", 4)
    (kinds_package / "_helpers.py").write_text("raise RuntimeError('private modules are not kinds')\n")
    from shapes_kinds import SHAPES

    assert "shapes_kinds.triangle" not in sys.modules  # importing the registry imports no kind
    assert SHAPES.names() == ("square", "triangle")
    assert SHAPES.get("square").sides == 4
    assert [k.name for k in SHAPES] == ["square", "triangle"]


def test_a_kind_module_asking_its_registry_while_imported_sees_what_is_registered_so_far(kinds_package):
    _kind_module(kinds_package, "square", 4, extra="KNOWN_AT_IMPORT = SHAPES.names()")
    from shapes_kinds import SHAPES

    assert SHAPES.names() == ("square",)
    assert sys.modules["shapes_kinds.square"].KNOWN_AT_IMPORT == ()


def test_a_kind_module_that_fails_to_import_fails_every_question_until_it_is_fixed(kinds_package):
    (kinds_package / "broken.py").write_text("import no_such_module_here\n")
    _kind_module(kinds_package, "square", 4)
    from shapes_kinds import SHAPES

    for _ in range(2):  # not silently half discovered the second time
        with pytest.raises(ModuleNotFoundError):
            SHAPES.names()
    (kinds_package / "broken.py").unlink()
    assert SHAPES.names() == ("square",)


def test_registration_by_hand_unknown_kinds_and_name_clashes(kinds_package):
    registry: Registry[Shape] = Registry("shape", "shapes_kinds")  # a kinds package with no kinds
    registry.register(Shape("hexagon", 6))
    registry.register(Shape("hexagon", 6))  # the same record again: a module imported twice
    with pytest.raises(ValueError, match="a shape kind named 'hexagon' is already registered"):
        registry.register(Shape("hexagon", 7))
    with pytest.raises(UnknownKindError, match="unknown shape kind 'circle'; known: hexagon"):
        registry.get("circle")
    registry.unregister("hexagon")
    assert "hexagon" not in registry


class Fixed(KindConfig):
    kind: Literal["fixed"] = "fixed"
    backend: str


class Predictive(KindConfig):
    kind: str
    artifact: str


class Settings(BaseModel):
    routers: list[
        kind_union(  # type: ignore[valid-type]
            {"fixed": Fixed, "predictive": Predictive},
            default="fixed",
            tag_of=lambda kind: "predictive" if kind in ("knn", "mlp") else kind,
            known=("fixed", "knn", "mlp"),
        )
    ]


def test_a_kind_union_picks_the_config_by_kind_and_lists_the_known_kinds_otherwise():
    settings = Settings.model_validate({"routers": [{"backend": "a"}, {"kind": "knn", "artifact": "x"}]})
    fixed, predictive = settings.routers
    assert isinstance(fixed, Fixed) and isinstance(predictive, Predictive)
    with pytest.raises(ValidationError, match="kind must be one of: fixed, knn, mlp"):
        Settings.model_validate({"routers": [{"kind": "svm"}]})
    with pytest.raises(ValidationError, match="Extra inputs are not permitted"):
        Settings.model_validate({"routers": [{"kind": "fixed", "backend": "a", "colour": 1}]})
