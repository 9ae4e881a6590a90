"""The final answer in a model's reply, for an agreement judge: two independent replies to the same prompt
agree when the final answers extracted from them are equal.

Contract (pure: no I/O, standard library only, never raises):

- :func:`extract_answer` is a :class:`FinalAnswer` (a kind and a normalised value), or ``None`` for
  "cannot tell": free-form prose, code, nothing recognisable, or conflicting signals.
- Explicit statements ("The answer is B", "Answer: B", "final answer: 42", GSM8K's "#### 42", LaTeX's
  ``\\boxed{42}``) win over bare mentions. A number is the last explicit statement's; a choice or a
  yes/no whose explicit statements disagree is ``None``, and so are bare mentions that disagree.
- With ``expect`` only that kind is looked for; without it: choice, then number, then yes/no, then a short
  span, and the first kind that finds anything decides (a conflict there is ``None``, not the next kind).
- Values: choice is a letter "A".."J"; number a canonical decimal ("1234.5", "-3", "0.75" for 3/4; a
  fraction without a finite decimal stays "p/q" in lowest terms); yes_no is "yes" or "no"; span is
  lower-cased without punctuation, articles and repeated whitespace (SQuAD's normalisation), at most
  :data:`MAX_SPAN_WORDS` words of the reply, or of its tail after the last "answer is"-like marker.
- :func:`same_answer` compares two replies (:func:`answers_agree` two extracted answers): ``None`` unless
  both yield an answer of the same kind.
"""

from __future__ import annotations

import re
import string
from dataclasses import dataclass
from fractions import Fraction
from typing import Literal

AnswerKind = Literal["choice", "number", "yes_no", "span"]

MAX_SPAN_WORDS = 5
"""The longest reply (or tail after an answer marker), in words, that is taken as a span answer."""

_AUTO_ORDER: tuple[AnswerKind, ...] = ("choice", "number", "yes_no", "span")


@dataclass(frozen=True)
class FinalAnswer:
    """A reply's final answer: its kind and its normalised value (see the module docstring)."""

    kind: AnswerKind
    value: str


# "The answer is", "Answer:", "final answer =", "the correct option is", "My choice:", "####", followed by
# optional filler ("definitely", "option", "I think") before the answer itself.
_MARKER = (
    r"(?:####|(?i:\b(?:(?:final|correct|right|best)\s+)?(?:answer|option|choice)\s*"
    r"(?:(?:is|would\s+be|should\s+be|must\s+be|will\s+be)\b\s*:?|[:=])))"
    r"(?i:\s*(?:definitely|clearly|probably|likely|most\s+likely|indeed|option|choice|letter"
    r"|i\s+think|i\s+believe|it'?s|it\s+is)\b)*\s*"
)
_MARKER_RE = re.compile(_MARKER, re.MULTILINE)

# A choice letter: "(b)", "B" (not the start of a word), or a lower-case letter closed by punctuation.
_LETTER = (
    r"(?:\(\s*(?P<paren>[A-Ja-j])\s*\)|(?P<upper>[A-J])(?![\w'’]|-\w)"
    r"|(?P<lower>[a-j])(?=[.):,;!]|\s*$))"
)
_EXPLICIT_LETTER_RE = re.compile(_MARKER + _LETTER, re.MULTILINE)
# Lines that name an option on their own: "B", "(b)", "B.", "B) Paris", "(C) Paris", "B. Paris".
_OPTION_LINE_RE = re.compile(
    r"^[^\S\n]*(?:\(\s*(?P<paren>[A-Ja-j])\s*\)|(?P<closed>[A-J])\)|(?P<dotted>[A-J])[.:]|(?P<alone>[A-Ja-j])\.?)"
    r"(?:[^\S\n]+(?P<rest>\S.*))?[^\S\n]*$",
    re.MULTILINE,
)
_OPTION_LINE_WORDS = 6
# "A"/"I" followed by a lower-case word is the article/pronoun ("A dog", "I think"), unless that word is one
# of these; any letter followed by "or C", "and C", ", C" names several options.
_CONNECTIVES = frozenset({"because", "since", "as", "which", "is", "for", "with", "-", "–", "—"})
_SEVERAL_OPTIONS_RE = re.compile(r"\s*(?:,|/|&|\bor\b|\band\b)\s*\(?[A-J]\b")

