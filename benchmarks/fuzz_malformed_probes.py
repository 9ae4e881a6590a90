"""The gateway fuzzer's fixed set of malformed probes (``benchmarks/fuzz_probe.py``; the generated ones
are ``benchmarks/fuzz_generated_probes.py``).

Fixed (:func:`malformed_probes`), in five groups: :func:`bad_body_probes` (bad UTF-8, truncated JSON,
lone surrogates, ``NaN``, duplicate keys, 5 MB bodies declared and chunked, 10,000-deep nesting, to the
chat, feedback and admin paths; each chat field of each wrong JSON type), :func:`header_abuse_probes`
(a 1 MB header, 10,000 headers, odd credentials and content types), :func:`framing_probes` (on raw
sockets, what httpx refuses to send: duplicate ``content-length``, ``content-length`` with
``transfer-encoding``, header bytes that are not ASCII, bad request lines, other protocols) and
:func:`broken_body_probes` (bodies that break off: broken chunks, a client that leaves mid-body) and
:func:`oversized_header_probes` (a 16 MiB header, which must be refused).
"""

from __future__ import annotations

import copy
from collections.abc import Callable
from typing import Any

from benchmarks.fuzz_probe import CHAT_PATH, FEEDBACK_PATH, JSON, FuzzTarget, Probe, encoded, hello_chat

BIG_BODY_BYTES = 5_000_000
DEEP_NESTING = 10_000
OVERSIZED_HEADER_BYTES = 16 * 1024 * 1024


def malformed_probes(target: FuzzTarget) -> list[Probe]:
    """The whole fixed set (see the module docstring)."""
    return [
        *bad_body_probes(target),
        *header_abuse_probes(target),
        *framing_probes(target),
        *broken_body_probes(target),
        *oversized_header_probes(target),
    ]


def bad_body_probes(target: FuzzTarget) -> list[Probe]:
    """Bodies that are not JSON, not UTF-8, not small or not flat, to the chat, feedback and admin
    paths (family ``malformed``), and chat bodies with fields of wrong types (``wrong-type``), each
    with the right credentials so that it reaches the body's checks."""
    probes: list[Probe] = []
    for path, auth in _door_paths(target):
        probes += _bad_bodies(path, auth, _valid_body(target, path))
    probes += _wrong_types(target)
    return probes


def _door_paths(target: FuzzTarget) -> list[tuple[str, tuple[tuple[str, str], ...]]]:
    client = (("authorization", f"Bearer {target.client_key}"),) if target.client_key else ()
    admin = (("authorization", f"Bearer {target.admin_key}"),) if target.admin_key else ()
    return [(CHAT_PATH, client), (FEEDBACK_PATH, client), ("/admin/keys", admin)]


def _valid_body(target: FuzzTarget, path: str) -> bytes:
    if path == FEEDBACK_PATH:
        return encoded({"request_id": "req_" + "0" * 32, "quality": 0.5})
    if path == CHAT_PATH:
        return encoded(hello_chat(target))
    return encoded({"name": "fuzz"})


