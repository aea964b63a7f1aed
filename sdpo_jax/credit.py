"""Visual-grounded code credit: Feedback (defects, elements, errors) -> one weight per reply token.

    w_t = 1 + (alpha - 1) * resp(s(t))
    resp(s) = max over defects d of max(IoU(region_d, R(s)) * severity_d,
                                         severity_d if s holds a line of d's traced lines)

A statement s owns some lines of the extracted program, by the one statement rule
(envs.program.statements, which tracing uses too). R(s) is made of the boxes of the elements whose
traced lines touch s, and IoU against a region made of parts is the best part's
(envs.geometry.max_iou), so a statement that made many artists is judged by the one the defect
hit. A defect's own traced lines are its responsible statements and get its full severity: the
IoU term spreads credit to the other statements that drew where the defect is. A failed
execution credits the failing statement (`error_severity`) and, by static AST def-use, the
statements that bound or modified a name it reads (`dependency_severity`). s(t) is the statement
owning the line of token t's first non-blank character (a token ")\\n" belongs to the line it
closes; a blank token to the line it starts on); tokens outside the program (prose, fences,
special tokens) and lines no statement owns get resp 0. Weights are then optionally normalised
to mean 1 over the reply.

Host-side numpy/python only: it never imports jax.
"""
from __future__ import annotations

import ast
import codecs
import dataclasses
import functools
import math
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

import numpy as np

from envs.code_extract import LANGUAGE_TAGS, extract_code, line_of, line_starts
from envs.feedback import Feedback
from envs.geometry import max_iou
from envs.program import Statement, statements

NORMALISATIONS = ("mean", "none")


@dataclasses.dataclass(frozen=True)
class CreditConfig:
    """alpha: amplification (1 = uniform SDPO); normalise: 'mean' (mean weight 1 per reply) or
    'none'; language: 'python' (AST statements) or 'html' (line statements), also choosing the
    fenced block (envs.code_extract); error_severity and dependency_severity: resp of a failing
    statement and of the statements that built its inputs. Feedback lines are in program
    coordinates (every env reports them so).
    """

    alpha: float = 2.0
    normalise: str = "mean"
    language: str = "python"
    error_severity: float = 1.0
    dependency_severity: float = 0.5

    def __post_init__(self):
        if not _finite(self.alpha) or self.alpha < 0:
            raise ValueError(f"CreditConfig.alpha = {self.alpha!r} is invalid: expected a finite "
                             f"number >= 0 (1 = uniform, > 1 amplifies responsible statements)")
        for name, options in (("normalise", NORMALISATIONS), ("language", tuple(LANGUAGE_TAGS))):
            if getattr(self, name) not in options:
                raise ValueError(f"CreditConfig.{name} = {getattr(self, name)!r} is invalid: "
                                 f"expected one of {options}")
        for name in ("error_severity", "dependency_severity"):
            value = getattr(self, name)
            if not _finite(value) or not 0.0 <= value <= 1.0:
                raise ValueError(f"CreditConfig.{name} = {value!r} is invalid: expected a number "
                                 f"in [0, 1] (a severity)")

    @classmethod
    def from_mapping(cls, raw: Mapping[str, Any] | Any) -> "CreditConfig":
        """The one reader of credit settings: a dict or ml_collections.ConfigDict."""
        items = dict(raw.items())
        known = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(items) - known)
        if unknown:
            raise ValueError(f"unknown credit config key(s) {unknown}; known keys: {sorted(known)}")
        return cls(**items)