_NUMBER = r"[-−]?\s*[$€£¥]?\s*[-−]?(?:(?:\d{1,3}(?:,\d{3})+|\d+)(?:\.\d+)?|\.\d+)(?:\s*/\s*\d+)?(?![.,]?\d)"
_SCALES = {"thousand": 10**3, "million": 10**6, "billion": 10**9, "trillion": 10**12}
_SCALE = r"(?:\s+(?P<scale>thousand|million|billion|trillion)\b)?"
_EXPLICIT_NUMBER_RE = re.compile(_MARKER + rf"(?P<num>{_NUMBER}){_SCALE}", re.MULTILINE)
# A whole reply that is a number with at most three words of unit: "42 apples", "12 km", "$1,234.50."
_BARE_NUMBER_RE = re.compile(
    rf"\A(?P<num>{_NUMBER}){_SCALE}\s*(?P<unit>%|[^\W\d_]+(?:\s+[^\W\d_]+){{0,2}})?\s*[.!]?\Z"
)
_NOT_UNITS = frozenset({"or", "and", "to", "plus", "minus", "times", "over", "divided", "by", "x"})

_YES_NO = r"(?i:(?P<yn>yes|no))(?=\s*(?:[.,!;:)]|$)|\s+(?i:because|since|as)\b)"
_EXPLICIT_YES_NO_RE = re.compile(_MARKER + _YES_NO, re.MULTILINE)
_LEADING_YES_NO_RE = re.compile(r"\A\s*" + _YES_NO, re.MULTILINE)

_SENTENCE_END_RE = re.compile(r"[.!?](?=\s|$)|\n")
_CODE_RE = re.compile(r"[=;{}<>`\\]|\w\(|^\s*(?:def|class|import|return|lambda)\b")
_HEDGE_RE = re.compile(
    r"\b(?:dont know|not sure|unsure|no idea|cannot|cant|unable|unknown|maybe|perhaps|it depends|or)\b"
)
_PUNCTUATION = frozenset(string.punctuation) | frozenset("‘’“”«»–—…¿¡")
_ARTICLES_RE = re.compile(r"\b(?:a|an|the)\b")


def extract_answer(text: str, *, expect: AnswerKind | None = None) -> FinalAnswer | None:
    """The final answer in ``text``, only of kind ``expect`` when given; ``None`` when it cannot tell."""
    cleaned = _clean(text)
    for kind in _AUTO_ORDER if expect is None else (expect,):
        values = set(_candidates(kind, cleaned, auto=expect is None))
        if len(values) == 1:
            return FinalAnswer(kind, values.pop())
        if values:
            return None
    return None


def same_answer(a: str, b: str, *, expect: AnswerKind | None = None) -> bool | None:
    """Whether replies ``a`` and ``b`` give the same final answer; ``None`` when either cannot be told or
    their kinds differ."""
    return answers_agree(extract_answer(a, expect=expect), extract_answer(b, expect=expect))


def answers_agree(first: FinalAnswer | None, second: FinalAnswer | None) -> bool | None:
    """Whether two extracted answers are the same; ``None`` when either is unknown or their kinds differ."""
    if first is None or second is None or first.kind != second.kind:
        return None
    return first.value == second.value


def _clean(text: str) -> str:
    """``text`` stripped of Markdown emphasis, with ``\\boxed{X}`` spelled as an explicit answer."""
    text = re.sub(r"\\boxed\{([^{}]*)\}", r" answer: \1 ", text.replace("*", ""))
    return text.replace("’", "'").strip()


def _candidates(kind: AnswerKind, text: str, *, auto: bool) -> list[str]:
    """Every normalised value of ``kind`` that ``text`` states as its answer (several = a conflict)."""
    if kind == "choice":
        return _choices(text)
    if kind == "number":
        return _numbers(text)
    if kind == "yes_no":
        return _yes_nos(text)
    return _spans(text, auto=auto)


def _choices(text: str) -> list[str]:
    """The letters of the explicit statements, or failing those of the lines that name an option."""
    explicit = [_letter(m) for m in _EXPLICIT_LETTER_RE.finditer(text) if _names_one_option(text, m)]
    if explicit:
        return explicit
    return [_letter(m) for m in _OPTION_LINE_RE.finditer(text) if _is_option_line(m)]


def _letter(match: re.Match[str]) -> str:
    """The letter a choice pattern matched (its first group that matched), in upper case."""
    return next(group for group in match.groups() if group).upper()


