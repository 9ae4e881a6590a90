"""Test support shipped with the package: a controllable OpenAI-compatible upstream, a redis-server."""