def _bad_bodies(path: str, auth: tuple[tuple[str, str], ...], valid: bytes) -> list[Probe]:
    """Bodies that are not JSON, not UTF-8, not small or not flat, to ``path``."""
    headers = (*auth, ("content-type", JSON))
    bodies = [valid[:cut] for cut in (1, len(valid) // 3, len(valid) // 2, len(valid) - 1)]  # truncated
    bodies += [valid.replace(b'"', b'\xff"', 1), valid + b"\xff", b"\xc0\xaf" + valid, valid[:-2] + b"\x80}"]
    bodies += [b'{"model": "\xed\xa0\x80"}', b'{"x": "\xe2\x82"}', b"\xef\xbb\xbf" + valid]  # CESU, cut, BOM
    bodies += [b'{"x": "\\ud800"}', b'{"x": "\\udc00\\ud800"}', b'{"x": "\\u0000"}', b'{"x": "\\u"}']
    bodies += [b"", b" ", b"null", b"[]", b'"text"', b"1", b"true", b"{}", b"{,}", b"{'a': 1}"]
    bodies += [
        b'{"x": NaN}',
        b'{"x": Infinity}',
        b'{"x": 1e999}',
        b'{"x": -0}',
        b'{"x": 1' + b"0" * 400 + b"}",
    ]
    bodies += [valid[:-1] + b', "model": 7}', valid[:-1] + b', "x": 1, "x": [1]}']  # duplicate keys
    bodies += [
        b"[" * DEEP_NESTING + b"]" * DEEP_NESTING,
        b'{"a":' * DEEP_NESTING + b"1" + b"}" * DEEP_NESTING,
    ]
    bodies += [valid[:-1] + b', "metadata": ' + b"[" * DEEP_NESTING + b"]" * DEEP_NESTING + b"}"]
    big = valid[:-1] + b', "padding": "' + b"x" * BIG_BODY_BYTES + b'"}'
    probes = [Probe("malformed", "POST", path, headers, body) for body in bodies]
    probes.append(Probe("malformed", "POST", path, headers, big, must_refuse=True))
    probes.append(Probe("malformed", "POST", path, headers, big, chunked=True, must_refuse=True))
    probes.append(Probe("malformed", "POST", path, (*headers, ("content-encoding", "gzip")), b"not gzip"))
    return probes


def _wrong_types(target: FuzzTarget) -> list[Probe]:
    """A valid chat body with each of its fields, and each message's, of each other JSON type."""
    headers = (*_door_paths(target)[0][1], ("content-type", JSON))
    wrong = [None, True, 0, -1, 2**64, 1.5, "", "x", [], [1], {}, {"a": 1}]
    body = {
        **hello_chat(target),
        "stream": False,
        "routing": {"willingness_to_pay": 1.0},
        "max_tokens": 5,
        "n": 1,
    }
    places: list[tuple[Any, ...]] = [(name,) for name in body]
    places += [
        ("messages", 0),
        ("messages", 0, "role"),
        ("messages", 0, "content"),
        ("routing", "willingness_to_pay"),
    ]
    places += [("routing", "exclude"), ("routing", "min_quality"), ("routing", "max_cost_usd")]
    return [
        Probe("wrong-type", "POST", CHAT_PATH, headers, encoded(_with_value(body, place, value)))
        for place in places
        for value in wrong
    ]


def _with_value(body: dict[str, Any], place: tuple[Any, ...], value: Any) -> dict[str, Any]:
    """A copy of ``body`` with ``value`` at ``place`` (a path of keys and indexes)."""
    copied = copy.deepcopy(body)
    parent: Any = copied
    for key in place[:-1]:
        parent = parent[key]
    parent[place[-1]] = value
    return copied


def header_abuse_probes(target: FuzzTarget) -> list[Probe]:
    """Valid chat completions with huge, many, repeated or odd headers, as httpx sends them (family
    ``header-abuse``)."""
    key = target.client_key or "sk-none"
    body = encoded(hello_chat(target))
    auth = ("authorization", f"Bearer {key}")
    cases: list[tuple[tuple[str, str | bytes], ...]] = [
        (auth, ("content-type", JSON), ("x-fuzz", "a" * 1_000_000)),
        (auth, ("content-type", JSON), *((f"x-fuzz-{i}", "v") for i in range(10_000))),
        (("authorization", "Bearer " + "k" * 65_536), ("content-type", JSON)),
        (("authorization", "Bearer " + " " * 10_000 + key), ("content-type", JSON)),
        (("authorization", f"Bearer\t{key}"), ("content-type", JSON)),
        (("authorization", ""), ("content-type", JSON)),
        (("authorization", f"Bearer {key}".encode() + b"\xe9"), ("content-type", JSON)),
        (auth, ("content-type", JSON), ("content-type", "text/plain")),
        (auth, ("content-type", JSON + "; charset=" + "x" * 10_000)),
        (auth, ("content-type", b"application/json\xff")),
        (auth, ("content-type", JSON), ("x-routeyard-request-id", "req_" + "0" * 32)),
        (auth, ("content-type", JSON), ("accept", "text/event-stream")),
        (auth, ("content-type", JSON), ("accept-encoding", "gzip, br, zstd, x" * 1000)),
    ]
    return [Probe("header-abuse", "POST", CHAT_PATH, headers, body) for headers in cases]


def framing_probes(target: FuzzTarget) -> list[Probe]:
    """What httpx refuses to send, as bytes on a socket (family ``raw``): framing conflicts, broken
    chunks, header bytes that are not ASCII, bad request lines, other protocols."""
    post = _raw_post(target)
    body = encoded(hello_chat(target))
    length = b"Content-Length: %d\r\n" % len(body)
    chunked = b"Transfer-Encoding: chunked\r\n"
    chunks = b"%x\r\n" % len(body) + body + b"\r\n0\r\n\r\n"
    requests = [
        post(length, body),  # well-formed: the baseline
        post(length + b"Content-Length: 5\r\n", body),
        post(length + length, body),
        post(b"Content-Length: 5\r\n" + chunked, chunks),
        post(chunked + chunked, chunks),
        post(b"Transfer-Encoding: gzip, chunked\r\n", chunks),
        post(b"Content-Length: -1\r\n", body),
        post(b"Content-Length: 1" + b"0" * 30 + b"\r\n", body),
        post(b"Content-Length: 0x10\r\n", body),
        post(b"X-Fuzz: \xff\xfe\x80 bytes\r\n" + length, body),
        post(b"X-Fuzz: a\x00b\r\n" + length, body),
        post(b"X-Fuzz : spaced\r\n" + length, body),
        post(b"X F\xffuzz: name\r\n" + length, body),
        post(b"NoColonHere\r\n" + length, body),
        post(b"X-Fuzz: a\r\n folded\r\n" + length, body),
        post(b"Authorization: Bearer \xc3\xa9\xff\r\n" + length, body),
        post(b"Content-Type: application/\xffjson\r\n" + length, body),
        post(b"Expect: 100-continue\r\n" + length, body),
        post(b"Connection: Upgrade\r\nUpgrade: websocket\r\nSec-WebSocket-Version: 13\r\n" + length, body),
        post(
            b"Connection: Upgrade, HTTP2-Settings\r\nUpgrade: h2c\r\nHTTP2-Settings: AAMAAABkAAQAAP__\r\n"
            + length,
            body,
        ),
        post(length, body, version=b"HTTP/1.0"),
        post(length, body, version=b"HTTP/2.0"),
        post(length, body, version=b"HTTP/9.9"),
        post(length, body, request_target=b"http://fuzz" + CHAT_PATH.encode()),
        post(length, body, request_target=CHAT_PATH.encode() + b"%00"),
        post(length, body, request_target=b"/v1/\xff\xfe/../chat/completions"),
        post(length, body, request_target=CHAT_PATH.encode() + b"?" + b"q=1&" * 20_000),
        post(length, body, method=b"P\xffST"),
        post(length, body) + post(length, body),  # two pipelined: the first answer is read
        b"GET /" + b"a" * 100_000 + b" HTTP/1.1\r\nHost: fuzz\r\nConnection: close\r\n\r\n",
        b"GET /healthz\r\n\r\n",  # HTTP/0.9
        b"\r\n\r\nGET /healthz HTTP/1.1\r\nHost: fuzz\r\nConnection: close\r\n\r\n",  # blank lines first
        b"\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03" + bytes(range(32)) + b"\r\n\r\n",  # a TLS hello
        b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n",  # the HTTP/2 preface
    ]
    return [Probe("raw", raw=request) for request in requests]


def broken_body_probes(target: FuzzTarget) -> list[Probe]:
    """Chat requests whose body breaks off (family ``raw-broken``): chunks the HTTP parser refuses
    after the app has started reading, and clients that declare more than they send and then leave
    (nobody to answer those)."""
    post = _raw_post(target)
    body = encoded(hello_chat(target))
    chunked = b"Transfer-Encoding: chunked\r\n"
    return [
        Probe("raw-broken", raw=post(chunked, b"zz\r\n" + body + b"\r\n0\r\n\r\n")),
        Probe("raw-broken", raw=post(chunked, b"5\r\n" + body + b"\r\n0\r\n\r\n")),
        Probe("raw-broken", raw=post(b"Content-Length: 1000\r\n", body), answer_expected=False),
        Probe("raw-broken", raw=post(chunked, b"100\r\n" + body), answer_expected=False),
    ]


def oversized_header_probes(target: FuzzTarget) -> list[Probe]:
    """A chat request with a header of :data:`OVERSIZED_HEADER_BYTES` (family ``raw-oversized``): past
    any sane limit (h11's default is 16 KiB, nginx's 32 KiB), it must be refused, not parsed."""
    body = encoded(hello_chat(target))
    headers = b"X-Fuzz: " + b"a" * OVERSIZED_HEADER_BYTES + b"\r\nContent-Length: %d\r\n" % len(body)
    return [Probe("raw-oversized", raw=_raw_post(target)(headers, body), must_refuse=True)]


def _raw_post(target: FuzzTarget) -> Callable[..., bytes]:
    """``post(headers, body, *, method, request_target, version)``: the bytes of a chat request with
    the client key, JSON declared, ``Connection: close``, ``headers`` (CRLF-ended lines) and ``body``."""
    key = (target.client_key or "sk-none").encode()

    def post(
        headers: bytes,
        body: bytes,
        *,
        method: bytes = b"POST",
        request_target: bytes = CHAT_PATH.encode(),
        version: bytes = b"HTTP/1.1",
    ) -> bytes:
        head = b"Host: fuzz\r\nConnection: close\r\n"
        if not headers.startswith(b"Authorization"):
            head += b"Authorization: Bearer " + key + b"\r\n"
        if not headers.startswith(b"Content-Type"):
            head += b"Content-Type: application/json\r\n"
        return method + b" " + request_target + b" " + version + b"\r\n" + head + headers + b"\r\n" + body

    return post
