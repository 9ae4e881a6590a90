"""Final-answer extraction for the agreement judge: one table of replies, and pairs of replies."""

import pytest

from routeyard.judges.answer_extraction import FinalAnswer, extract_answer, same_answer


def choice(letter):
    return FinalAnswer("choice", letter)


def number(value):
    return FinalAnswer("number", value)


def yes_no(value):
    return FinalAnswer("yes_no", value)


def span(value):
    return FinalAnswer("span", value)


@pytest.mark.parametrize(
    ("text", "expect", "wanted"),
    [
        # multiple choice
        ("B", None, choice("B")),
        ("B)", None, choice("B")),
        ("(b)", None, choice("B")),
        ("B.", None, choice("B")),
        ("b.", None, choice("B")),
        ("The answer is B.", None, choice("B")),
        ("Answer: B", None, choice("B")),
        ("**Answer:** B", None, choice("B")),
        ("answer: (C) Paris", None, choice("C")),
        ("I think the correct option is D because it is the only even one.", None, choice("D")),
        ("The answer is A because the others are wrong.", None, choice("A")),
        ("Answer: It's C.", None, choice("C")),
        ("B. Paris", None, choice("B")),
        ("B\n\nBecause Paris is the capital of France.", None, choice("B")),
        ("Option A is tempting, but the answer is E.", None, choice("E")),
        ("The answer is A. Wait, no: the final answer is C.", None, None),
        ("The answer is B or C.", None, None),
        ("A) 3\nB) 4\nC) 5", None, None),
        ("Answer: A dog", "choice", None),
        ("The answer is 42.", "choice", None),
        # numbers
        ("1,234", None, number("1234")),
        ("$1,234.50", None, number("1234.5")),
        ("42 apples", None, number("42")),
        ("42.", None, number("42")),
        ("3/4", None, number("0.75")),
        ("1/3", None, number("1/3")),
        ("-7", None, number("-7")),
        ("1.50", None, number("1.5")),
        ("12 km", None, number("12")),
        ("5 million", None, number("5000000")),
        ("final answer: 42", None, number("42")),
        ("She has 3 + 4 = 7 apples, then 2 more.\n#### 9", None, number("9")),
        ("The answer is 10. Checking again, the answer is 12.", None, number("12")),
        ("So the result is $\\boxed{1.250}$.", None, number("1.25")),
        ("The answer is -0.50", "number", number("-0.5")),
        ("3 or 4", None, None),
        ("3 or 4", "number", None),
        ("There are 42 apples in the basket, 7 of them red.", "number", None),
        ("Yes.", "number", None),
        # yes / no
        ("Yes.", None, yes_no("yes")),
        ("no", None, yes_no("no")),
        ("Yes, because water boils at 100 degrees.", None, yes_no("yes")),
        ("The answer is no.", None, yes_no("no")),
        ("Yes. On reflection, though, the answer is no.", "yes_no", yes_no("no")),
        ("No one knows", None, None),
        ("Yes and no", None, None),
        # short spans
        ("Paris.", None, span("paris")),
        ("  the Eiffel Tower ", None, span("eiffel tower")),
        ("I think the answer is Paris.", None, span("paris")),
        ("Answer: The Great Wall of China", None, span("great wall of china")),
        ("The answer is B", "span", span("b")),
        ("1984", "span", span("1984")),
        ("What do you mean?", None, None),
        ("I don't know.", None, None),
        ("x = 42", None, None),
        # free form
        (
            "The French Revolution began in 1789 and reshaped politics across Europe for a century.",
            None,
            None,
        ),
        ("def f(x):\n    return x", None, None),
        ("```python\nprint('B')\n```", None, None),
        ("", None, None),
    ],
)
def test_extract_answer(text, expect, wanted):
    assert extract_answer(text, expect=expect) == wanted


@pytest.mark.parametrize(
    ("a", "b", "expect", "wanted"),
    [
        ("B", "The answer is B.", None, True),
        ("(b)", "Answer: B) Paris", None, True),
        ("I think the correct option is D because…", "D.", "choice", True),
        ("The answer is A.", "Answer: C", None, False),
        ("42", "#### 43", None, False),
        ("1,000", "1000", None, True),
        ("$1,234.50", "The answer is 1234.5", None, True),
        ("3/4", "0.75", "number", True),
        ("Yes.", "yes, because it rains", None, True),
        ("Paris.", "  paris ", None, True),
        ("The French Revolution reshaped politics across Europe for a century.", "B", None, None),
        ("def f(x):\n    return x", "def f(x):\n    return x", None, None),
        ("B", "42", None, None),
        ("B", "42", "number", None),
    ],
)
def test_same_answer(a, b, expect, wanted):
    assert same_answer(a, b, expect=expect) is wanted
