"""Bad input at the gateway's door: every malformed request gets an OpenAI-shaped 4xx, never a 500,
and never reaches an upstream; well-formed OpenAI fields pass. Over real HTTP against a real mock
upstream."""

import json

import httpx
import openai
import pytest

HI = [{"role": "user", "content": "hi"}]


def nested(depth):
    """A JSON value of ``depth`` nested objects."""
    value: dict[str, object] = {}
    for _ in range(depth - 1):
        value = {"a": value}
    return value


def test_a_body_not_declared_json_is_refused_with_415(gateway):
    body = json.dumps({"model": "cheap", "messages": HI}).encode()
    for content_type in ("text/plain", "application/x-www-form-urlencoded", None):
        headers = {"content-type": content_type} if content_type else {}
        response = httpx.post(gateway.url + "/v1/chat/completions", content=body, headers=headers)
        assert response.status_code == 415
        assert response.json()["error"]["code"] == "unsupported_media_type"
    charset = {"content-type": "application/json; charset=utf-8"}
    assert httpx.post(gateway.url + "/v1/chat/completions", content=body, headers=charset).status_code == 200


def test_valid_openai_fields_and_a_moderately_nested_pass_through_field_are_forwarded(gateway):
    client = openai.OpenAI(base_url=gateway.url + "/v1", api_key="unused", max_retries=0)
    reply = client.chat.completions.create(
        model="cheap",
        messages=[{"role": "developer", "content": "be brief"}, {"role": "user", "content": "hi"}],
        max_tokens=5,
        n=1,
        metadata={"trace": nested(40)},
    )
    assert reply.choices[0].message.content == "echo: hi"


@pytest.mark.parametrize(
    ("body", "status", "param"),
    [
        (b"{not json", 400, None),
        (b"[1, 2]", 400, None),
        (json.dumps({"model": "cheap"}).encode(), 400, "messages"),
        (json.dumps({"model": "cheap", "messages": []}).encode(), 400, "messages"),
        (json.dumps({"model": "cheap", "messages": "hi"}).encode(), 400, "messages"),
        (json.dumps({"model": 7, "messages": [{"role": "user", "content": "x"}]}).encode(), 400, "model"),
        (
            json.dumps({"model": "nope", "messages": [{"role": "user", "content": "x"}]}).encode(),
            404,
            "model",
        ),
        (
            json.dumps({"model": "router-knn-abc", "messages": [{"role": "user", "content": "x"}]}).encode(),
            400,
            "model",
        ),
        (
            json.dumps(
                {
                    "model": "router-knn",
                    "messages": [{"role": "user", "content": "x"}],
                    "routing": {"willingness_to_pay": -1},
                }
            ).encode(),
            400,
            "routing.willingness_to_pay",
        ),
        (
            json.dumps({"model": "cheap", "messages": [{"role": "user", "content": "x" * 30_000}]}).encode(),
            413,
            None,
        ),
        # a lone surrogate escape is no text: refused at the door, not a 500 when it is encoded later
        (b'{"model": "cheap", "messages": [{"role": "user", "content": "\\ud800"}]}', 400, None),
        (b'{"model": "cheap", "messages": [{"role": "user", "content": "\xff"}]}', 400, None),  # not UTF-8
        (
            json.dumps({"model": "cheap", "messages": [{"role": "boss", "content": "x"}]}).encode(),
            400,
            "messages.0.role",
        ),
        (json.dumps({"model": "cheap", "messages": HI, "max_tokens": -1}).encode(), 400, "max_tokens"),
        (json.dumps({"model": "cheap", "messages": HI, "max_tokens": "5"}).encode(), 400, "max_tokens"),
        (
            json.dumps({"model": "cheap", "messages": HI, "max_completion_tokens": 0}).encode(),
            400,
            "max_completion_tokens",
        ),
        (json.dumps({"model": "cheap", "messages": HI, "n": 0}).encode(), 400, "n"),
        (json.dumps({"model": "cheap", "messages": HI, "n": 500}).encode(), 400, "n"),
        # a pass-through field nested past 64 levels: refused, not a 500 when it is forwarded
        (json.dumps({"model": "cheap", "messages": HI, "metadata": nested(500)}).encode(), 400, None),
    ],
)
def test_bad_requests_get_openai_shaped_errors(gateway, body, status, param):
    response = httpx.post(
        gateway.url + "/v1/chat/completions", content=body, headers={"content-type": "application/json"}
    )
    assert response.status_code == status
    error = response.json()["error"]
    assert set(error) == {"message", "type", "param", "code"} and error["message"]
    assert error["param"] == param
    assert httpx.get(gateway.url + "/healthz").status_code == 200  # still serving


def test_an_unknown_path_is_an_openai_shaped_404(gateway):
    response = httpx.get(gateway.url + "/v1/nothing-here")
    assert response.status_code == 404 and response.json()["error"]["type"] == "invalid_request_error"
