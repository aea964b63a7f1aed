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
owning token t's program line (sdpo_jax.replies.Reply.token_lines; a line shared by a one-line
compound statement and its body takes the larger resp); tokens outside the program (prose,
fences, special tokens) and lines no statement owns get resp 0. Weights are then optionally
normalised to mean 1 over the reply.

Host-side numpy/python only: it never imports jax.
"""
from __future__ import annotations

import ast
import dataclasses
import math
from collections.abc import Iterable, Sequence
from typing import Any

import numpy as np

from envs.code_extract import line_starts
from envs.feedback import Feedback
from envs.geometry import max_iou
from envs.program import Statement
from sdpo_jax.replies import Reply

NORMALISATIONS = ("mean", "none")


@dataclasses.dataclass(frozen=True)
class CreditConfig:
    """config.credit. alpha: amplification (1 = uniform SDPO); normalise: 'mean' (mean weight 1
    per reply) or 'none'; error_severity and dependency_severity: resp of a failing statement and
    of the statements that built its inputs."""

    alpha: float
    normalise: str
    error_severity: float
    dependency_severity: float

    def __post_init__(self):
        if not _finite(self.alpha) or self.alpha < 0:
            raise ValueError(f"CreditConfig.alpha = {self.alpha!r} is invalid: expected a finite "
                             f"number >= 0 (1 = uniform, > 1 amplifies responsible statements)")
        if self.normalise not in NORMALISATIONS:
            raise ValueError(f"CreditConfig.normalise = {self.normalise!r} is invalid: expected "
                             f"one of {NORMALISATIONS}")
        for name in ("error_severity", "dependency_severity"):
            value = getattr(self, name)
            if not _finite(value) or not 0.0 <= value <= 1.0:
                raise ValueError(f"CreditConfig.{name} = {value!r} is invalid: expected a number "
                                 f"in [0, 1] (a severity)")


def credit_weights(reply: Reply, feedback: Feedback, config: CreditConfig) -> np.ndarray:
    """float32 weight per token of the reply (Feedback lines in its program's coordinates)."""
    return weights_from_responsibility(token_responsibility(reply, feedback, config), config)


def token_responsibility(reply: Reply, feedback: Feedback, config: CreditConfig) -> np.ndarray:
    """resp(s(t)) per token of the reply, 0 outside the program: where the env put the blame
    (also the diagnostics' split of blamed tokens from the rest, whatever alpha is)."""
    resp = statement_responsibility(reply.statements, feedback, config)
    per_line = np.zeros(len(line_starts(reply.program.code)) + 1, np.float64)  # index 0: outside
    for statement, value in zip(reply.statements, resp):
        span = per_line[statement.first:statement.last + 1]
        np.maximum(span, value, out=span)
    return per_line[reply.token_lines]


def weights_from_responsibility(responsibility: np.ndarray, config: CreditConfig) -> np.ndarray:
    """w_t = 1 + (alpha - 1) * resp(s(t)), normalised as configured."""
    weights = 1.0 + (config.alpha - 1.0) * responsibility
    if config.normalise == "mean" and len(weights) and weights.mean() > 0:
        weights = weights / weights.mean()
    return weights.astype(np.float32)


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


# ------------------------------------------------------------------------------- internals


def _finite(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)


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
