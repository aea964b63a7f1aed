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

Pallas kernels. A Mosaic kernel is a custom call whose inside HloCostAnalysis cannot see (it
counts nothing for it; the TPU compiler counts only what the kernel's `cost_estimate` says, and
JAX's splash-attention kernels set none). A kernel whose backend config carries a cost estimate
is counted by it; the splash-attention kernels (forward, dq, dkv) are counted analytically here
(`splash_costs`) from their operand shapes and block sizes (both in the HLO) and their grids as
jax's splash_attention_kernel lays them out: the matmul FLOPs of every block pair the kernel
visits, and every block it copies between HBM and VMEM (q once per query block, keys and values
once per visited block pair, ...). Under the named scope `CAUSAL_SCOPE` (where
models/qwen3_vl/layers.py runs its causal kernels) only the causal part of the block grid is
visited; elsewhere the whole grid is counted. Any other custom call without an estimate is
listed in `ProgramCosts.unknown_kernels` (counted as nothing).
"""
from __future__ import annotations

import dataclasses
import json
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
    kernels: Costs = Costs()  # the Pallas kernels' part of `total`, loops counted
    unknown_kernels: tuple[str, ...] = ()  # TPU custom calls counted as nothing

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
_END = re.compile(r"^\}(, execution_thread=\S+)?\s*$")  # not a kernel metadata's "}}, ..."


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
        header = _HEADER.match(line) if line.endswith("{") and current is None else None
        if header:
            current = _Computation(header[2], bool(header[1]), [line])
        elif current is not None:
            if _END.match(line):
                current.lines.append(line)
                computations[current.name] = current
                current = None
            elif _INSTRUCTION.match(line) or len(current.lines) == 1:
                current.lines.append(line)
            else:  # an attribute printed over several lines (a kernel's metadata)
                current.lines[-1] += "\n" + line
        elif not computations:
            preamble.append(line)
    return preamble, computations


# ------------------------------------------------------------------------------ kernels
CAUSAL_SCOPE = "splash_causal"
_SPLASH = re.compile(r"splash_m[hq]a_(fwd|dq|dkv)_(\w+?)(?:\.\d+)?$")
_ITEM_BYTES = {"bf16": 2, "f16": 2, "f32": 4, "s32": 4, "u32": 4, "s8": 1, "u8": 1, "pred": 1}
_SHAPE = re.compile(r"\b([a-z]+\d*)\[([\d,]*)\]")
_LANES, _SUBLANES = 128, 8


def visited_blocks(q_blocks: int, kv_blocks: int, block_q: int, block_kv: int,
                   causal: bool) -> int:
    """Block pairs (query block, key block) a splash kernel computes: all of them, or with a
    causal mask those holding a key at or before one of the block's queries."""
    if not causal:
        return q_blocks * kv_blocks
    return sum(min(kv_blocks, -(-(i + 1) * block_q // block_kv)) for i in range(q_blocks))


def splash_costs(phase: str, q_shape: tuple[int, ...], kv_shape: tuple[int, ...],
                 item_bytes: int, block_q: int, block_kv: int, *, causal: bool,
                 segmented: bool, residuals: bool, q_sequence: bool) -> Costs:
    """One splash-attention kernel (`phase` fwd, dq or dkv): q [..., Hq, L, D], k/v
    [..., Hk, Lk, D] (leading dims: rows the kernel is vmapped over). FLOPs: its matmuls on
    every visited block pair (fwd: QK^T and PV, 4 bq bkv D; dq: QK^T, dO V^T, dS K, 6; dkv:
    QK^T, dO V^T, P^T dO, dS^T Q, 8). Bytes: each block copied in or out as the kernel's grid
    (fwd, dq: heads x query blocks x key blocks; dkv: key blocks x heads x query blocks) and its
    block specs move them (a block whose index does not change is not copied again): in the
    forward and dq kernels q-side blocks once per query block and keys / values once per
    visited pair, in the dkv kernel the reverse; segment ids and the causal mask's query
    positions travel as int32 rows 128 lanes (or 8 sublanes) wide, the softmax statistics as
    float32 (the forward's log-sum-exp 128 lanes wide)."""
    *batch, heads, length, dim = q_shape
    kv_heads, kv_length = kv_shape[-3], kv_shape[-2]
    rows = math.prod(batch) * heads
    pairs = rows * visited_blocks(-(-length // block_q), -(-kv_length // block_kv), block_q,
                                  block_kv, causal)
    block = block_q * block_kv * dim
    queries = rows * length * dim * item_bytes  # one pass over q-shaped data
    lane_rows = rows * length * _LANES * 4  # q segment ids or query positions, 128 lanes
    kv_ids = pairs * _SUBLANES * block_kv * 4  # kv segment ids per visited pair, 8 sublanes
    if phase == "fwd":
        flops = 4 * block * pairs
        moved = (2 * queries + 2 * pairs * block_kv * dim * item_bytes + residuals * lane_rows
                 + segmented * (lane_rows + kv_ids) + q_sequence * lane_rows)
    elif phase == "dq":
        flops = 6 * block * pairs
        moved = (3 * queries + 2 * rows * length * 4 + 2 * pairs * block_kv * dim * item_bytes
                 + segmented * (lane_rows + kv_ids) + q_sequence * lane_rows)
    else:
        flops = 8 * block * pairs
        keys = math.prod(batch) * kv_heads * kv_length * dim * item_bytes
        per_query_block = pairs * block_q
        moved = (4 * keys + 2 * per_query_block * dim * item_bytes
                 + (2 + segmented + q_sequence) * per_query_block * _SUBLANES * 4
                 + segmented * rows * kv_length * _LANES * 4)
    return Costs(float(flops), float(moved))


def _block_size(attributes: str, key: str) -> int | None:
    found = re.search(rf'{key}\\?"\s*:\s*(\d+)', attributes)
    return int(found[1]) if found else None


def kernel_costs(instruction: _Instruction) -> Costs | None:
    """A TPU custom call's costs: its own cost estimate, the splash model, or None."""
    found = re.search(r'"cost_estimate":\s*(\{[^}]*\})', instruction.attributes)
    if found:
        estimate = json.loads(found[1])
        return Costs(float(estimate.get("flops", 0)), float(estimate.get("bytes_accessed", 0)))
    kernel = _SPLASH.search(instruction.name)
    operands = re.search(r"operand_layout_constraints=\{(.*?)\}, \w+=", instruction.attributes,
                         re.S)
    if kernel is None or operands is None:
        return None
    phase, variant = kernel[1], kernel[2]
    shapes = [(dtype, tuple(int(d) for d in dims.split(",") if d))
              for dtype, dims in _SHAPE.findall(re.sub(r"\{[\d,]*\}", "", operands[1]))
              if dtype in _ITEM_BYTES]
    q, k = [(dtype, shape) for dtype, shape in shapes
            if len(shape) >= 3 and dtype in ("bf16", "f16", "f32")][:2]
    prefix = {"fwd": "", "dq": "_dq", "dkv": "_dkv"}[phase]
    block_q = _block_size(instruction.attributes, f"block_q{prefix}")
    block_kv = _block_size(instruction.attributes, f"block_kv{prefix}")
    if block_q is None or block_kv is None:
        return None
    length = q[1][-2]
    op_name = _OP_NAME.search(instruction.attributes)
    return splash_costs(
        phase, q[1], k[1], _ITEM_BYTES[q[0]], block_q, block_kv,
        causal=bool(op_name and CAUSAL_SCOPE in op_name[1]), segmented="segmented" in variant,
        residuals=variant == "residuals" or variant.endswith("_residuals")
        and not variant.endswith("no_residuals"),
        q_sequence=any(dtype == "s32" and shape in ((length, _LANES), (_SUBLANES, length))
                       for dtype, shape in shapes))


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

    def __init__(self, text: str, kernels_only: bool = False):
        preamble, self.computations = _computations(text)
        self.preamble = ["HloModule costs", *preamble[1:]]
        self.backend = xla_bridge.get_backend("cpu")
        self.kernels_only = kernels_only  # count the TPU kernels alone (their share)
        self.loops: list[Loop] = []
        self.unknown_kernels: set[str] = set()

    def analyse(self, name: str) -> Costs:
        """HloCostAnalysis of computation `name` as a program of its own (loops once)."""
        reached, pending = set(), [name]
        while pending:
            current = pending.pop()
            if current not in reached:
                reached.add(current)
                pending += [c for i in self.computations[current].instructions.values()
                            for c in _callees(i, self.computations)]
        kernels = self.kernels(reached)
        if self.kernels_only:
            return kernels
        parts = list(self.preamble)
        for computation in self.computations.values():
            if computation.name in reached:
                header = computation.lines[0].removeprefix("ENTRY ")
                parts += [("ENTRY " if computation.name == name else "") + header,
                          *computation.lines[1:]]
        module = _hlo.hlo_module_from_text("\n".join(parts))
        costs = _jax.hlo_module_cost_analysis(self.backend, module)
        return Costs(float(costs.get("flops", 0.0)), float(costs.get("bytes accessed", 0.0))) \
            + kernels

    def kernels(self, names: set[str]) -> Costs:
        """The TPU custom calls of computations `names` (HloCostAnalysis counts them as
        nothing)."""
        total = Costs()
        for name in names:
            for instruction in self.computations[name].instructions.values():
                if instruction.opcode == "custom-call" \
                        and "tpu_custom_call" in instruction.attributes:
                    costs = kernel_costs(instruction)
                    if costs is None:
                        self.unknown_kernels.add(instruction.name)
                    total += costs or Costs()
        return total

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
    kernels = Costs()
    if any("tpu_custom_call" in line for c in counter.computations.values() for line in c.lines):
        alone = _Counter(text, kernels_only=True)
        kernels = alone.analyse(entry) + alone.correction(entry, 1, 0)
    return ProgramCosts(total, analysed, tuple(counter.loops), kernels,
                        tuple(sorted(counter.unknown_kernels)))
