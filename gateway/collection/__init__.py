"""``routeyard collect``'s machinery: read prompts, have backends answer them, grade, append to a table.

One concept per module: :mod:`.prompt_file` (the input), :mod:`.grading` (quality of an answer),
:mod:`.outcome_file` (the appendable long outcome table), :mod:`.collector` (the calls).
"""