def credit_weights(reply: str, token_spans: Sequence[tuple[int, int]], feedback: Feedback,
                   config: CreditConfig) -> np.ndarray:
    """float32 weight per token of `reply`, given each token's (start, end) character span."""
    extracted = extract_code(reply, config.language)
    program = statements(extracted.code, config.language)
    resp = statement_responsibility(program, feedback, config)
    per_line: dict[int, float] = {}
    for statement, value in zip(program, resp):
        for line in range(statement.first, statement.last + 1):
            per_line[line] = max(per_line.get(line, 0.0), value)
    starts = line_starts(extracted.code)
    token_resp = np.zeros(len(token_spans), np.float64)
    for i, (start, end) in enumerate(token_spans):
        position = _anchor(reply, start, end) - extracted.offset
        if 0 <= position < len(extracted.code):
            token_resp[i] = per_line.get(line_of(starts, position), 0.0)
    weights = 1.0 + (config.alpha - 1.0) * token_resp
    if config.normalise == "mean" and len(weights) and weights.mean() > 0:
        weights = weights / weights.mean()
    return weights.astype(np.float32)


def rollout_credit(tokenizer: Any, token_ids: Sequence[int], feedback: Feedback,
                   config: CreditConfig) -> np.ndarray:
    """Weights for one sampled response, straight from its token ids (what the trainer holds).

    The reply is the exact decoding of the ids (special tokens included, as literal text at the
    end): the env must have judged the same text, which `extract_code` then finds again.
    """
    reply, spans = token_char_spans(tokenizer, token_ids)
    return credit_weights(reply, spans, feedback, config)


def statement_responsibility(statements: Sequence[Statement], feedback: Feedback,
                             config: CreditConfig) -> list[float]:
    """resp(s) in [0, 1] for each statement (Feedback lines already in program coordinates)."""
    resp = [0.0] * len(statements)
    for i, statement in enumerate(statements):
        regions = [e.region for e in feedback.elements
                   if any(statement.touches(span) for span in e.lines)]
        for defect in feedback.defects:
            traced = any(statement.touches(span) for span in defect.lines)
            overlap = max_iou(defect.region, regions) if regions else 0.0
            resp[i] = max(resp[i], defect.severity * (1.0 if traced else overlap))
    error = feedback.error
    if not feedback.ok and error is not None and error.line is not None:
        failing = [i for i, s in enumerate(statements) if s.first <= error.line <= s.last]
        for i in _dependencies(statements, failing):
            resp[i] = max(resp[i], config.dependency_severity)
        for i in failing:
            resp[i] = max(resp[i], config.error_severity)
    return resp


def token_char_spans(tokenizer: Any, token_ids: Sequence[int]) -> tuple[str, list[tuple[int, int]]]:
    """The exact decoded text of SAMPLED token ids and each token's character span in it.

    Works from each token's raw bytes, so a non-canonical sampled segmentation maps exactly (re-
    encoding the text could segment differently). A token ending inside a multi-byte character
    gets an empty span at the character the next token completes. `tokenizer` is a
    models.qwen3_vl.tokenizer.Qwen3Tokenizer (any byte-level BPE `tokenizers` backend works).
    """
    backend = tokenizer.backend
    special = {i: t.content for i, t in backend.get_added_tokens_decoder().items()}
    byte_of = _unicode_to_byte()
    decoder = codecs.getincrementaldecoder("utf-8")(errors="replace")
    pieces: list[str] = []
    spans: list[tuple[int, int]] = []
    position = 0
    for token_id in token_ids:
        token_id = int(token_id)
        if token_id in special:
            raw = decoder.decode(b"", final=True) + special[token_id]
            decoder.reset()
        else:
            text = backend.id_to_token(token_id)
            if text is None:
                raise ValueError(f"token id {token_id} is outside the tokenizer's vocabulary "
                                 f"({backend.get_vocab_size()} entries)")
            raw = decoder.decode(bytes(byte_of[ch] for ch in text))
        pieces.append(raw)
        spans.append((position, position + len(raw)))
        position += len(raw)
    tail = decoder.decode(b"", final=True)
    if tail and spans:
        pieces.append(tail)
        spans[-1] = (spans[-1][0], spans[-1][1] + len(tail))
    return "".join(pieces), spans


# ------------------------------------------------------------------------------- internals


def _finite(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)


