"""The embedded default gateway: its settings (``config.py``) and the bundled RouterBench sample."""
