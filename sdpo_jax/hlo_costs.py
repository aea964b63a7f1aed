"""FLOPs and HBM bytes of a compiled XLA program, every loop counted as often as it runs.

XLA's cost analysis (`Compiled.cost_analysis()`, HloCostAnalysis) counts the body of a while
loop once whatever its trip count, so a train step that scans its layers, computes attention in
query chunks (`lax.map`) and its loss in response chunks and vocabulary tiles reports a small
part of its work. Here the executable's optimized per-device HLO is split into computations,
each while loop's trip count is read from its counter (`i < N` from a constant start with a
constant step: what `lax.scan`, `lax.map` and a static `fori_loop` compile to), each loop body is
analysed on its own by the same HloCostAnalysis (jaxlib's `hlo_module_cost_analysis`, what
`Lowered.cost_analysis` calls: a private API of the pinned jax), and

    total(C) = analysed(C) + sum over the loops w run by C of
               trips(w) * total(body(w)) - analysed(body(w))

(a loop's condition stays counted once: a scalar compare). A loop whose count cannot be read (a
data-dependent `while_loop`) stays counted once and is listed with `trips=None`.

What the figures are: HloCostAnalysis's, for one device. FLOPs count dots and convolutions
(2 per multiply-add) and elementwise ops; bytes accessed count, for every top-level instruction
(a fusion being one), the bytes of its operands read and its outputs written (a fusion's
intermediates are not counted: they stay on chip; an operand a fusion only slices counts as the
slice, but one it pads before slicing, as XLA's windowed matmuls do, counts whole), so they model
HBM traffic with no reuse across instructions. A collective (all-gather, reduce-scatter,
collective-permute) counts only its local operand and output bytes: the time on the inter-chip
links is in neither figure. Bytes are the arrays' logical sizes: the analysis runs on the host
(XLA:CPU's shape sizes) on the TPU program's HLO, where the TPU's own analysis counts tile-padded
sizes (at chart_8b's train step its loops-once figure is 5.4% higher); FLOPs agree exactly.
"""
from __future__ import annotations

import dataclasses
import math
import re
from functools import cached_property

import jax
from jax._src import xla_bridge
from jax._src.lib import _jax
from jaxlib import _hlo


@dataclasses.dataclass(frozen=True)
class Costs:
    """FLOPs and bytes accessed of some HLO on one device."""

    flops: float = 0.0
    bytes_accessed: float = 0.0

    def __add__(self, other: Costs) -> Costs:
        return Costs(self.flops + other.flops, self.bytes_accessed + other.bytes_accessed)

    def __sub__(self, other: Costs) -> Costs:
        return Costs(self.flops - other.flops, self.bytes_accessed - other.bytes_accessed)

    def __mul__(self, factor: float) -> Costs:
        return Costs(self.flops * factor, self.bytes_accessed * factor)


@dataclasses.dataclass(frozen=True)
class Loop:
    """One while loop: where JAX traced it, its trip count, one iteration's costs (its own
    inner loops counted) and all iterations' (each time the enclosing program runs it once)."""

    op_name: str
    trips: int | None
    iteration: Costs
    total: Costs
    depth: int  # 0: run by the program itself, 1: inside such a loop, ...


@dataclasses.dataclass(frozen=True)
class ProgramCosts:
    """A program's costs with loops counted, XLA's own count (bodies once), and its loops."""

    total: Costs
    analysed: Costs
    loops: tuple[Loop, ...]

    @property
    def uncounted(self) -> tuple[Loop, ...]:
        return tuple(loop for loop in self.loops if loop.trips is None)

    @property
    def outer_loops(self) -> tuple[Loop, ...]:
        """The loops the program runs itself; with `outside` they add up to `total`."""
        return tuple(loop for loop in self.loops if loop.depth == 0)

    @property
    def outside(self) -> Costs:
        """What the program does outside any loop."""
        return self.total - sum((loop.total for loop in self.outer_loops), Costs())


# ------------------------------------------------------------------------------ parsing
_HEADER = re.compile(r"^(ENTRY )?%(\S+) \(")
_INSTRUCTION = re.compile(r"^\s*(ROOT )?%(\S+) = ")
_OPCODE = re.compile(r"([a-z][\w-]*)\(")
_OP_NAME = re.compile(r'op_name="([^"]*)"')


