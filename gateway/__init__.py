"""The routing proxy: HTTP, routing policies, backends, usage. May import judges and predictor."""
