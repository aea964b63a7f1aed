"""One sampled reply, read once: its text, where each of its tokens sits in the text, the program
in it and the program's statements.

Built right after sampling, then carried: the env judges `program.code` (and reports lines in its
coordinates), credit weighting maps each token to its program line through `token_lines`, the
teacher's context quotes sibling programs. Nothing downstream decodes tokens or extracts a
program again. Host-side numpy only; never imports jax.
"""
from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from typing import Any

import numpy as np

from envs.code_extract import ExtractedCode, extract_code, line_of, line_starts
from envs.program import Statement, statements


@dataclasses.dataclass(frozen=True)
class Reply:
    """One row's reply (see the module docstring). Lines are 1-based, in program coordinates."""

    prompt_index: int  # the prompt of the batch this row answers (the row layout, as data)
    token_ids: np.ndarray  # [n] the reply's tokens; a stop token that ended the row is not one
    text: str  # their exact decoding, special tokens as literal text
    token_spans: tuple[tuple[int, int], ...]  # each token's character span in `text`
    program: ExtractedCode  # by the one fence rule (envs.code_extract)
    statements: tuple[Statement, ...]  # by the one statement rule (envs.program)
    token_lines: np.ndarray  # [n] the program line each token is judged by; 0: outside it

    @classmethod
    def read(cls, tokenizer: Any, token_ids: Sequence[int], prompt_index: int,
             language: str) -> "Reply":
        """`tokenizer` gives `decode_with_spans` (models/): the spans of the sampled ids."""
        ids = np.asarray(token_ids, np.int32)
        text, spans = tokenizer.decode_with_spans(ids)
        program = extract_code(text, language)
        starts = line_starts(program.code)
        lines = np.zeros(len(spans), np.int32)
        for i, (start, end) in enumerate(spans):
            position = _anchor(text, start, end) - program.offset
            if 0 <= position < len(program.code):
                lines[i] = line_of(starts, position)
        return cls(prompt_index=prompt_index, token_ids=ids, text=text,
                   token_spans=tuple(map(tuple, spans)), program=program,
                   statements=tuple(statements(program.code, language)), token_lines=lines)


def read_replies(tokenizer: Any, tokens: np.ndarray, lengths: np.ndarray,
                 prompt_index: np.ndarray, languages: Sequence[str]) -> list[Reply]:
    """Replies of sampled rows: tokens [N, T] with `lengths` [N] generated tokens each, row i
    answering prompt `prompt_index[i]` written in `languages[prompt_index[i]]`. A row's final
    stop token closes the reply and is not part of it."""
    stops = set(tokenizer.special.eos)
    out = []
    for row, (n, prompt) in enumerate(zip(lengths.tolist(), prompt_index.tolist())):
        if n and int(tokens[row, n - 1]) in stops:
            n -= 1
        out.append(Reply.read(tokenizer, tokens[row, :n], prompt, languages[prompt]))
    return out


def _anchor(text: str, start: int, end: int) -> int:
    """The character a token is judged by: its first non-blank one, else where it starts (a
    token ")\\n" belongs to the line it closes, a blank token to the line it starts on)."""
    for position in range(start, min(end, len(text))):
        if not text[position].isspace():
            return position
    return start
