"""Judges that score an answer in [0, 1]. May import predictor."""
