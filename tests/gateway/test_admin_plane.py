"""The admin plane: /admin/keys, /v1/stats, /dashboard and /metrics need the admin key (a browser gives
it as an HTTP Basic password); without one configured they are open only while the API is."""

import base64

import httpx

from tests.gateway.conftest import gateway_settings, start_gateway

ADMIN = "sk-admin-plane-7"
CLIENT = "sk-client-plane-7"
ADMIN_PATHS = ("/v1/stats", "/dashboard", "/metrics", "/admin/keys")


def started(upstream, artifact, tmp_path, monkeypatch, **overrides):
    monkeypatch.setenv("ROUTEYARD_TEST_ADMIN", ADMIN)
    monkeypatch.setenv("ROUTEYARD_TEST_CLIENTS", CLIENT)
    return start_gateway(gateway_settings(upstream.url, artifact, **overrides), tmp_path, monkeypatch)


def get_all(url, headers=None):
    return {path: httpx.get(url + path, headers=headers or {}) for path in ADMIN_PATHS}


def test_admin_endpoints_need_the_admin_key(upstream, artifact, tmp_path, monkeypatch):
    _, server = started(
        upstream,
        artifact,
        tmp_path,
        monkeypatch,
        client_keys_env="ROUTEYARD_TEST_CLIENTS",
        admin_key_env="ROUTEYARD_TEST_ADMIN",
        virtual_keys=True,
        keys_db=str(tmp_path / "keys.db"),
    )
    basic = "Basic " + base64.b64encode(f"anyone:{ADMIN}".encode()).decode()
    try:
        anonymous = get_all(server.url)
        as_client = get_all(server.url, {"authorization": f"Bearer {CLIENT}"})
        as_admin = get_all(server.url, {"authorization": f"Bearer {ADMIN}"})
        in_a_browser = httpx.get(server.url + "/dashboard", headers={"authorization": basic})
        created = httpx.post(
            server.url + "/admin/keys",
            json={"name": "team-a", "rpm": 5},
            headers={"authorization": f"Bearer {CLIENT}"},
        )
    finally:
        server.__exit__(None, None, None)
    for refused in (*anonymous.values(), *as_client.values(), created):
        assert refused.status_code == 401
        assert refused.json()["error"]["code"] == "admin_key_required"
    assert anonymous["/dashboard"].headers["www-authenticate"].startswith("Basic")
    assert all(response.status_code == 200 for response in as_admin.values())
    assert "routeyard_requests_total" in as_admin["/metrics"].text
    assert in_a_browser.status_code == 200 and "<html" in in_a_browser.text.lower()


def test_without_an_admin_key_admin_endpoints_close_once_clients_need_keys(
    upstream, artifact, tmp_path, monkeypatch
):
    _, server = started(upstream, artifact, tmp_path, monkeypatch, client_keys_env="ROUTEYARD_TEST_CLIENTS")
    try:
        responses = get_all(server.url, {"authorization": f"Bearer {CLIENT}"})
    finally:
        server.__exit__(None, None, None)
    for response in responses.values():
        assert response.status_code == 403
        assert response.json()["error"]["code"] == "admin_key_not_configured"


def test_the_local_demo_without_any_key_keeps_its_operators_pages_open(gateway):
    responses = get_all(gateway.url)
    assert responses["/v1/stats"].status_code == responses["/dashboard"].status_code == 200
    assert responses["/metrics"].status_code == 200
    assert responses["/admin/keys"].status_code == 404  # virtual keys are off
    assert responses["/admin/keys"].json()["error"]["code"] == "virtual_keys_off"


def test_keys_are_managed_over_the_admin_api(upstream, artifact, tmp_path, monkeypatch):
    _, server = started(
        upstream,
        artifact,
        tmp_path,
        monkeypatch,
        admin_key_env="ROUTEYARD_TEST_ADMIN",
        virtual_keys=True,
        keys_db=str(tmp_path / "keys.db"),
    )
    admin = {"authorization": f"Bearer {ADMIN}"}
    try:
        created = httpx.post(
            server.url + "/admin/keys", json={"name": "team-b", "budget_day_usd": 2.5}, headers=admin
        )
        key_id = created.json()["id"]
        listed = httpx.get(server.url + "/admin/keys", headers=admin).json()["data"]
        shown = httpx.get(server.url + f"/admin/keys/{key_id}", headers=admin).json()
        bad = httpx.post(server.url + "/admin/keys", json={"name": "x", "rpm": -1}, headers=admin)
        revoked = httpx.delete(server.url + f"/admin/keys/{key_id}", headers=admin)
        unknown = httpx.delete(server.url + "/admin/keys/000000000000", headers=admin)
        after = httpx.get(server.url + f"/admin/keys/{key_id}", headers=admin).json()
    finally:
        server.__exit__(None, None, None)
    assert created.status_code == 201 and created.json()["key"].startswith(f"ry-{key_id}-")
    assert (
        [k["name"] for k in listed] == ["team-b"]
        and "secret_sha256" not in listed[0]
        and "key" not in listed[0]
    )
    assert shown["budget_day_usd"] == 2.5 and shown["usage"]["spent_day_usd"] == 0
    assert bad.status_code == 400 and bad.json()["error"]["param"] == "rpm"
    assert revoked.status_code == 200 and unknown.status_code == 404
    assert after["revoked_at"] is not None
