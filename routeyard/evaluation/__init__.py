"""Router evaluation: points, hulls, AIQ, sweeps and cascades, vectorised over numpy arrays."""
