"""Routing decisions as pure functions over numpy arrays, shared by the gateway and the replay harness."""
