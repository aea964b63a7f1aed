"""The one rule for finding the program in a model's reply, and for mapping its lines back.

Environments judge the extracted program and report line spans in ITS coordinates; credit
weighting (sdpo_jax.credit) must find the very same characters in the reply to put those lines
back onto the reply's tokens. Both import `extract_code` from here so they cannot drift apart.

Rule: the first fenced block (``` or ~~~, three or more, at the start of a line, up to three
spaces of indent) whose info string names the language or is empty; an unclosed fence runs to the
end of the reply (generation cut off). No such block: the whole reply is the program. The code
keeps the reply's exact characters (CRLF included), so `offset` maps code to reply one to one.
Line breaks are \\r\\n, \\r or \\n, as in Python's own line numbering.
Plain Python, no jax: it runs in env workers and in the trainer's host code alike.
"""
from __future__ import annotations

import bisect
import dataclasses
import re

LANGUAGE_TAGS = {"python": ("python", "py", "python3"), "html": ("html", "htm", "xhtml")}

_OPEN_FENCE = re.compile(r"^ {0,3}(?P<fence>`{3,}|~{3,})[ \t]*(?P<info>[^\r\n]*?)[ \t]*\r?\n", re.M)
_LINE_BREAK = re.compile(r"\r\n|\r|\n")


@dataclasses.dataclass(frozen=True)
class ExtractedCode:
    """The program and where it sits in the reply: reply[offset:offset + len(code)] == code."""

    code: str
    offset: int
    fenced: bool
    reply_lines_before: int  # line breaks in the reply before the code's first character

    def to_reply_line(self, code_line: int) -> int:
        """1-based line of the program -> 1-based line of the reply."""
        return code_line + self.reply_lines_before

    def to_code_line(self, reply_line: int) -> int:
        return reply_line - self.reply_lines_before


def extract_code(reply: str, language: str) -> ExtractedCode:
    """The program of `language` ('python' or 'html') in a model reply; see the module docstring."""
    if language not in LANGUAGE_TAGS:
        raise ValueError(f"extract_code: unknown language {language!r}; known: {sorted(LANGUAGE_TAGS)}")
    tags = LANGUAGE_TAGS[language]
    position = 0
    while (opening := _OPEN_FENCE.search(reply, position)) is not None:
        start = opening.end()
        fence = opening.group("fence")
        closing = re.compile(rf"^ {{0,3}}{re.escape(fence[0])}{{{len(fence)},}}[ \t]*(?:\r?\n|\r|\Z)",
                             re.M).search(reply, start)
        end = closing.start() if closing else len(reply)
        info = opening.group("info").split()
        if not info or info[0].lower() in tags:
            return ExtractedCode(reply[start:end], start, True, count_line_breaks(reply[:start]))
        if closing is None:
            break
        position = closing.end()  # another language's block: skip it whole
    return ExtractedCode(reply, 0, False, 0)


def count_line_breaks(text: str) -> int:
    return len(_LINE_BREAK.findall(text))


def line_starts(text: str) -> list[int]:
    """Character offset where each line starts; entry i is line i + 1."""
    return [0] + [m.end() for m in _LINE_BREAK.finditer(text)]


def line_of(starts: list[int], position: int) -> int:
    """1-based line holding character `position`, given `line_starts` of the text."""
    return bisect.bisect_right(starts, position)
