"""The offline harness (replay, metrics, reports), synthetic data and benchmark scripts."""
