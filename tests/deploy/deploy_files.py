"""The files in deploy/, parsed as the tools that read them would: compose, Kubernetes, the env example."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import yaml

DEPLOY = Path(__file__).parents[2] / "deploy"
ENV_EXAMPLE = DEPLOY / "routeyard.env.example"
COMPOSE_VARIABLE = re.compile(r"\$\{(?P<name>\w+)(?P<rest>[^}]*)\}")
KUBERNETES_VARIABLE = re.compile(r"\$\((?P<name>\w+)\)")


def compose() -> dict[str, Any]:
    """deploy/compose.yaml as YAML (variables not interpolated)."""
    return yaml.safe_load((DEPLOY / "compose.yaml").read_text())


def interpolate(value: str, environment: dict[str, str]) -> str:
    """``value`` as compose interpolates it: ``${NAME:?message}`` is ``environment[NAME]``, an error when
    unset or empty (the only form compose.yaml uses for secrets)."""

    def substitute(match: re.Match[str]) -> str:
        name, rest = match["name"], match["rest"]
        assert rest.startswith(":?"), f"${{{name}{rest}}} would let compose start without {name}"
        if not environment.get(name):
            raise KeyError(f"compose refuses to start: {rest[2:]}")
        return environment[name]

    return COMPOSE_VARIABLE.sub(substitute, value).replace("$$", "$")


def kubernetes_documents() -> list[dict[str, Any]]:
    """Every manifest in deploy/kubernetes/."""
    return [
        doc
        for path in sorted((DEPLOY / "kubernetes").glob("*.yaml"))
        for doc in yaml.safe_load_all(path.read_text())
        if doc is not None
    ]


def kubernetes_objects(kind: str) -> dict[str, dict[str, Any]]:
    """The manifests of ``kind``, by name."""
    return {doc["metadata"]["name"]: doc for doc in kubernetes_documents() if doc["kind"] == kind}


def pod_spec(workload: dict[str, Any]) -> dict[str, Any]:
    """A Deployment's or StatefulSet's pod template spec."""
    spec: dict[str, Any] = workload["spec"]["template"]["spec"]
    return spec


def gateway_container() -> dict[str, Any]:
    """The gateway Deployment's container ``gateway``."""
    containers = pod_spec(kubernetes_objects("Deployment")["routeyard"])["containers"]
    (container,) = [c for c in containers if c["name"] == "gateway"]
    return container


def redis_statefulset() -> dict[str, Any]:
    """Redis's StatefulSet."""
    return kubernetes_objects("StatefulSet")["routeyard-redis"]


def every_container(workload: dict[str, Any]) -> list[dict[str, Any]]:
    """A workload's containers and init containers."""
    spec = pod_spec(workload)
    return [*spec.get("initContainers", []), *spec["containers"]]


def container_environment(container: dict[str, Any], secrets: dict[str, str]) -> dict[str, str]:
    """The variables a container starts with, as the kubelet makes them: ``envFrom`` and secret
    references from ``secrets`` (name → value), then ``env`` in order with ``$(NAME)`` expanded."""
    environment: dict[str, str] = {}
    for source in container.get("envFrom", []):
        assert set(source) == {"secretRef"}, source
        environment.update(secrets)
    for variable in container.get("env", []):
        if "valueFrom" in variable:
            environment[variable["name"]] = secrets[variable["valueFrom"]["secretKeyRef"]["key"]]
        else:
            environment[variable["name"]] = KUBERNETES_VARIABLE.sub(
                lambda m: environment.get(m["name"], m[0]), variable["value"]
            )
    return environment


def env_example() -> dict[str, str]:
    """deploy/routeyard.env.example as NAME → value (comments and blank lines left out)."""
    pairs = {}
    for line in ENV_EXAMPLE.read_text().splitlines():
        if line.strip() and not line.lstrip().startswith("#"):
            name, _, value = line.partition("=")
            pairs[name.strip()] = value
    return pairs


def filled_env_file() -> dict[str, str]:
    """The env example with every value filled in, as an operator's deploy/routeyard.env would be."""
    return {name: f"value0of0{name.lower().replace('_', '0')}" for name in env_example()}
