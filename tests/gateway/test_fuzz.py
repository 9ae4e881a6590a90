"""The gateway under the schema-driven fuzzer (issue 15), at a bounded count: schemathesis's requests from
the gateway's OpenAPI document (``/openapi.json`` completed with the chat, feedback and admin key
bodies), valid chat completions through the openai SDK, and the fixed malformed set (bad UTF-8,
truncated JSON, 5 MB and 10,000-deep bodies, header abuse, raw-socket framing attacks). The gateway takes
client, admin and virtual keys, over the real mock upstream, with backends that fail as documented.

Expected of every answer: a status under 500 or a documented upstream one (502, 503, 504, OpenAI-shaped),
every error OpenAI-shaped, no secret in an answer or in the log, no internal error logged, and
``/healthz`` still answering.
``benchmarks/fuzz_gateway.py`` runs the same at full count. The probes and checks are in
``benchmarks/fuzz_probe.py``, ``fuzz_generated_probes.py``, ``fuzz_malformed_probes.py``, ``fuzz_schema.py``,
``fuzz_sender.py`` and ``fuzz_checks.py``.
"""

import contextlib
import json
import logging
import threading
import time

import httpx
import pytest
import uvicorn
import yaml

from benchmarks.fuzz_checks import Tally, log_problems
from benchmarks.fuzz_gateway import is_alive, openapi_document, send_generated
from benchmarks.fuzz_generated_probes import generated_probes
from benchmarks.fuzz_malformed_probes import (
    bad_body_probes,
    broken_body_probes,
    framing_probes,
    header_abuse_probes,
    oversized_header_probes,
)
from benchmarks.fuzz_probe import FuzzTarget, Probe
from benchmarks.fuzz_schema import schema_probes, sdk_chat_probes
from benchmarks.fuzz_sender import Sender
from routeyard.cli.serve_worker import uvicorn_options
from routeyard.gateway.app import create_app
from routeyard.gateway.settings import load_settings
from routeyard.predictor.hashing_embedder import HashingEmbedder
from routeyard.testing.server_thread import free_port
from tests.gateway.conftest import UPSTREAM_KEY, gateway_settings

CLIENT_KEY = "sk-fuzz-client-5151"
ADMIN_KEY = "sk-fuzz-admin-6161"
GENERATED = 300  # ≈ 10 s here; the benchmark sends 2,000
SEED = 15  # a fixed seed: the same requests on every run (the benchmark draws a new one each time)
NO_LOG_PROBLEMS = {"internal errors logged": 0, "secrets in the log": 0}


@pytest.fixture(scope="module")
def target(upstream, artifact, tmp_path_factory):
    """A gateway with client, admin and virtual keys, served under uvicorn as ``routeyard serve`` serves
    it (its hardened HTTP protocol), and what the fuzzer may know about it."""
    monkeypatch = pytest.MonkeyPatch()
    for variable, value in (
        ("UPSTREAM_KEY", UPSTREAM_KEY),
        ("FUZZ_CLIENT_KEYS", CLIENT_KEY),
        ("FUZZ_ADMIN_KEY", ADMIN_KEY),
    ):
        monkeypatch.setenv(variable, value)
    directory = tmp_path_factory.mktemp("fuzz")
    config = directory / "routeyard.yaml"
    overrides = {
        "client_keys_env": "FUZZ_CLIENT_KEYS",
        "admin_key_env": "FUZZ_ADMIN_KEY",
        "virtual_keys": True,
    }
    config.write_text(
        yaml.safe_dump(
            gateway_settings(upstream.url, artifact, keys_db=str(directory / "keys.sqlite"), **overrides)
        )
    )
    settings = load_settings(config)
    with served_as_serve_does(create_app(settings, embedder=HashingEmbedder()), settings) as url:
        yield FuzzTarget(
            url=url,
            client_key=CLIENT_KEY,
            admin_key=ADMIN_KEY,
            answering_models=("cheap", "dear", "quiet", "router-knn", "router-fixed", "auto"),
            failing_models=(
                "broken",
                "down",
                "hanging",
                "garbage",
                "cutter",  # not "flaky": it fails only its first call, which test_gateway's retry test needs
                "picky",
                "router-fallback",
            ),
            secrets=(UPSTREAM_KEY, CLIENT_KEY, ADMIN_KEY),
        )
    monkeypatch.undo()


@contextlib.contextmanager
def served_as_serve_does(app, settings):
    """``app`` under uvicorn on a free loopback port with ``serve``'s options, in a thread, once its
    routers are loaded; its URL."""
    port = free_port()
    config = uvicorn.Config(app, host="127.0.0.1", port=port, lifespan="on", **uvicorn_options(settings))
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 60
    while not (server.started and httpx.get(url + "/readyz").status_code == 200):
        assert time.monotonic() < deadline and thread.is_alive(), "the gateway did not get ready"
        time.sleep(0.05)
    try:
        yield url
    finally:
        server.should_exit = True
        thread.join(timeout=10)


