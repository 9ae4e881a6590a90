"""deploy/compose.yaml and the env example: no default password, nothing open that should not be, the
gateway authenticates, and its keys come from an env file that holds none."""

import re

import pytest

from routeyard.gateway.settings import GatewaySettings, reference_problems, secret_problems
from tests.deploy.deploy_files import (
    COMPOSE_VARIABLE,
    DEPLOY,
    compose,
    env_example,
    filled_env_file,
    interpolate,
)


def gateway_settings(monkeypatch: pytest.MonkeyPatch, env_file: dict[str, str]) -> GatewaySettings:
    """The settings a compose gateway replica starts with, given the contents of deploy/routeyard.env."""
    gateway = compose()["services"]["gateway"]
    for name, value in {**env_file, **gateway["environment"]}.items():
        monkeypatch.setenv(name, interpolate(str(value), env_file))
    return GatewaySettings()


def test_compose_refuses_to_start_without_the_grafana_and_redis_passwords():
    text = (DEPLOY / "compose.yaml").read_text()
    variables = {m["name"]: m["rest"] for m in COMPOSE_VARIABLE.finditer(text)}
    assert {"GRAFANA_ADMIN_PASSWORD", "REDIS_PASSWORD"} <= set(variables)
    assert all(rest.startswith(":?") for rest in variables.values()), variables  # no defaults
    grafana = compose()["services"]["grafana"]["environment"]
    password = grafana["GF_SECURITY_ADMIN_PASSWORD"]
    assert interpolate(password, {"GRAFANA_ADMIN_PASSWORD": "chosen"}) == "chosen"
    for missing in ({}, {"GRAFANA_ADMIN_PASSWORD": ""}):
        with pytest.raises(KeyError, match="refuses to start"):
            interpolate(password, missing)


def test_grafana_has_no_anonymous_access_and_no_sign_up():
    grafana = compose()["services"]["grafana"]["environment"]
    assert grafana["GF_AUTH_ANONYMOUS_ENABLED"] == "false"
    assert grafana["GF_USERS_ALLOW_SIGN_UP"] == "false"
    assert "GF_AUTH_ANONYMOUS_ORG_ROLE" not in grafana


def test_only_the_gateway_api_is_published_beyond_this_machine():
    services = compose()["services"]
    for name in ("prometheus", "grafana"):
        ports = services[name]["ports"]
        assert ports and all(p.startswith("127.0.0.1:") for p in ports), (name, ports)
    assert "ports" not in services["redis"]
    gateway = services["gateway"]
    assert [p.rsplit(":", 1)[1] for p in gateway["ports"]] == ["8000"]  # the API port, not the metrics one


def test_the_compose_gateway_authenticates_clients_and_serves_metrics_on_the_scraped_port(monkeypatch):
    gateway = compose()["services"]["gateway"]
    assert gateway["env_file"] == ["routeyard.env"]  # compose refuses to start without the file
    settings = gateway_settings(monkeypatch, filled_env_file())
    assert reference_problems(settings) + secret_problems(settings) == []
    assert settings.authenticates_clients and settings.virtual_keys
    assert settings.client_keys() == {filled_env_file()["ROUTEYARD_CLIENT_KEYS"]}
    assert settings.admin_key() == filled_env_file()["ROUTEYARD_ADMIN_KEY"]
    assert settings.request_id_secret() == filled_env_file()["ROUTEYARD_REQUEST_ID_SECRET"]
    password = filled_env_file()["REDIS_PASSWORD"]
    assert settings.redis_url == f"redis://:{password}@redis:6379/0"
    prometheus = (DEPLOY / "prometheus.yml").read_text()
    assert re.search(rf"^\s+port: {settings.metrics_port}$", prometheus, re.MULTILINE)
    assert str(settings.metrics_port) not in " ".join(gateway["ports"])


def test_the_env_example_holds_no_usable_secret(monkeypatch):
    example = env_example()
    assert example and all(value == "" for value in example.values()), example
    gateway_variables = {
        value
        for name, value in compose()["services"]["gateway"]["environment"].items()
        if name.endswith("_ENV")
    }
    assert gateway_variables | {"REDIS_PASSWORD"} <= set(example)
    assert "GRAFANA_ADMIN_PASSWORD" not in example  # the gateway would see it
    settings = gateway_settings(monkeypatch, {**example, "REDIS_PASSWORD": "set"})
    problems = " ".join(reference_problems(settings) + secret_problems(settings))
    for field in ("client_keys_env", "admin_key_env", "request_id_secret_env"):
        assert field in problems  # an example copied unfilled stops the gateway at start
