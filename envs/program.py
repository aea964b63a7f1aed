"""The model's program as code: compiling it under one filename, running it, and the one rule for
its statements (1-based, inclusive line spans) that tracing and credit weighting both use.

Runners inside the sandbox use this to execute model code; tracing uses `GEN_FILENAME` to
recognise the model's frames and `StatementIndex` to turn a frame's line into a statement span;
credit weighting (sdpo_jax.credit) maps reply tokens onto `statements`.
A failure is returned as an `ExecError` naming the model's line, never raised.
Never imports jax; never runs code outside a sandbox child.
"""
from __future__ import annotations

import ast
import bisect
import builtins
import dataclasses
import re
from collections.abc import Iterable
from types import CodeType, TracebackType
from typing import Any

from envs.code_extract import line_starts
from envs.feedback import ExecError, LineSpan

GEN_FILENAME = "<gen>"  # frames whose code has this filename are the model's
MAX_MESSAGE_CHARS = 2000
_FAULT_LINE = re.compile(r'File "<gen>", line (\d+)')


class StopProgram(BaseException):
    """Raised by a runner's hook to end the program early and keep what it drew so far.

    A BaseException so that the model's own `except Exception:` does not swallow it.
    """


def compile_program(code: str) -> CodeType | ExecError:
    """Bytecode for `code` under GEN_FILENAME, or the error that stops it compiling."""
    try:
        return compile(code, GEN_FILENAME, "exec", dont_inherit=True)
    except SyntaxError as err:  # includes IndentationError, TabError
        return ExecError(type(err).__name__, _clip(err.msg or str(err)), err.lineno)
    except (ValueError, UnicodeError, OverflowError, RecursionError, MemoryError) as err:
        # null bytes, lone surrogates, absurd literals or nesting: the source itself is unusable
        return ExecError(type(err).__name__, _clip(f"the program cannot be compiled: {_safe_str(err)}"))


def run_program(code: str | CodeType, namespace: dict[str, Any] | None = None) -> ExecError | None:
    """Execute the program as `__main__`; None when it ran to its end or was stopped by a hook."""
    compiled = compile_program(code) if isinstance(code, str) else code
    if isinstance(compiled, ExecError):
        return compiled
    scope = namespace if namespace is not None else {}
    scope.setdefault("__name__", "__main__")
    scope.setdefault("__builtins__", builtins)
    try:
        exec(compiled, scope)
    except StopProgram:
        return None
    except SystemExit as err:
        return ExecError("SystemExit", f"the program called sys.exit({_safe_str(err.code)}) before "
                                       "its output was produced; remove the exit call",
                         _innermost_gen_line(err.__traceback__))
    except BaseException as err:  # noqa: BLE001 - model code may raise anything
        return error_from_exception(err)
    return None


def error_from_exception(err: BaseException) -> ExecError:
    """ExecError with the exception's type, message and the model's innermost line."""
    return ExecError(type(err).__name__, _clip(_safe_str(err)), _innermost_gen_line(err.__traceback__))


def line_from_fault_dump(stderr: str) -> int | None:
    """The model's line in a faulthandler dump (most recent call first), if any."""
    match = _FAULT_LINE.search(stderr)
    return int(match.group(1)) if match else None


def _innermost_gen_line(tb: TracebackType | None) -> int | None:
    line = None
    while tb is not None:
        if tb.tb_frame.f_code.co_filename == GEN_FILENAME:
            line = tb.tb_lineno
        tb = tb.tb_next
    return line


def _safe_str(value: Any) -> str:
    try:
        return str(value)
    except BaseException:  # noqa: BLE001 - a hostile __str__
        return f"<unprintable {type(value).__name__}>"


def _clip(text: str) -> str:
    return text if len(text) <= MAX_MESSAGE_CHARS else text[:MAX_MESSAGE_CHARS] + "..."


@dataclasses.dataclass(frozen=True)
class Statement:
    """The lines a statement owns (1-based, inclusive, program coordinates) and its AST node
    (None for a line of a program that does not parse, or of HTML)."""

    first: int
    last: int
    node: ast.stmt | None = None

    @property
    def span(self) -> LineSpan:
        return (self.first, self.last)

    def touches(self, span: LineSpan) -> bool:
        return span[0] <= self.last and self.first <= span[1]


def statements(code: str, language: str) -> list[Statement]:
    """The one statement rule, in source order: for parsable Python the AST statements, where a
    simple statement owns all its lines and a compound one (for, if, with, def, ...) only its
    header and decorators, so a line in a loop body belongs to the body statement; otherwise
    (HTML, or Python that does not parse) one statement per line."""
    if language == "python":
        try:
            tree = ast.parse(code)
        except (SyntaxError, ValueError, UnicodeError, RecursionError, MemoryError, OverflowError):
            tree = None
        if tree is not None:
            return sorted((_own_lines(node) for node in ast.walk(tree) if isinstance(node, ast.stmt)),
                          key=lambda st: (st.first, st.last))
    return [Statement(line, line) for line in range(1, len(line_starts(code)) + 1)]


def _own_lines(node: ast.stmt) -> Statement:
    first = min([node.lineno] + [d.lineno for d in getattr(node, "decorator_list", ())])
    bodies = [getattr(node, name) for name in ("body", "handlers", "orelse", "finalbody", "cases")
              if isinstance(getattr(node, name, None), list) and getattr(node, name)]
    if not bodies:
        return Statement(first, node.end_lineno or node.lineno, node)
    body_start = min(getattr(block[0], "lineno", None) or block[0].pattern.lineno  # match_case
                     for block in bodies)
    return Statement(first, max(node.lineno, body_start - 1), node)


class StatementIndex:
    """Line -> the span of the Python statement holding it (`statements`), for tracing run-time
    frames; the line itself when no statement holds it (blank, comment, `else:`)."""

    def __init__(self, code: str):
        spans = sorted({st.span for st in statements(code, "python") if st.node is not None},
                       key=lambda span: (span[0], -span[1]))
        self._starts = [span[0] for span in spans]
        self._spans = spans

    def span(self, line: int) -> LineSpan:
        """Spans never nest (compound statements own only their headers), so the candidate is the
        last span starting at or before the line; a one-line compound shares it with its body."""
        i = bisect.bisect_right(self._starts, line) - 1
        if i >= 0 and self._spans[i][1] >= line:
            return self._spans[i]
        return (line, line)

    def spans(self, lines: Iterable[int]) -> tuple[LineSpan, ...]:
        """Sorted distinct statement spans of the given lines."""
        return tuple(sorted({self.span(int(n)) for n in lines if n is not None and int(n) > 0}))
