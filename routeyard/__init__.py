"""The `routeyard` command: argument parsing and wiring; the layers below do the work."""
