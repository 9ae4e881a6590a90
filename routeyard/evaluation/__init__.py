"""Router evaluation: points, hulls, AIQ, sweeps, cascades, replay and reports, over numpy arrays."""
