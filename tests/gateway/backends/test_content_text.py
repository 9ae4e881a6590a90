"""content_text: the one reading of a message's text that the wire, every backend and the usage
estimates share."""

import pytest

from routeyard.gateway.wire import ChatMessage, content_text

IMAGE: dict[str, object] = {"type": "image_url", "image_url": {"url": "https://example.com/cat.png"}}


@pytest.mark.parametrize(
    ("content", "text"),
    [
        ("plain text", "plain text"),
        ("", ""),
        ([{"type": "text", "text": "one"}, IMAGE, {"type": "text", "text": "two"}], "one\ntwo"),
        ([{"text": "no type"}, {"type": "input_text", "text": "other type"}], "no type\nother type"),
        ([{"type": "text", "text": None}, {"type": "text", "text": 7}, {"type": "text"}], ""),
        ([IMAGE, "a bare string", 3, None], ""),
        ([], ""),
        (None, ""),
        (42, ""),
        ({"type": "text", "text": "an object, not a list"}, ""),
    ],
)
def test_text_strings_and_text_parts_only(content, text):
    assert content_text(content) == text


def test_a_chat_message_reads_its_text_the_same_way():
    parts: list[dict[str, object]] = [{"type": "text", "text": "a"}, IMAGE, {"text": "b"}]
    assert ChatMessage(role="user", content=parts).text() == "a\nb" == content_text(parts)
    assert ChatMessage(role="assistant").text() == ""