def _closing(text: str, start: int) -> int:
    """Index just past the parenthesis group opening at text[start]."""
    depth = 0
    for i in range(start, len(text)):
        depth += {"(": 1, ")": -1}.get(text[i], 0)
        if depth == 0:
            return i + 1
    raise ValueError(f"unbalanced parentheses in {text[:200]!r}")


@dataclasses.dataclass(frozen=True)
class _Instruction:
    name: str
    opcode: str
    operands: tuple[str, ...]  # names of operand instructions, or a constant's literal
    attributes: str            # everything after the operand list
    root: bool

    @classmethod
    def parse(cls, line: str) -> _Instruction:
        found = _INSTRUCTION.match(line)
        rest = line[found.end():]
        shape_end = _closing(rest, 0) if rest.startswith("(") else rest.index(" ")
        opcode = _OPCODE.match(rest, shape_end + 1)
        close = _closing(rest, opcode.end() - 1)
        operands = tuple(o.split()[-1].lstrip("%") for o in rest[opcode.end():close - 1].split(",")
                         if o.strip())
        return cls(found[2], opcode[1], operands, rest[close:], bool(found[1]))

    def attribute(self, key: str) -> str | None:
        found = re.search(rf"\b{key}=([^,\s}}]+)", self.attributes)
        return found and found[1].lstrip("%")


@dataclasses.dataclass
class _Computation:
    name: str
    entry: bool
    lines: list[str]

    @cached_property
    def instructions(self) -> dict[str, _Instruction]:
        return {i.name: i for i in map(_Instruction.parse, self.lines[1:-1])}

    @property
    def root(self) -> _Instruction:
        return next(i for i in self.instructions.values() if i.root)


def _computations(text: str) -> tuple[list[str], dict[str, _Computation]]:
    """What precedes the computations (the stack frame tables their metadata points into) and
    the computations, in the text's order (callees before their callers)."""
    preamble, computations, current = [], {}, None
    for line in text.splitlines():
        header = _HEADER.match(line) if line.endswith("{") else None
        if header:
            current = _Computation(header[2], bool(header[1]), [line])
        elif current is not None:
            current.lines.append(line)
            if line.startswith("}"):
                computations[current.name] = current
                current = None
        elif not computations:
            preamble.append(line)
    return preamble, computations


# ------------------------------------------------------------------------------ counting
def _trips(loop: _Instruction, caller: _Computation,
           computations: dict[str, _Computation]) -> int | None:
    """The trip count of `loop` when its condition is `counter < N` (or `N > counter`) on a
    tuple element that starts from a constant and grows by a constant; None otherwise."""
    condition = computations[loop.attribute("condition")]
    body = computations[loop.attribute("body")]
    compare = condition.root
    if compare.opcode != "compare" or len(compare.operands) != 2:
        return None
    direction = compare.attribute("direction")
    if direction not in ("LT", "GT"):
        return None
    counter, bound = compare.operands if direction == "LT" else compare.operands[::-1]
    index = _tuple_index(condition, counter)
    limit = _constant(condition, bound)
    init = caller.instructions.get(loop.operands[0])
    if index is None or limit is None or init is None or init.opcode != "tuple":
        return None
    start = _constant(caller, init.operands[index])
    step = _increment(body, body.root.operands[index], index) if body.root.opcode == "tuple" \
        else None
    if start is None or not step:
        return None
    return max(0, math.ceil((limit - start) / step))


def _source(computation: _Computation, name: str) -> _Instruction | None:
    """The instruction `name` copies (through copies, bitcasts and converts), or itself."""
    instruction = computation.instructions.get(name)
    while instruction is not None and instruction.opcode in ("copy", "bitcast", "convert"):
        instruction = computation.instructions.get(instruction.operands[0])
    return instruction


