"""The response cache: an answer bought once is served again, for $0, to the same deterministic request.

A request opts in with ``routing.cache`` (``true`` or ``"exact"``, ``"semantic"``, ``false``), else the
gateway's ``cache_default`` applies (``off`` unless the operator says otherwise). Only a deterministic
request is cached (:func:`uncacheable`): ``temperature`` 0 or a ``seed``, no tools or functions, one
choice.

- **Exact** (the default match): the key is a SHA-256 over the normalised request — its messages (text
  parts joined, roles and other message fields kept), every parameter that shapes the answer (sorted,
  without ``stream``, ``stream_options``, ``user`` and ``routing``), the ``model`` it asked for, the
  routing wishes that pick the backend (w, caps, floor, excluded backends) and the client's key: a
  tenant never sees another's answers, and a router's cache is its own.
- **Semantic** (opt-in): also a cached answer of the same *group* — the same key without the messages —
  whose prompt's routing embedding (the router's, from the embedding batcher's memory, so it is not
  computed twice) has a cosine similarity ≥ ``cache_semantic_threshold`` to this prompt's. Measured on
  the bundled sample (``benchmarks/bench_semantic_cache.py``, ``benchmarks/RESULTS.md``), no threshold
  below 1 kept a cached answer within 1 point of quality — its near neighbours are different questions
  (few-shot templates, one-word twins) — so the default is 1.0: a semantic match is then a prompt the
  embedder cannot tell apart (``minilm-static`` averages token vectors: it ignores word order). Lower it
  only for traffic with true paraphrases, measured on your own table.

Answers are kept by a store (``memory_store``, or ``redis_store`` with ``redis_url``: TTL, entry and
size bounds). Only successful answers are kept, off the request's path. A hit costs $0, and says so in
the ``routing`` object (``cache``), the ``x-routeyard-cache`` header, the
``routeyard_cache_requests_total`` counter and the usage log (``RouteRecord.cache``).

The modules, each importing only those listed after it: ``policy`` (which requests, their keys, a hit,
and the :class:`~routeyard.gateway.response_cache.policy.ResponseCache` the gateway calls),
``store_choice`` (the store the settings name), ``memory_store`` (one process) and ``redis_store`` (the
fleet), ``vector_index`` (the semantic index both stores keep), and ``store`` (the cached answer, the
:class:`~routeyard.gateway.response_cache.store.ResponseCacheStore` seam, an entry's bytes).
"""