def _names_one_option(text: str, match: re.Match[str]) -> bool:
    """Whether an explicit statement's letter is one option, not an article, pronoun or list of options."""
    after = text[match.end() :]
    if _SEVERAL_OPTIONS_RE.match(after):
        return False
    if match.group("upper") not in ("A", "I"):
        return True
    word = re.match(r"\s+([a-z]\S*)", after)
    return word is None or word.group(1) in _CONNECTIVES


def _is_option_line(match: re.Match[str]) -> bool:
    """Whether a line starting with a letter names an option: "B" alone, "(C) Paris", a short "B. Paris"."""
    rest = match.group("rest")
    if match.group("alone"):
        return rest is None
    return match.group("dotted") is None or rest is None or len(rest.split()) < _OPTION_LINE_WORDS


def _numbers(text: str) -> list[str]:
    """The number of the last explicit statement, or of a reply that is only a number (and a unit)."""
    explicit = list(_EXPLICIT_NUMBER_RE.finditer(text))
    if explicit:
        value = _number_value(explicit[-1].group("num"), explicit[-1].group("scale"))
        return [] if value is None else [value]
    bare = _BARE_NUMBER_RE.match(text)
    if bare is None or _NOT_UNITS & set((bare.group("unit") or "").lower().split()):
        return []
    value = _number_value(bare.group("num"), bare.group("scale"))
    return [] if value is None else [value]


def _number_value(raw: str, scale: str | None) -> str | None:
    """The canonical decimal of a matched number ("$1,234.50" → "1234.5", "3/4" → "0.75")."""
    cleaned = re.sub(r"[\s$€£¥,]", "", raw).replace("−", "-")
    sign = -1 if cleaned.count("-") % 2 else 1
    top, _, bottom = cleaned.replace("-", "").partition("/")
    try:
        value = Fraction(top) / Fraction(bottom) if bottom else Fraction(top)
    except (ValueError, ZeroDivisionError):
        return None
    return _canonical(sign * value * _SCALES.get((scale or "").lower(), 1))


def _canonical(value: Fraction) -> str:
    """``value`` as a decimal without trailing zeros, or "p/q" when it has no finite decimal."""
    rest, twos, fives = value.denominator, 0, 0
    while rest % 2 == 0:
        rest, twos = rest // 2, twos + 1
    while rest % 5 == 0:
        rest, fives = rest // 5, fives + 1
    if rest != 1:
        return f"{value.numerator}/{value.denominator}"
    digits = max(twos, fives)
    whole, fraction = divmod(abs(value.numerator) * 10**digits // value.denominator, 10**digits)
    text = f"{whole}.{fraction:0{digits}d}" if digits else str(whole)
    return f"-{text}" if value < 0 else text


def _yes_nos(text: str) -> list[str]:
    """The yes/no of the explicit statements, or failing those of the reply's first word."""
    explicit = [m.group("yn").lower() for m in _EXPLICIT_YES_NO_RE.finditer(text)]
    leading = _LEADING_YES_NO_RE.match(text)
    return explicit or ([leading.group("yn").lower()] if leading else [])


def _spans(text: str, *, auto: bool) -> list[str]:
    """The normalised short span the reply answers with: its tail after the last answer marker (up to
    the end of that sentence), or else the whole reply; none when long, multi-line, code or a hedge."""
    markers = list(_MARKER_RE.finditer(text))
    candidate = text
    if markers:
        candidate = _SENTENCE_END_RE.split(text[markers[-1].end() :], maxsplit=1)[0]
    candidate = candidate.strip().removesuffix(".")
    if not candidate or "\n" in candidate or candidate.endswith("?") or _CODE_RE.search(candidate):
        return []
    if len(candidate.split()) > MAX_SPAN_WORDS:
        return []
    span = _normalise_span(candidate)
    if not span or _HEDGE_RE.search(span):
        return []
    if auto and (span.split()[0] in ("yes", "no") or not any(char.isalpha() for char in span)):
        return []  # yes/no and numbers were tried first: what is left of them here is unclear

    return [span]


def _normalise_span(text: str) -> str:
    """SQuAD's normalisation: lower case, no punctuation, no articles, single spaces."""
    text = "".join(char for char in text.lower() if char not in _PUNCTUATION)
    return " ".join(_ARTICLES_RE.sub(" ", text).split())
