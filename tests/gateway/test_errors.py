"""validation_problems: every pydantic error of a ValidationError as (dotted place, message)."""

import pytest
from pydantic import BaseModel, ValidationError

from routeyard.validation import validation_problems


class Turn(BaseModel):
    role: str
    tokens: int


class Conversation(BaseModel):
    turns: list[Turn]
    title: str


def problems_of(data: object) -> list[tuple[str, str]]:
    with pytest.raises(ValidationError) as caught:
        Conversation.model_validate(data)
    return validation_problems(caught.value)


def test_every_error_is_reported_in_order_at_its_dotted_place():
    problems = problems_of({"turns": [{"role": "user", "tokens": 1}, {"role": "user", "tokens": "many"}]})
    assert [where for where, _ in problems] == ["turns.1.tokens", "title"]
    assert problems[0][1].startswith("Input should be a valid integer")
    assert problems[1][1] == "Field required"


def test_an_error_of_the_whole_object_is_at_the_empty_place():
    ((where, message),) = problems_of(["not", "an", "object"])
    assert where == "" and "dictionary" in message


def test_no_message_quotes_the_rejected_input():
    problems = problems_of({"turns": [{"role": "user", "tokens": "SECRET-VALUE"}], "title": "t"})
    assert problems and not [message for _, message in problems if "SECRET-VALUE" in message]