class _Collected(logging.Handler):
    """Keeps every record's message and traceback as text."""

    def __init__(self) -> None:
        super().__init__(logging.WARNING)
        self.lines: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.lines.append(self.format(record))

    @property
    def text(self) -> str:
        return "\n".join(self.lines)


@pytest.fixture
def gateway_log():
    """What the gateway (its ``routeyard`` loggers) logs at WARNING and up while the test runs."""
    handler = _Collected()
    logger = logging.getLogger("routeyard")
    logger.addHandler(handler)
    yield handler
    logger.removeHandler(handler)


def tally_of(target: FuzzTarget, probes: list[Probe]) -> Tally:
    tally = Tally(target.placeholders())
    with Sender(target) as sender:
        for probe in probes:
            tally.record(probe, sender.send(probe))
    return tally


def found(tally: Tally) -> str:
    return "\n\n".join(f"{problem}:\n" + "\n".join(examples) for problem, examples in tally.examples.items())


def test_generated_requests_get_documented_statuses_and_openai_shaped_errors(target, gateway_log):
    document = openapi_document(target.url)
    probes = generated_probes(target, sdk_chat_probes(target, document), schema_probes(target, document))
    tally = Tally(target.placeholders())
    with Sender(target) as sender:
        send_generated(sender, probes, GENERATED, SEED, tally)

    assert not tally.problems, found(tally)
    assert tally.sent == GENERATED
    # the fuzzer reached every side: answered completions, refusals at the door, every family
    assert tally.statuses["200"] >= 20 and tally.statuses["400"] >= 20 and tally.statuses["401"] >= 5
    assert set(tally.families) == {"chat-sdk", "schema", "schema-negative", "elsewhere", "headers", "junk"}
    assert {"/admin/keys", "/v1/feedback", "/v1/chat/completions"} <= set(document["paths"])
    assert log_problems(gateway_log.text, target.secrets) == NO_LOG_PROBLEMS
    assert is_alive(target.url)


def test_bad_bodies_and_header_abuse_get_openai_shaped_errors(target, gateway_log):
    tally = tally_of(target, bad_body_probes(target) + header_abuse_probes(target))

    assert not tally.problems, found(tally)
    # 5 MB bodies are refused by size, 10,000-deep ones as not JSON or too deep, bad types by field
    assert tally.statuses["413"] >= 6 and tally.statuses["400"] >= 200 and tally.statuses["200"] >= 5
    assert log_problems(gateway_log.text, target.secrets) == NO_LOG_PROBLEMS
    assert is_alive(target.url)


def test_raw_framing_attacks_get_openai_shaped_errors_and_leave_the_gateway_serving(target, gateway_log):
    """What uvicorn's HTTP parser refuses (duplicate ``content-length``, ``content-length`` with
    ``transfer-encoding``, a bad header or request line, TLS and HTTP/2 bytes) is answered as an OpenAI
    error too, not with uvicorn's plain-text 400."""
    tally = tally_of(target, framing_probes(target))

    assert not tally.problems, found(tally)
    assert tally.statuses["400"] >= 15  # refused by the parser
    assert tally.statuses["200"] >= 5  # the baseline, HTTP/1.0 and 0.9, 100-continue, blank lines first
    assert log_problems(gateway_log.text, target.secrets) == NO_LOG_PROBLEMS
    assert is_alive(target.url)


def test_a_body_that_breaks_off_is_no_internal_error(target, gateway_log):
    """A client that leaves mid-body, or whose chunks the parser refuses once the body is being read,
    gets an OpenAI-shaped 400 if it is still there, and is logged as no internal error."""
    tally = tally_of(target, broken_body_probes(target))

    assert not tally.problems, found(tally)
    assert log_problems(gateway_log.text, target.secrets) == NO_LOG_PROBLEMS
    assert is_alive(target.url)


def test_a_16_mib_header_is_refused(target):
    tally = tally_of(target, oversized_header_probes(target))

    assert not tally.problems, found(tally)
    assert is_alive(target.url)


def test_the_checks_flag_a_server_that_breaks_the_rules(upstream):
    """Pointed at the bare mock upstream, whose errors are not OpenAI-shaped and which echoes prompts,
    the fuzzer's checks flag a 500, bare error bodies (also as a stream's event) and an echoed key."""
    bare = FuzzTarget(upstream.url, CLIENT_KEY, None, ("echo",), secrets=(CLIENT_KEY,))

    def chat(model: str, content: str = "hi", stream: bool = False) -> Probe:
        body = {"model": model, "messages": [{"role": "user", "content": content}], "stream": stream}
        return Probe("check", headers=(("content-type", "application/json"),), body=json.dumps(body).encode())

    bare_error_event = 'chunk:{"error": {"message": "bare"}}'
    probes = [
        chat("fail-500"),
        chat("bad-request"),
        chat("echo", CLIENT_KEY),
        chat(bare_error_event, stream=True),
    ]
    tally = tally_of(bare, probes)

    assert dict(tally.problems) == {"server error": 1, "not OpenAI-shaped": 3, "echoes a secret": 1}
    assert "<client key>" in found(tally) and CLIENT_KEY not in found(tally)
