"""routeyard: an OpenAI-compatible LLM routing gateway and the offline harness that scores its routing.

The one import namespace. ``routeyard.gateway``, ``routeyard.predictor`` and ``routeyard.judges`` are the
repository's top-level folders of those names, linked in; the layers and the packaging are described in
docs/architecture.md. The ``routeyard`` command is ``routeyard.cli``.
"""
