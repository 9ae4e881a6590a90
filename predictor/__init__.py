"""Outcome tables, embedders, quality/cost predictors and their artifacts. Imports none of ours."""
