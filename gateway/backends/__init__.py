"""The Backend seam (``backend.py``), its kinds (``kinds/``) and what HTTP kinds share."""
