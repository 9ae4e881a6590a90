"""The `routeyard` command: one module per command (``<name>_command.py``), parsing and wiring only."""
