"""The gateway fuzzer's generated probes (``benchmarks/fuzz_probe.py``), as Hypothesis strategies
(:func:`generated_probes`), in families:

===================  ===================================================================================
``chat-sdk``         a chat completion valid by ``ChatCompletionRequest``'s schema, naming a model the
                     gateway serves, sent by the official openai SDK: most reach the mock upstream and
                     get 200, those naming a failing backend one of the documented 502/503/504
``schema``           schemathesis's valid requests for every operation of the gateway's OpenAPI document
                     (``benchmarks/fuzz_schema.py``: ``/openapi.json`` plus the chat, feedback and admin
                     key bodies), any credentials
``schema-negative``  schemathesis's invalid ones for every operation with a body: wrong types, missing
                     fields, bytes that are not JSON
``elsewhere``        any method on an unknown path, or on a served one
``headers``          a valid chat completion with up to 12 headers of any name and value, odd
                     credentials and content types
``junk``             any bytes, declared JSON, to the chat, feedback and admin paths
===================  ===================================================================================

``chat-sdk``, ``schema`` and ``schema-negative`` are drawn by ``benchmarks/fuzz_schema.py`` (with
:func:`credentials`), the others here. The fixed malformed probes are ``benchmarks/fuzz_malformed_probes.py``.
"""

from __future__ import annotations

import base64
from urllib.parse import quote

from hypothesis import strategies as st

from benchmarks.fuzz_probe import CHAT_PATH, FEEDBACK_PATH, JSON, FuzzTarget, Probe, encoded, hello_chat

METHODS = ("GET", "POST", "PUT", "PATCH", "DELETE", "OPTIONS")


# ---- headers ------------------------------------------------------------------------------------

_PRINTABLE = st.characters(min_codepoint=0x20, max_codepoint=0x7E)
_TOKENS = st.from_regex(r"[A-Za-z0-9!#$%&'*+.^_`|~-]{1,24}", fullmatch=True)
_RESERVED = frozenset({"host", "content-length", "transfer-encoding", "connection", "upgrade", "expect"})
header_pairs = st.lists(
    st.tuples(
        _TOKENS.filter(lambda name: name.lower() not in _RESERVED),
        st.text(_PRINTABLE, max_size=120).map(str.strip),
    ),
    max_size=12,
)
"""Headers of any token name and printable value, none that changes how the message is framed."""
content_types: st.SearchStrategy[str] = st.sampled_from(
    [JSON] * 8
    + [
        "application/json; charset=utf-8",
        "APPLICATION/JSON",
        "application/json; charset=latin-1",
        "application/json;;;",
        "text/plain",
        "application/x-www-form-urlencoded",
        "multipart/form-data; boundary=x",
        "application/jsonx",
        "",
    ]
)


ADMIN_PATHS = ("/admin", "/v1/stats", "/dashboard", "/metrics")
"""Paths (prefixes) that take the admin key rather than a client key."""


def credentials(target: FuzzTarget, path: str = CHAT_PATH) -> st.SearchStrategy[tuple[tuple[str, str], ...]]:
    """Authorization headers for ``path``: about half the time the key it takes (the admin key on
    :data:`ADMIN_PATHS`, else the client key), else the other key, none, wrong ones, odd forms."""
    client = target.client_key or "sk-none"
    admin = target.admin_key or "sk-no-admin-key"
    key, other = (admin, client) if path.startswith(ADMIN_PATHS) else (client, admin)
    choices: list[list[tuple[str, str]]] = [[("authorization", f"Bearer {key}")]] * 7 + [
        [("authorization", f"Bearer {other}")],
        [("authorization", f"Basic {_basic(admin)}")],
        [],
        [("authorization", "Bearer sk-wrong-key")],
        [("authorization", "Bearer")],
        [("authorization", f"bearer  {key}")],
        [("authorization", f"Token {key}")],
        [("authorization", f"Bearer {key}"), ("authorization", "Bearer sk-wrong-key")],
    ]
    return st.sampled_from([tuple(choice) for choice in choices])


def _basic(password: str) -> str:
    return base64.b64encode(f"admin:{password}".encode()).decode()


# ---- generated probes ---------------------------------------------------------------------------


def generated_probes(
    target: FuzzTarget, sdk_chats: st.SearchStrategy[Probe], schema_requests: st.SearchStrategy[Probe]
) -> st.SearchStrategy[Probe]:
    """Every family of generated probe (see the module docstring): ``sdk_chats`` three times in ten,
    ``schema_requests`` (``benchmarks/fuzz_schema.py``) four, each other family one. (A family is
    drawn first: ``st.one_of`` would flatten the schema's many operations into as many branches.)"""
    families = [sdk_chats] * 3 + [schema_requests] * 4
    families += [elsewhere_probes(target), header_probes(target), junk_probes(target)]
    return st.sampled_from(families).flatmap(lambda family: family)


@st.composite
def elsewhere_probes(draw: st.DrawFn, target: FuzzTarget) -> Probe:
    """Any method on a path nothing serves, or on a served one."""
    segments = draw(st.lists(st.text(min_size=1, max_size=12), min_size=1, max_size=4))
    prefix = draw(st.sampled_from(["", "/v1", "/admin", "/v1/chat", "/admin/keys"]))
    path = prefix + "/" + "/".join(quote(segment, safe="") for segment in segments)
    path = draw(st.sampled_from([path, path, CHAT_PATH, FEEDBACK_PATH, "/v1/models", "/admin/keys"]))
    return Probe("elsewhere", draw(st.sampled_from(METHODS)), path, draw(credentials(target, path)))


@st.composite
def header_probes(draw: st.DrawFn, target: FuzzTarget) -> Probe:
    """A valid chat completion with up to 12 headers of any name and value besides its own, declared
    in any content type (JSON most often)."""
    headers = (*draw(credentials(target)), ("content-type", draw(content_types)), *draw(header_pairs))
    return Probe("headers", "POST", CHAT_PATH, headers, encoded(hello_chat(target)))


@st.composite
def junk_probes(draw: st.DrawFn, target: FuzzTarget) -> Probe:
    """Any bytes, declared JSON, to the chat, feedback or admin path."""
    path = draw(st.sampled_from([CHAT_PATH, FEEDBACK_PATH, "/admin/keys"]))
    headers = (*draw(credentials(target, path)), ("content-type", JSON))
    return Probe("junk", "POST", path, headers, draw(st.binary(max_size=300)))