def _tuple_index(computation: _Computation, name: str) -> int | None:
    """k when `name` is (a copy of) element k of the computation's tuple parameter."""
    instruction = _source(computation, name)
    if instruction is None or instruction.opcode != "get-tuple-element":
        return None
    source = computation.instructions.get(instruction.operands[0])
    index = instruction.attribute("index")
    return int(index) if source is not None and source.opcode == "parameter" and index else None


def _constant(computation: _Computation, name: str) -> int | None:
    """The integer value of `name`, through copies of a constant."""
    instruction = _source(computation, name)
    if instruction is None or instruction.opcode != "constant":
        return None
    try:
        return int(instruction.operands[0])
    except ValueError:
        return None


def _increment(body: _Computation, name: str, index: int) -> int | None:
    """s when `name` is element `index` of the body's parameter plus the constant s."""
    add = _source(body, name)
    if add is None or add.opcode != "add":
        return None
    for counter, step in (add.operands, add.operands[::-1]):
        if _tuple_index(body, counter) == index:
            return _constant(body, step)
    return None


def _callees(instruction: _Instruction, computations: dict[str, _Computation]) -> list[str]:
    return [name for name in re.findall(r"%([\w.\-]+)", instruction.attributes)
            if name in computations]


class _Counter:
    """Analyses computations on their own (as the entry of a module made of what they call)
    and adds up loops with their trip counts."""

    def __init__(self, text: str):
        preamble, self.computations = _computations(text)
        self.preamble = ["HloModule costs", *preamble[1:]]
        self.backend = xla_bridge.get_backend("cpu")
        self.loops: list[Loop] = []

    def analyse(self, name: str) -> Costs:
        """HloCostAnalysis of computation `name` as a program of its own (loops once)."""
        reached, pending = set(), [name]
        while pending:
            current = pending.pop()
            if current not in reached:
                reached.add(current)
                pending += [c for i in self.computations[current].instructions.values()
                            for c in _callees(i, self.computations)]
        parts = list(self.preamble)
        for computation in self.computations.values():
            if computation.name in reached:
                header = computation.lines[0].removeprefix("ENTRY ")
                parts += [("ENTRY " if computation.name == name else "") + header,
                          *computation.lines[1:]]
        module = _hlo.hlo_module_from_text("\n".join(parts))
        costs = _jax.hlo_module_cost_analysis(self.backend, module)
        return Costs(float(costs.get("flops", 0.0)), float(costs.get("bytes accessed", 0.0)))

    def correction(self, name: str, runs: float, depth: int) -> Costs:
        """total - analysed of computation `name`: its loops' extra iterations (and theirs);
        `runs` is how often `name` itself runs per program run and `depth` how many loops
        enclose it (to report loops)."""
        computation = self.computations[name]
        extra = Costs()
        for instruction in computation.instructions.values():
            if instruction.opcode == "while":
                body = instruction.attribute("body")
                trips = _trips(instruction, computation, self.computations)
                once = self.analyse(body)
                iteration = once + self.correction(body, runs * (trips or 1), depth + 1)
                found = _OP_NAME.search(instruction.attributes)
                self.loops.append(Loop(found[1] if found else instruction.name, trips,
                                       iteration, iteration * (runs * (trips or 1)), depth))
                extra += iteration * (trips or 1) - once
            elif instruction.opcode in ("call", "conditional", "async-start"):
                corrections = [self.correction(c, runs, depth) for c in
                               _callees(instruction, self.computations)]
                if instruction.opcode == "conditional":  # HloCostAnalysis takes the max
                    corrections = [max(corrections, key=lambda c: c.flops, default=Costs())]
                extra = sum(corrections, extra)
        return extra


def program_costs(compiled: jax.stages.Compiled) -> ProgramCosts:
    """The costs of `compiled` (one device's program) with every loop counted."""
    text = compiled.runtime_executable().hlo_modules()[0].to_string()
    return hlo_costs(text)


def hlo_costs(text: str) -> ProgramCosts:
    """`program_costs` of an optimized HLO module's text."""
    counter = _Counter(text)
    entry = next(c.name for c in counter.computations.values() if c.entry)
    analysed = counter.analyse(entry)
    total = analysed + counter.correction(entry, 1, 0)
    return ProgramCosts(total, analysed, tuple(counter.loops))
