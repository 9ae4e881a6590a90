"""``routeyard keys`` on a real key store: create → list → show → revoke as an operator runs them (the
installed console script, a temporary SQLite keys_db, Redis from a config file), and the errors."""

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from routeyard.cli.keys_command import expiry
from routeyard.cli.main import main
from routeyard.gateway.keys.virtual_key import parse_plain_key
from routeyard.testing.redis_server import RedisServer

ROUTEYARD = Path(sys.executable).parent / "routeyard"
PASSWORD = "k3ys-Pa55word"


def keys(env, *args):
    """``routeyard keys ARGS`` as a subprocess: (exit code, stdout, stderr)."""
    done = subprocess.run(
        [str(ROUTEYARD), "keys", *args], env=env, capture_output=True, text=True, timeout=300, check=False
    )
    return done.returncode, done.stdout, done.stderr


def split(plain):
    """(id, secret) of a plain key that must be well formed."""
    parts = parse_plain_key(plain)
    assert parts is not None
    return parts


@pytest.fixture
def env(tmp_path, monkeypatch):
    """The environment without ROUTEYARD_* settings but a temporary keys_db (for subprocesses, and set
    in this process too)."""
    for name in [name for name in os.environ if name.startswith("ROUTEYARD_")]:
        monkeypatch.delenv(name)
    monkeypatch.setenv("ROUTEYARD_KEYS_DB", str(tmp_path / "db" / "keys.sqlite"))
    return dict(os.environ)


def test_create_list_show_revoke_on_the_default_sqlite_store(env, capsys):
    code, out, _ = keys(env, "create", "--name", "alice", "--budget-day", "5", "--rpm", "60")
    assert code == 0
    # in this process (each subprocess pays the CLI's imports), on the same store
    assert (
        main(
            ["keys", "create", "--name", "bob", "--routers", "auto,cheap", "--metadata", "team=ml", "--json"]
        )
        == 0
    )
    out_more = capsys.readouterr().out
    plain = out.splitlines()[0].removeprefix("key: ")
    alice_id, _ = split(plain)
    assert "will not be shown again" in out and "budget_day_usd: 5.0" in out and "rpm: 60" in out
    created = json.loads(out_more)
    assert split(created["key"])[0] == created["record"]["id"]
    assert created["record"]["routers"] == ["auto", "cheap"] and created["record"]["metadata"] == {
        "team": "ml"
    }
    for text in (out, out_more):
        assert "salt" not in text and "sha256" not in text

    code, listed, _ = keys(env, "list")
    assert code == 0
    rows = [line.split() for line in listed.splitlines()]
    assert rows[0][:4] == ["ID", "NAME", "CREATED", "STATE"]
    assert [(r[0], r[1], r[3], r[4]) for r in rows[1:]] == [
        (alice_id, "alice", "live", "$5"),
        (created["record"]["id"], "bob", "live", "-"),
    ]

    code, shown, _ = keys(env, "show", alice_id, "--json")
    assert code == 0
    shown = json.loads(shown)
    assert shown["record"]["name"] == "alice" and shown["record"]["state"] == "live"
    assert shown["usage"] == {
        "spent_day_usd": 0.0,
        "spent_month_usd": 0.0,
        "requests_this_minute": 0,
        "tokens_this_minute": 0,
    }
    assert plain not in json.dumps(shown)

    assert keys(env, "revoke", alice_id)[0] == 0
    code, listed, _ = keys(env, "list", "--json")
    assert [(r["name"], r["state"]) for r in json.loads(listed)] == [("alice", "revoked"), ("bob", "live")]
    assert main(["keys", "revoke", "0123456789ab"]) == 2  # the exit code
    assert "no key with id '0123456789ab'" in capsys.readouterr().err


def test_the_keys_db_and_its_directory_are_private(env):
    assert main(["keys", "create", "--name", "k"]) == 0
    path = Path(env["ROUTEYARD_KEYS_DB"])
    assert path.stat().st_mode & 0o777 == 0o600 and path.parent.stat().st_mode & 0o777 == 0o700


def test_a_config_with_redis_url_uses_redis_and_never_prints_its_password(env, tmp_path, monkeypatch, capsys):
    monkeypatch.delenv("ROUTEYARD_KEYS_DB")
    server = RedisServer(tmp_path / "redis", password=PASSWORD).start()
    config = tmp_path / "routeyard.yaml"
    config.write_text(yaml.safe_dump({"redis_url": server.url, "keys_db": str(tmp_path / "unused.sqlite")}))
    try:
        assert main(["keys", "create", "--name", "shared", "--config", str(config), "--json"]) == 0
        key_id = json.loads(capsys.readouterr().out)["record"]["id"]
        assert server.client().exists(f"routeyard:key:{key_id}") and not (tmp_path / "unused.sqlite").exists()
        assert main(["keys", "show", key_id, "--config", str(config)]) == 0
        assert "name: shared" in capsys.readouterr().out
    finally:
        server.stop()
    assert main(["keys", "list", "--config", str(config)]) == 2  # the server is gone
    err = capsys.readouterr().err
    assert "cannot use the key store at redis://***@127.0.0.1" in err and PASSWORD not in err
    assert "Traceback" not in err


def test_bad_options_are_one_line_errors(env, capsys):
    for args, message in (
        (["--rpm", "0"], "invalid key limits: rpm: Input should be greater than or equal to 1"),
        (["--downgrade-at", "1.5"], "invalid key limits: downgrade_at:"),
        (["--metadata", "team"], "--metadata 'team': give name=value"),
        (["--expires", "2020-01-01"], "--expires is in the past"),
    ):
        assert main(["keys", "create", "--name", "k", *args]) == 2
        assert message in capsys.readouterr().err
    assert main(["keys", "show", "0123456789ab"]) == 2
    assert "no key with id" in capsys.readouterr().err
    assert main(["keys", "list", "--json"]) == 0 and json.loads(capsys.readouterr().out) == []


def test_expiry_takes_durations_dates_and_times():
    assert expiry("30d", now=1000.0) == 1000.0 + 30 * 86_400
    assert expiry("12h", now=1000.0) == 1000.0 + 12 * 3600
    assert expiry("90m", now=1000.0) == 1000.0 + 90 * 60
    assert expiry("2027-01-01") == 1798761600.0  # midnight UTC
    assert expiry("2027-01-01T02:00:00+02:00") == 1798761600.0
    with pytest.raises(ValueError, match="give a date"):
        expiry("soon")
