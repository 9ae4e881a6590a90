"""Virtual keys (issue 15): the key model and the :class:`~routeyard.gateway.keys.virtual_key.KeyStore`
seam (``virtual_key``), what its stores compute alike (``key_windows``), the Redis store for replicas
(``redis_key_store``), the SQLite store for one host (``sqlite_key_store``), and the choice between them
(``key_store_choice``)."""
