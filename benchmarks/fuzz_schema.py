"""The gateway fuzzer's schema side: the OpenAPI document it works from, and schemathesis's requests
from it as probes (``benchmarks/fuzz_probe.py``).

FastAPI's ``/openapi.json`` lists the gateway's endpoints but not the chat route (a plain Starlette
route) nor any body read from the raw request. :func:`completed_openapi` adds them from the pydantic
models that parse them: ``POST /v1/chat/completions`` (``ChatCompletionRequest``), ``POST /v1/feedback``
(``Feedback``) and ``POST /admin/keys`` (``KeyLimits``). Every other operation the document lists
(the admin keys, ``/v1/models``, ``/v1/stats``, …) is fuzzed as it is described.

:func:`schema_probes` draws, for every operation, schemathesis's positive cases (valid by the schema)
and, where the operation has a body, its negative ones (wrong types, missing fields, not JSON at all),
each with credentials of :func:`~benchmarks.fuzz_generated_probes.credentials`. Valid chat completions, with
``model`` set to one the gateway serves, go through the openai SDK: :func:`sdk_chat_probes`.
"""

from __future__ import annotations

import copy
import json
from collections.abc import Mapping
from typing import Any
from urllib.parse import urlencode

import schemathesis
from hypothesis import strategies as st
from pydantic import BaseModel
from schemathesis import GenerationMode
from schemathesis.core import NotSet
from schemathesis.core.result import Err

from benchmarks.fuzz_generated_probes import credentials
from benchmarks.fuzz_probe import CHAT_PATH, FEEDBACK_PATH, JSON, FuzzTarget, Probe, sdk_arguments
from routeyard.gateway.keys.virtual_key import KeyLimits
from routeyard.gateway.operations import Feedback
from routeyard.gateway.wire import ChatCompletionRequest

BODY_MODELS: dict[tuple[str, str], type[BaseModel]] = {
    ("post", CHAT_PATH): ChatCompletionRequest,
    ("post", FEEDBACK_PATH): Feedback,
    ("post", "/admin/keys"): KeyLimits,
}
"""The bodies ``/openapi.json`` does not describe, by the pydantic model that parses them."""
_ANSWER = {"200": {"description": "an answer"}}


def completed_openapi(openapi: Mapping[str, Any]) -> dict[str, Any]:
    """A copy of the gateway's ``openapi`` with the operations and bodies of :data:`BODY_MODELS`."""
    document = copy.deepcopy(dict(openapi))
    paths = document.setdefault("paths", {})
    schemas = document.setdefault("components", {}).setdefault("schemas", {})
    for (method, path), model in BODY_MODELS.items():
        schema = model.model_json_schema(ref_template="#/components/schemas/{model}")
        schemas.update(schema.pop("$defs", {}))
        schemas[model.__name__] = schema
        operation = paths.setdefault(path, {}).setdefault(method, {"responses": _ANSWER})
        reference = {"$ref": f"#/components/schemas/{model.__name__}"}
        operation["requestBody"] = {"required": True, "content": {JSON: {"schema": reference}}}
    return document


def operations_of(document: Mapping[str, Any]) -> list[str]:
    """``METHOD /path`` of every operation of an OpenAPI ``document``."""
    return [f"{method.upper()} {path}" for path, methods in document["paths"].items() for method in methods]


def schema_probes(target: FuzzTarget, document: Mapping[str, Any]) -> st.SearchStrategy[Probe]:
    """Schemathesis's positive cases of every operation of ``document`` and the negative ones of those
    with a body, as probes of family ``schema`` and ``schema-negative``, any credentials."""
    schema = schemathesis.openapi.from_dict(dict(document))
    strategies = []
    for result in schema.get_all_operations():
        if isinstance(result, Err):
            raise result.err()  # an operation schemathesis cannot read: the document is wrong
        operation = result.ok()
        strategies.append(
            _probes(operation.as_strategy(generation_mode=GenerationMode.POSITIVE), target, "schema")
        )
        if operation.body:
            negative = operation.as_strategy(generation_mode=GenerationMode.NEGATIVE)
            strategies.append(_probes(negative, target, "schema-negative"))
    return st.one_of(strategies)


def sdk_chat_probes(target: FuzzTarget, document: Mapping[str, Any]) -> st.SearchStrategy[Probe]:
    """Chat completions valid by the schema, ``model`` replaced by one the gateway serves (an answering
    one six times in seven), as openai SDK calls (family ``chat-sdk``)."""
    schema = schemathesis.openapi.from_dict(dict(document))
    chat = schema[CHAT_PATH]["POST"]
    models = st.sampled_from(target.answering_models)
    if target.failing_models:
        models = st.one_of(*[models] * 6, st.sampled_from(target.failing_models))
    bodies = st.tuples(chat.as_strategy(generation_mode=GenerationMode.POSITIVE), models)
    return bodies.map(
        lambda pair: Probe("chat-sdk", sdk_request=sdk_arguments({**pair[0].body, "model": pair[1]}))
    )


@st.composite
def _probes(draw: st.DrawFn, cases: st.SearchStrategy[Any], target: FuzzTarget, family: str) -> Probe:
    case = draw(cases)
    path = case.formatted_path + (f"?{urlencode(case.query, doseq=True)}" if case.query else "")
    auth = draw(credentials(target, case.path))
    headers: list[tuple[str, str | bytes]] = [*auth, *(case.headers or {}).items()]
    body = _encoded(case.body, draw(st.booleans()))
    if body is not None:
        headers.append(("content-type", case.media_type or JSON))
    return Probe(family, case.method.upper(), path, tuple(headers), body or b"")


def _encoded(body: Any, ascii_only: bool) -> bytes | None:
    """A case's body as bytes: a value as JSON (a lone surrogate kept, as bytes that are not UTF-8),
    bytes as they are (negative cases: not JSON at all); None for no body."""
    if isinstance(body, bytes):
        return body
    if isinstance(body, NotSet):
        return None
    return json.dumps(body, ensure_ascii=ascii_only, default=str).encode("utf-8", "surrogatepass")
