import pytest
import yaml

from routeyard.gateway.settings import ConfigError, load_settings


def write(tmp_path, settings):
    path = tmp_path / "routeyard.yaml"
    path.write_text(yaml.safe_dump(settings))
    return path


def test_a_bad_config_fails_at_start_with_every_problem_listed(tmp_path, monkeypatch):
    monkeypatch.delenv("NO_SUCH_KEY", raising=False)
    path = write(
        tmp_path,
        {
            "backends": [
                {"name": "a", "base_url": "ftp://x", "api_key_env": "NO_SUCH_KEY"},
                {"name": "a", "base_url": "http://127.0.0.1:1/v1"},
                {"name": "b"},
            ],
            "routers": [
                {"name": "r", "kind": "knn", "artifact": str(tmp_path / "missing")},
                {"name": "f", "kind": "fixed", "backend": "nowhere"},
            ],
            "default_router": "ghost",
            "otlp_endpoint": "collector:4318",
        },
    )
    with pytest.raises(ConfigError) as error:
        load_settings(path)
    text = "\n".join(error.value.problems)
    for expected in (
        "name 'a' is used twice",
        "base_url must start with http",
        "NO_SUCH_KEY",
        "base_url is required",
        "missing is not a directory",
        "backend 'nowhere' is not a configured backend",
        "default_router: 'ghost'",
        "otlp_endpoint: must start with http",
    ):
        assert expected in text
    assert len(error.value.problems) == 8


def test_field_errors_are_all_reported_with_their_place(tmp_path):
    path = write(
        tmp_path, {"backends": [{"name": "a", "timeout_seconds": -1, "retries": "many"}], "colour": 1}
    )
    with pytest.raises(ConfigError) as error:
        load_settings(path)
    places = [problem.split(":")[0] for problem in error.value.problems]
    assert {"backends.0.timeout_seconds", "backends.0.retries", "colour"} <= set(places)


def test_environment_variables_override_the_file(tmp_path, monkeypatch):
    path = write(tmp_path, {"max_body_bytes": 1000, "backends": [{"name": "a", "base_url": "http://h/v1"}]})
    monkeypatch.setenv("ROUTEYARD_MAX_BODY_BYTES", "2500")
    settings = load_settings(path)
    assert settings.max_body_bytes == 2500 and settings.backends[0].name == "a"


def test_an_unreadable_or_non_mapping_file_is_a_config_error(tmp_path):
    with pytest.raises(ConfigError, match="cannot read"):
        load_settings(tmp_path / "absent.yaml")
    (tmp_path / "list.yaml").write_text("- 1\n- 2\n")
    with pytest.raises(ConfigError, match="mapping"):
        load_settings(tmp_path / "list.yaml")


def test_router_artifacts_are_read_at_start(tmp_path, artifact):
    empty = tmp_path / "empty"
    empty.mkdir()
    path = write(
        tmp_path,
        {
            "backends": [{"name": "a", "base_url": "http://127.0.0.1:1/v1"}],
            "routers": [
                {"name": "r1", "kind": "knn", "artifact": str(empty)},
                {"name": "r2", "kind": "knn", "artifact": str(artifact)},
                {"name": "r3", "kind": "knn", "artifact": str(artifact), "backends": {"cheap": "a"}},
            ],
        },
    )
    with pytest.raises(ConfigError) as error:
        load_settings(path)
    assert error.value.problems == [
        f"routers.0 (r1): {empty}: not a predictor artifact (no manifest.json)",
        "routers.1 (r2): none of its artifact's models (cheap, dear) is a configured backend; name backends "
        "after them or map them with `backends: {model: backend}`",
    ]


def test_cascade_routers_are_checked_at_start(tmp_path, artifact):
    path = write(
        tmp_path,
        {
            "backends": [{"name": "a", "base_url": "http://127.0.0.1:1/v1"}],
            "routers": [
                {"name": "c1", "kind": "cascade", "artifact": str(artifact), "backends": {"cheap": "a"}},
                {
                    "name": "c2",
                    "kind": "cascade",
                    "artifact": str(artifact),
                    "backends": {"cheap": "a"},
                    "judge": {"kind": "learned", "artifact": str(tmp_path / "no-judge")},
                },
                {
                    "name": "c3",
                    "kind": "cascade",
                    "artifact": str(artifact),
                    "backends": {"cheap": "a"},
                    "judge": {"kind": "llm", "backend": "grader"},
                    "order": ["a", "ghost"],
                },
            ],
        },
    )
    with pytest.raises(ConfigError) as error:
        load_settings(path)
    assert error.value.problems == [
        "routers.0 (c1): a cascade needs a judge (kind agreement, heuristics, learned or llm)",
        f"routers.1 (c2): judge artifact {tmp_path / 'no-judge'} is not a directory",
        "routers.2 (c3): judge backend 'grader' is not a configured backend",
        "routers.2 (c3): order names unknown backends ['ghost']",
    ]


def test_commands_that_only_read_the_routing_need_no_secrets_set(tmp_path, monkeypatch):
    for variable in ("UNSET_CLIENT_KEYS", "UNSET_ADMIN_KEY"):
        monkeypatch.delenv(variable, raising=False)
    path = write(tmp_path, {"client_keys_env": "UNSET_CLIENT_KEYS", "admin_key_env": "UNSET_ADMIN_KEY"})
    with pytest.raises(ConfigError) as refused:  # serving it would be open: refused at start
        load_settings(path)
    assert "UNSET_CLIENT_KEYS is unset" in str(refused.value)
    assert load_settings(path, secrets=False).client_keys_env == "UNSET_CLIENT_KEYS"  # replay --config


def test_the_cache_default_reads_yaml_s_unquoted_off_and_on(tmp_path):
    (tmp_path / "off.yaml").write_text("cache_default: off\n")  # YAML 1.1: the boolean false
    (tmp_path / "on.yaml").write_text("cache_default: on\n")
    assert load_settings(tmp_path / "off.yaml").cache_default == "off"
    assert load_settings(tmp_path / "on.yaml").cache_default == "exact"
    (tmp_path / "bad.yaml").write_text("cache_default: sometimes\n")
    with pytest.raises(ConfigError, match="cache_default"):
        load_settings(tmp_path / "bad.yaml")
