"""Every image deploy/ runs or builds on is pinned: a digest or an exact version, never a moving tag."""

import re
import tomllib

from tests.deploy.deploy_files import DEPLOY, compose, every_container, kubernetes_documents

PINNED = re.compile(r"^[\w.\-/]+(:v?\d+\.\d+\.\d+[\w.\-]*)?(@sha256:[0-9a-f]{64})?$")
PROJECT_VERSION = tomllib.loads((DEPLOY.parent / "pyproject.toml").read_text())["project"]["version"]


def pinned(image: str) -> bool:
    """Whether ``image`` names one build: by digest, or by an exact x.y.z version tag."""
    match = PINNED.match(image)
    return bool(match and (match[1] or match[2]))


def test_the_pin_rule_tells_moving_tags_from_exact_ones():
    for moving in ("redis", "redis:7", "redis:latest", "python:3.11-slim", "routeyard:latest", "redis:7.2"):
        assert not pinned(moving), moving
    for exact in (
        "redis:7.2.10",
        "prom/prometheus:v2.53.0",
        "python:3.11.12-slim-bookworm",
        "r@sha256:" + "a" * 64,
    ):
        assert pinned(exact), exact


def test_every_image_is_pinned():
    images = [service["image"] for service in compose()["services"].values()]
    images += [
        container["image"]
        for doc in kubernetes_documents()
        if doc["kind"] in ("Deployment", "StatefulSet")
        for container in every_container(doc)
    ]
    images += re.findall(r"^FROM (\S+)", (DEPLOY / "Dockerfile").read_text(), re.MULTILINE)
    assert len(images) >= 8
    assert [image for image in images if not pinned(image)] == []


def test_the_gateway_image_is_tagged_with_the_project_version():
    gateway_images = {compose()["services"]["gateway"]["image"]}
    gateway_images |= {
        container["image"]
        for doc in kubernetes_documents()
        if doc["kind"] == "Deployment"
        for container in every_container(doc)
    }
    assert gateway_images == {f"routeyard:{PROJECT_VERSION}"}
    assert f"-t routeyard:{PROJECT_VERSION} ." in (DEPLOY / "Dockerfile").read_text()
