"""Splitting a response body, as it arrives in parts, into lines of bounded length (an SSE stream's).

A line ends at ``\\r\\n``, ``\\n`` or ``\\r`` (the SSE rule), also when the two bytes of ``\\r\\n`` arrive in
different parts. Lines are decoded as UTF-8, an invalid byte becoming U+FFFD (what a client's SSE parser
does). A line longer than the limit raises :class:`LineTooLongError` as soon as its first
``max_line_bytes + 1`` bytes are in: however long an upstream's line (even endless), at most the limit
plus one part is held. The work is linear in the bytes fed, however small the parts.
"""

from __future__ import annotations

_CR = 13


class LineTooLongError(ValueError):
    """A line is longer than the splitter's ``max_line_bytes``."""


class LineSplitter:
    """Feed it a body's parts in order (:meth:`feed`), then :meth:`end` it; each returns the lines that
    became complete, without their line ends (see the module docstring).

    Args:
        max_line_bytes: the longest line accepted, in bytes without its line end, ≥ 1.
    """

    def __init__(self, max_line_bytes: int) -> None:
        self.max_line_bytes = max_line_bytes
        self._partial: list[bytes] = []  # the unfinished last line, in the parts it came in
        self._partial_bytes = 0
        self._after_cr = False  # the last line ended with \r: a \n starting the next part belongs to it

    def feed(self, part: bytes) -> list[str]:
        """The lines ``part`` completes; raises :class:`LineTooLongError`."""
        if self._after_cr and part.startswith(b"\n"):
            part = part[1:]
        self._after_cr = False
        end = max(part.rfind(b"\n"), part.rfind(b"\r"))
        if end < 0:  # no line ends here: the unfinished line grows
            self._keep(part)
            return []
        complete = b"".join((*self._partial, part[: end + 1])) if self._partial else part[: end + 1]
        self._partial, self._partial_bytes = [], 0
        self._after_cr = part[end] == _CR
        self._keep(part[end + 1 :])
        lines = complete.splitlines()  # bytes split only at \r\n, \n and \r
        if max(map(len, lines)) > self.max_line_bytes:
            raise LineTooLongError(f"a line is longer than {self.max_line_bytes} bytes")
        return [line.decode("utf-8", "replace") for line in lines]

    def end(self) -> list[str]:
        """The last line, when the body did not end with a line end."""
        if not self._partial:
            return []
        line, self._partial, self._partial_bytes = b"".join(self._partial), [], 0
        return [line.decode("utf-8", "replace")]

    def _keep(self, unfinished: bytes) -> None:
        if not unfinished:
            return
        self._partial.append(unfinished)
        self._partial_bytes += len(unfinished)
        if self._partial_bytes > self.max_line_bytes:
            raise LineTooLongError(f"a line is longer than {self.max_line_bytes} bytes")
