"""The model's program as code: compiling it under one filename, running it, and mapping the
line numbers seen at run time to the statements (1-based, inclusive line spans) that hold them.

Runners inside the sandbox use this to execute model code; tracing uses `GEN_FILENAME` to
recognise the model's frames and `StatementIndex` to turn a frame's line into a statement span.
A failure is returned as an `ExecError` naming the model's line, never raised.
Never imports jax; never runs code outside a sandbox child.
"""
from __future__ import annotations

import ast
import bisect
import builtins
import re
from collections.abc import Iterable
from types import CodeType, TracebackType
from typing import Any

from envs.code_extract import extract_code
from envs.feedback import ExecError, LineSpan

GEN_FILENAME = "<gen>"  # frames whose code has this filename are the model's
MAX_MESSAGE_CHARS = 2000
_FAULT_LINE = re.compile(r'File "<gen>", line (\d+)')


class StopProgram(BaseException):
    """Raised by a runner's hook to end the program early and keep what it drew so far.

    A BaseException so that the model's own `except Exception:` does not swallow it.
    """


def extract_program(answer: str) -> tuple[str, int]:
    """The python program in a model answer and how many answer lines precede it, by the one
    shared rule (`envs.code_extract`). Add the offset to a program line to get the answer's."""
    extracted = extract_code(answer, "python")
    return extracted.code, extracted.reply_lines_before


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


class StatementIndex:
    """Line -> enclosing statement span, from the program's AST.

    Simple statements span all their lines; a compound statement (for, if, with, def, ...) owns
    only its header lines, so a line in a loop body maps to the body statement, not the loop.
    """

    def __init__(self, code: str):
        self._starts: list[int] = []
        self._spans: list[LineSpan] = []
        try:
            tree = ast.parse(code)
        except (SyntaxError, ValueError, UnicodeError, RecursionError, MemoryError, OverflowError):
            return
        spans = sorted(_statement_spans(tree), key=lambda s: (s[0], -s[1]))
        self._starts = [s[0] for s in spans]
        self._spans = spans

    def span(self, line: int) -> LineSpan:
        """The statement containing `line`; the line itself when none does (blank, comment, else:).

        Spans never nest (compound statements own only their headers), so the candidate is the
        last span starting at or before the line; a one-line compound shares it with its body.
        """
        i = bisect.bisect_right(self._starts, line) - 1
        if i >= 0 and self._spans[i][1] >= line:
            return self._spans[i]
        return (line, line)

    def spans(self, lines: Iterable[int]) -> tuple[LineSpan, ...]:
        """Sorted distinct statement spans of the given lines."""
        return tuple(sorted({self.span(int(n)) for n in lines if n is not None and int(n) > 0}))


def _statement_spans(tree: ast.AST) -> Iterable[LineSpan]:
    for node in ast.walk(tree):
        if not isinstance(node, ast.stmt):
            continue
        end = node.end_lineno or node.lineno
        bodies = [getattr(node, f, None) for f in ("body", "orelse", "finalbody", "handlers", "cases")]
        first_child = min((b[0].lineno for b in bodies if isinstance(b, list) and b), default=None)
        if first_child is not None and first_child > node.lineno:
            end = first_child - 1  # header of a compound statement
        elif first_child is not None:
            end = node.lineno  # `for x in y: f(x)` on one line
        yield (node.lineno, max(node.lineno, end))