def _anchor(reply: str, start: int, end: int) -> int:
    """The character a token is judged by: its first non-blank one, else where it starts."""
    for position in range(start, min(end, len(reply))):
        if not reply[position].isspace():
            return position
    return start


def _dependencies(statements: Sequence[Statement], failing: Iterable[int]) -> set[int]:
    """Statements before a failing one that bind or modify a name it reads (one def-use hop)."""
    found: set[int] = set()
    for f in failing:
        node = statements[f].node
        if node is None:
            continue
        for name in _names_read(node):
            for i in range(f - 1, -1, -1):
                other = statements[i].node
                if other is None or other is node:
                    continue
                if _modifies(other, name):
                    found.add(i)
                if _binds(other, name):
                    found.add(i)
                    break
    return found - set(failing)


def _header_nodes(node: ast.stmt) -> list[ast.AST]:
    """The parts of a statement evaluated at its own lines (a compound statement's header)."""
    if isinstance(node, (ast.For, ast.AsyncFor)):
        return [node.iter]
    if isinstance(node, (ast.If, ast.While)):
        return [node.test]
    if isinstance(node, (ast.With, ast.AsyncWith)):
        return [item.context_expr for item in node.items]
    if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
        return list(node.decorator_list)
    if isinstance(node, ast.Try):
        return []
    return [node]


def _names_read(node: ast.stmt) -> set[str]:
    return {n.id for part in _header_nodes(node) for n in ast.walk(part)
            if isinstance(n, ast.Name) and isinstance(n.ctx, ast.Load)}


def _binds(node: ast.stmt, name: str) -> bool:
    if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
        return node.name == name
    if isinstance(node, (ast.Import, ast.ImportFrom)):
        return any((alias.asname or alias.name.split(".")[0]) == name for alias in node.names)
    targets: list[ast.AST] = []
    if isinstance(node, ast.Assign):
        targets = node.targets
    elif isinstance(node, (ast.AnnAssign, ast.AugAssign, ast.For, ast.AsyncFor)):
        targets = [node.target]
    elif isinstance(node, (ast.With, ast.AsyncWith)):
        targets = [item.optional_vars for item in node.items if item.optional_vars is not None]
    return any(isinstance(n, ast.Name) and n.id == name and isinstance(n.ctx, ast.Store)
               for target in targets for n in ast.walk(target))


def _modifies(node: ast.stmt, name: str) -> bool:
    """`name.method(...)`, `name[...] = ...`, `name.attr = ...` or `name += ...` (in place)."""
    if isinstance(node, ast.Expr) and isinstance(node.value, ast.Call):
        return _root_name(node.value.func) == name and isinstance(node.value.func, ast.Attribute)
    if isinstance(node, ast.AugAssign):
        return _root_name(node.target) == name
    if isinstance(node, (ast.Assign, ast.AnnAssign)):
        targets = node.targets if isinstance(node, ast.Assign) else [node.target]
        return any(isinstance(t, (ast.Attribute, ast.Subscript)) and _root_name(t) == name
                   for t in targets)
    return False


def _root_name(node: ast.AST) -> str | None:
    while isinstance(node, (ast.Attribute, ast.Subscript, ast.Call)):
        node = node.func if isinstance(node, ast.Call) else node.value
    return node.id if isinstance(node, ast.Name) else None


@functools.lru_cache(maxsize=1)
def _unicode_to_byte() -> dict[str, int]:
    """Inverse of byte-level BPE's byte -> printable character table (GPT-2's bytes_to_unicode)."""
    printable = (list(range(ord("!"), ord("~") + 1)) + list(range(ord("¡"), ord("¬") + 1))
                 + list(range(ord("®"), ord("ÿ") + 1)))
    table, extra = {}, 0
    for byte in range(256):
        if byte in printable:
            table[chr(byte)] = byte
        else:
            table[chr(256 + extra)] = byte
            extra += 1
    return table
