"""Compile a run config for a TPU slice on a CPU host ahead of time: does it fit, how fast is it.

    python -m sdpo_jax.aot --config=configs/chart_8b.py --topology=v5p-64 [--config.key=value ...]

libtpu's compile-only devices (`jax.experimental.topologies`) stand in for the slice named by
`--topology` (`v5p-64`, i.e. 32 v5p chips; or libtpu's own `v5p:2x4x4`). The config's mesh is
laid over them and its programs are lowered from abstract values that carry their shardings:
the architecture is config.model.size (a checkpoint folder is never read), the train state
comes from the same path as a run (`train_step.abstract_train_state`, the
optimizer moments sharded like their parameters), the inputs from the static shapes the config
fixes (`RunConfig.shapes`, `rollout_batch.abstract_train_inputs`, the trainer's own). Nothing
is allocated; no TPU is used.

Programs: the train step (student + teacher + loss + AdamW, exactly what `Trainer` runs), the
rollout (prefill, then decoding the whole budget: the sampler's one program) and one decode
step at full cache length (its cost times the budget estimates the rollout's decoding time).
For each, per device: arguments, temporaries, outputs (less what the donated state aliases),
their total against the chip's HBM and the headroom; FLOPs and HBM bytes accessed per step; a
roofline time, max(FLOPs / peak bf16 FLOP/s, bytes / HBM bandwidth), from `CHIPS`. A program
whose temporaries exceed HBM is refused by the TPU compiler; it is reported with the bytes the
compiler asked for.

FLOPs and bytes (`--costs`, `COST_METHODS`): XLA's cost analysis counts a loop body once, and
the train step is loops all the way down (the layer scans; attention in query chunks, the loss
in response chunks and vocabulary tiles, inside them), so its own figures are a fraction of the
work. `loops` (the default) counts the compiled program itself with every loop body times its
trip count (`sdpo_jax.hlo_costs`, which says what the figures include); `depth` compiles the
train step unrolled at two depths of each tower and extrapolates linearly to the config's
depths (a cross-check that does not read layer-loop trip counts; three more compiles); `unrolled`
compiles it unrolled at full depth (slow at 8B). The report names the method. The train step's
MFU is the model FLOPs a step must do (`model_flops`: 6 x matmul parameters x tokens for the
student, 2x for the teacher's forward, plus causal attention; remat recomputation is not
counted, as usual for MFU) over the slice's peak for the roofline time: still an upper bound,
since the roofline has no collective time on the links, no latency and no overlap losses.

Prints a table, exits 1 when a program does not fit its chip, and ends with one JSON line.
"""
from __future__ import annotations

import dataclasses
import json
import math
import os
import re
import sys
from collections.abc import Callable
from typing import Any

import jax
import jax.numpy as jnp
from absl import app, flags
from flax import nnx
from jax.sharding import Mesh, NamedSharding
from ml_collections import config_flags

from models.qwen3_vl.config import Qwen3VLConfig
from models.qwen3_vl.convert import abstract_model
from models.qwen3_vl.kv_cache import KVCache, cache_axes
from models.sharding import logical_to_spec, make_mesh, state_shardings
from models.tokenizers.load import load_tokenizer
from sdpo_jax import rollout_batch
from sdpo_jax.hlo_costs import Costs, ProgramCosts, program_costs
from sdpo_jax.model_loading import architecture
from sdpo_jax.run_config import ConfigError, RunConfig
from sdpo_jax.sampler import Sampler
from sdpo_jax.train_step import abstract_train_state, input_shardings, make_train_step
from sdpo_jax.trainer import unsampleable_ids

GIB = 2 ** 30


@dataclasses.dataclass(frozen=True)
class Chip:
    """Published per-chip figures of a TPU generation (Cloud TPU system architecture pages)."""

    hbm_gib: float
    peak_bf16_tflops: float
    hbm_gbps: float  # HBM bandwidth, GB/s
    torus_dims: int  # 3: slices named by TensorCores (2 per chip); 2: named by chips


CHIPS = {
    "v4": Chip(hbm_gib=32, peak_bf16_tflops=275, hbm_gbps=1228, torus_dims=3),
    "v5e": Chip(hbm_gib=16, peak_bf16_tflops=197, hbm_gbps=819, torus_dims=2),
    "v5p": Chip(hbm_gib=95.74, peak_bf16_tflops=459, hbm_gbps=2765, torus_dims=3),  # the
    # compiler's own limit for v5p ("available HBM (95.74G)")
    "v6e": Chip(hbm_gib=32, peak_bf16_tflops=918, hbm_gbps=1640, torus_dims=2),
}


class TopologyError(ValueError):
    """A topology name that names no TPU slice; the message says what is accepted."""


def libtpu_topology(name: str) -> tuple[str, str]:
    """(generation, libtpu topology) of `v5p-64` (accelerator type) or `v5p:2x4x4` (as is).

    v4 / v5p types count TensorCores (2 per chip) and lay chips on a 3D torus; v5e / v6e count
    chips on a 2D one. The standard slice shape doubles the smallest side, the later one first:
    v5p-8 = 2x2x1, v5p-16 = 2x2x2, v5p-32 = 2x2x4, v5p-64 = 2x4x4, v5e-16 = 4x4, v6e-32 = 4x8.
    """
    generation, sep, size = name.partition(":") if ":" in name else name.partition("-")
    if generation not in CHIPS or not sep:
        raise TopologyError(f"--topology={name!r}: use an accelerator type such as v5p-64 or "
                            f"v6e-16 (generations {sorted(CHIPS)}), or a libtpu topology such "
                            f"as v5p:2x4x4")
    if ":" in name:
        return generation, name
    chip = CHIPS[generation]
    count = int(size) if size.isdigit() else 0
    chips = count // 2 if chip.torus_dims == 3 else count
    shape = [2, 2, 1] if chip.torus_dims == 3 else [1, 1]
    while math.prod(shape) < chips:
        smallest = min(shape)
        shape[max(i for i, side in enumerate(shape) if side == smallest)] *= 2
    if math.prod(shape) != chips:
        raise TopologyError(f"--topology={name!r}: {generation} slices have a power-of-two number "
                            f"of {'TensorCores (>= 8)' if chip.torus_dims == 3 else 'chips'}, "
                            f"e.g. v5p-64 or v6e-16")
    return generation, f"{generation}:{'x'.join(map(str, shape))}"


def compile_only_devices(topology: str) -> list[jax.Device]:
    """libtpu's devices of `topology`, for compiling only (no chip is opened)."""
    from jax.experimental import topologies

    # libtpu keeps one process per host by a lock file; a compile-only client needs no chip, so
    # it must not fail because another jax process on this host loaded libtpu first.
    os.environ.setdefault("ALLOW_MULTIPLE_LIBTPU_LOAD", "1")
    return list(topologies.get_topology_desc(platform="tpu", topology_name=topology).devices)


# ------------------------------------------------------------------------------ the programs
def _with_shardings(tree: Any, shardings: Any) -> Any:
    return jax.tree.map(lambda x, s: jax.ShapeDtypeStruct(x.shape, x.dtype, sharding=s),
                        tree, shardings)


def abstract_train_inputs(rc: RunConfig, config: Qwen3VLConfig, mesh: Mesh) -> tuple:
    """(student, teacher, loss batch) as the trainer builds them, abstract and sharded."""
    inputs = rollout_batch.abstract_train_inputs(config, rc.rollout.rows, rc.shapes(config),
                                                 rc.teacher.distill)
    return _with_shardings(inputs, input_shardings(mesh, config.sharding_rules, *inputs))


def lower_train_step(rc: RunConfig, config: Qwen3VLConfig, mesh: Mesh) -> jax.stages.Lowered:
    graphdef, state = abstract_train_state(config, mesh, rc.optim, rc.teacher.weights)
    step = make_train_step(graphdef, rc.step, rc.optim, jax.tree.map(lambda x: x.sharding, state),
                           mesh, config.sharding_rules)
    return step.lower(state, *abstract_train_inputs(rc, config, mesh))


def abstract_params(config: Qwen3VLConfig, mesh: Mesh) -> tuple[nnx.GraphDef, nnx.State]:
    """The model's graph and parameters as sharded ShapeDtypeStructs."""
    graphdef, params = nnx.split(abstract_model(config))
    return graphdef, _with_shardings(params, state_shardings(params, mesh, config.sharding_rules))


def lower_rollout(rc: RunConfig, config: Qwen3VLConfig, mesh: Mesh) -> jax.stages.Lowered:
    graphdef, params = abstract_params(config, mesh)
    tokenizer = load_tokenizer(rc.model.tokenizer)
    sampler = Sampler(dataclasses.replace(
        rc.sampler_for(config), suppress_token_ids=unsampleable_ids(config, tokenizer)),
        tokenizer, mesh=mesh)
    shapes = rc.shapes(config)
    return sampler.lower(graphdef, params, rc.rollout.prompts_per_step, shapes.student_prompt_length,
                         shapes.student_images and rc.rollout.prompts_per_step, shapes.slot_patches)


def lower_decode_step(rc: RunConfig, config: Qwen3VLConfig, mesh: Mesh) -> jax.stages.Lowered:
    """One decode step of every rollout row against a full cache (prompt + whole budget)."""
    graphdef, params = abstract_params(config, mesh)
    rows = rc.rollout.rows
    capacity = rc.rollout.max_prompt_tokens + rc.rollout.max_new_tokens
    cache = jax.eval_shape(lambda: KVCache.create(config, batch=rows, capacity=capacity))
    sizes = dict(zip(mesh.axis_names, mesh.axis_sizes))

    def sharding(x: jax.ShapeDtypeStruct) -> NamedSharding:
        """Keys / values by the cache's axes, per-row arrays by rows, scalars replicated."""
        axes = cache_axes(x) if x.ndim >= 4 else ("act_batch", None)[:x.ndim]
        return NamedSharding(mesh, logical_to_spec(axes, config.sharding_rules, sizes, x.shape))

    cache = _with_shardings(cache, jax.tree.map(sharding, cache))
    tokens = jax.ShapeDtypeStruct((rows,), jnp.int32)
    tokens = _with_shardings(tokens, sharding(tokens))

    def decode(params, cache, tokens):
        return nnx.merge(graphdef, params).decode_step(cache, tokens)

    with jax.set_mesh(mesh):
        return jax.jit(decode, donate_argnums=(1,)).lower(params, cache, tokens)




PROGRAMS = {"train_step": lower_train_step, "rollout": lower_rollout,
            "decode_step": lower_decode_step}


# ------------------------------------------------------------------------------ the figures
def _matmul_params(tree: Any) -> int:
    """Parameters that take part in a matrix product (>= 2-D weights; not norms, biases, tables
    read by lookup)."""
    return sum(math.prod(x.shape) for x in jax.tree.leaves(tree) if len(x.shape) >= 2)


def model_flops(rc: RunConfig, config: Qwen3VLConfig, recompute: bool = False) -> float:
    """FLOPs one train step must do, by the usual count: 2 per multiply-add of every matmul
    parameter per token forward, 4 backward (so 6 x params x tokens for the student, 2x for the
    teacher's forward pass), the causal attention scores and values (half of a full square),
    and the vision tower over the image slots it encodes. `recompute` adds the student forward
    that remat runs again in the backward pass (what the chips do; MFU does not count it)."""
    model = abstract_model(config)
    text_layers = _matmul_params(nnx.state(model.language_model.layers))
    head = _matmul_params(nnx.state(model.lm_head)) if model.lm_head is not None else 0
    vision = _matmul_params(nnx.state(model.visual))
    shapes = rc.shapes(config)
    rows = rc.rollout.rows
    t = config.text
    attention_width = 2 * 2 * t.num_hidden_layers * t.num_attention_heads * t.head_dim

    def forward(prompt_length: int, image_slots: int) -> float:
        length = prompt_length + shapes.response_length
        tokens = rows * length
        dense = 2 * text_layers * tokens + 2 * head * rows * shapes.response_length
        attention = attention_width * rows * length * length / 2
        v = config.vision
        patches = image_slots * shapes.slot_patches
        vision_attention = 2 * 2 * v.depth * v.hidden_size * image_slots * shapes.slot_patches ** 2
        return dense + attention + 2 * vision * patches + vision_attention

    passes = 3 + (recompute and config.remat != "none")
    student = passes * forward(shapes.student_prompt_length, shapes.student_images)
    teacher = forward(shapes.teacher_prompt_length, shapes.teacher_images) if rc.teacher.distill else 0
    return student + teacher


@dataclasses.dataclass(frozen=True)
class ProgramReport:
    """One compiled program on one device: bytes, costs and the roofline time. `flops` and
    `bytes_accessed` come from `cost_method`; `xla_*` are the compiler's own figures (each loop
    body once); `loops` are the loops the program runs itself (their share of the costs),
    `uncounted_loops` those whose trip count could not be read (counted once); `kernel_*` the
    Pallas kernels' share (counted by `hlo_costs.kernel_costs`, which XLA does not see),
    `unknown_kernels` kernels it could not count."""

    name: str
    argument_bytes: int
    temp_bytes: int
    output_bytes: int
    alias_bytes: int
    code_bytes: int
    hbm_bytes: int
    flops: float
    bytes_accessed: float
    flops_s: float  # FLOPs at the chip's peak
    bytes_s: float  # bytes at its HBM bandwidth
    cost_method: str = ""
    xla_flops: float = 0.0
    xla_bytes_accessed: float = 0.0
    loops: tuple[dict[str, Any], ...] = ()
    uncounted_loops: tuple[str, ...] = ()
    kernel_flops: float = 0.0
    kernel_bytes_accessed: float = 0.0
    unknown_kernels: tuple[str, ...] = ()

    @property
    def total_bytes(self) -> int:
        return (self.argument_bytes + self.temp_bytes + self.output_bytes - self.alias_bytes
                + self.code_bytes)

    @property
    def headroom(self) -> float:
        return 1 - self.total_bytes / self.hbm_bytes

    @property
    def roofline_s(self) -> float:
        return max(self.flops_s, self.bytes_s)

    @property
    def bound_by(self) -> str:
        return "HBM bytes" if self.bytes_s > self.flops_s else "FLOPs"

    @property
    def fits(self) -> bool:
        return self.total_bytes <= self.hbm_bytes

    def as_dict(self) -> dict[str, Any]:
        return dict(dataclasses.asdict(self), total_bytes=self.total_bytes,
                    headroom=self.headroom, fits=self.fits, roofline_s=self.roofline_s,
                    bound_by=self.bound_by)


_OUT_OF_MEMORY = re.compile(r"memory required for HLO temporaries \(([\d.]+)([KMGT])\)")


def _compile(lowered: jax.stages.Lowered) -> tuple[jax.stages.Compiled | None, int]:
    """(the executable, 0), or (None, temporaries the compiler asked for) when they exceed
    the chip's HBM: the TPU compiler refuses such programs instead of returning them."""
    try:
        return lowered.compile(), 0
    except jax.errors.JaxRuntimeError as err:
        found = _OUT_OF_MEMORY.search(str(err))
        if found is None:
            raise
        return None, int(float(found[1]) * 1024 ** " KMGT".index(found[2]))


COST_METHODS = {
    "loops": "compiled program, loop bodies x trip counts",
    "depth": "unrolled at 2 depths per tower, extrapolated",
    "unrolled": "compiled unrolled at full depth",
}
_LOGGED_LOOPS = 6  # the program's biggest loops printed under its row
def depth_variant(config: Qwen3VLConfig, text_layers: int, vision_depth: int) -> Qwen3VLConfig:
    """`config` unrolled with `text_layers` decoder layers and `vision_depth` vision blocks,
    the DeepStack taps on the first blocks. Every block is the same program wherever it sits,
    so costs are linear in each depth once the decoder has a layer per tap (feature k is added
    after decoder layer k: with fewer layers, one more layer would also add a tap)."""
    taps = len(config.vision.deepstack_visual_indexes)
    return config.replace(
        scan_layers=False, text=dataclasses.replace(config.text, num_hidden_layers=text_layers),
        vision=dataclasses.replace(config.vision, depth=vision_depth,
                                   deepstack_visual_indexes=tuple(range(taps))))


def extrapolated_costs(rc: RunConfig, config: Qwen3VLConfig, mesh: Mesh) -> Costs:
    """The train step's costs at the config's depths from three small unrolled
    compiles, d = the number of DeepStack taps (>= 1) in both towers:
    cost(T, V) = cost(d, d) + (T - d) [cost(d+1, d) - cost(d, d)]
                            + (V - d) [cost(d, d+1) - cost(d, d)].
    Loops inside a layer (attention chunks) and outside (the loss) are counted by trip count."""
    d = max(1, len(config.vision.deepstack_visual_indexes))

    def at(text_layers: int, vision_depth: int) -> Costs:
        variant = depth_variant(config, text_layers, vision_depth)
        return program_costs(lower_train_step(rc, variant, mesh).compile()).total

    base = at(d, d)
    return (base + (at(d + 1, d) - base) * (config.text.num_hidden_layers - d)
            + (at(d, d + 1) - base) * (config.vision.depth - d))


def train_step_costs(method: str, rc: RunConfig, config: Qwen3VLConfig, mesh: Mesh
                     ) -> Callable[[], Costs] | None:
    """The train step's costs by `method`, when they are not the compiled program's own."""
    if method == "depth":
        return lambda: extrapolated_costs(rc, config, mesh)
    if method == "unrolled":
        return lambda: program_costs(
            lower_train_step(rc, config.replace(scan_layers=False), mesh).compile()).total
    return None


def _outer_loops(costs: ProgramCosts, peak: float, bandwidth: float
                 ) -> tuple[dict[str, Any], ...]:
    """The program's own loops merged by where JAX traced them (`jvp()/while`: a forward pass
    that is differentiated, `transpose(jvp())/while`: its backward pass, `/while` alone: a
    forward pass without gradient) and what runs outside any loop, longest roofline first."""
    merged: dict[tuple[str, int | None], list] = {}
    for loop in costs.outer_loops:
        merged.setdefault((loop.op_name, loop.trips), []).append(loop.total)
    parts = [(name, trips, len(totals), sum(totals, Costs()))
             for (name, trips), totals in merged.items()]
    parts.append(("(outside loops)", None, 1, costs.outside))
    rows = [{"op_name": name, "trips": trips, "count": count, "flops": total.flops,
             "bytes_accessed": total.bytes_accessed,
             "roofline_s": max(total.flops / peak, total.bytes_accessed / bandwidth)}
            for name, trips, count, total in parts]
    return tuple(sorted(rows, key=lambda row: -row["roofline_s"]))


def measure(name: str, lowered: jax.stages.Lowered, chip: Chip, devices_per_chip: int,
            method: str = "loops", costs_of: Callable[[], Costs] | None = None) -> ProgramReport:
    """Bytes of `lowered` compiled, and its FLOPs and bytes accessed with loops counted; or,
    with `costs_of`, those it returns (computed after this executable is released)."""
    hbm = int(chip.hbm_gib * GIB / devices_per_chip)
    compiled, needed = _compile(lowered)
    if compiled is None:
        return ProgramReport(name=name, argument_bytes=0, temp_bytes=needed, output_bytes=0,
                             alias_bytes=0, code_bytes=0, hbm_bytes=hbm, flops=0.0,
                             bytes_accessed=0.0, flops_s=0.0, bytes_s=0.0)
    memory = compiled.memory_analysis()
    counted = program_costs(compiled)
    del compiled  # an 8B executable holds gigabytes; `costs_of` may compile three more
    costs = counted.total if costs_of is None else costs_of()
    peak = chip.peak_bf16_tflops * 1e12 / devices_per_chip
    bandwidth = chip.hbm_gbps * 1e9 / devices_per_chip
    return ProgramReport(
        name=name, argument_bytes=memory.argument_size_in_bytes,
        temp_bytes=memory.temp_size_in_bytes, output_bytes=memory.output_size_in_bytes,
        alias_bytes=memory.alias_size_in_bytes,
        code_bytes=memory.generated_code_size_in_bytes, hbm_bytes=hbm, flops=costs.flops,
        bytes_accessed=costs.bytes_accessed, flops_s=costs.flops / peak,
        bytes_s=costs.bytes_accessed / bandwidth, cost_method=method,
        xla_flops=counted.analysed.flops, xla_bytes_accessed=counted.analysed.bytes_accessed,
        loops=_outer_loops(counted, peak, bandwidth),
        uncounted_loops=tuple(loop.op_name for loop in counted.uncounted),
        kernel_flops=counted.kernels.flops, kernel_bytes_accessed=counted.kernels.bytes_accessed,
        unknown_kernels=counted.unknown_kernels)


def run(config: Any, topology: str, programs: tuple[str, ...] = tuple(PROGRAMS),
        costs: str = "loops", log=print) -> dict[str, Any]:
    """Compile `programs` of the run config `config` for `topology`; the report as a dict.
    `costs` (a key of COST_METHODS) says where the train step's FLOPs and bytes come from;
    the other programs' are always their own, loops counted."""
    rc = RunConfig.from_config(config)
    if rc.mode != "sdpo":
        raise ConfigError(f"config.mode={rc.mode!r}: the AOT report compiles Visual-SDPO's "
                          f"train step and rollout; give an sdpo config (e.g. configs/chart_8b.py)")
    if costs not in COST_METHODS:
        raise ValueError(f"--costs={costs!r}: use one of {list(COST_METHODS)}")
    generation, libtpu_name = libtpu_topology(topology)
    chip = CHIPS[generation]
    devices = compile_only_devices(libtpu_name)
    chips = len({tuple(d.coords) for d in devices})
    devices_per_chip = len(devices) // chips
    mesh = make_mesh(**dataclasses.asdict(rc.mesh), devices=devices)
    model_config = architecture(rc)
    log(f"{topology} = {libtpu_name}: {chips} chips, {len(devices)} devices, mesh "
        f"{dict(zip(mesh.axis_names, mesh.axis_sizes))}; {chip.hbm_gib} GiB HBM, "
        f"{chip.peak_bf16_tflops} bf16 TFLOP/s, {chip.hbm_gbps} GB/s per chip")
    reports = []
    for name in programs:
        alternative = train_step_costs(costs, rc, model_config, mesh) \
            if name == "train_step" else None
        reports.append(measure(name, PROGRAMS[name](rc, model_config, mesh), chip,
                               devices_per_chip, costs if alternative else "loops",
                               alternative))
        log(_row(reports[-1]))
        if reports[-1].kernel_flops or reports[-1].unknown_kernels:
            log(f"{'':>14}Pallas kernels (counted apart, hlo_costs.kernel_costs): "
                f"{reports[-1].kernel_flops:.3e} FLOP "
                f"{reports[-1].kernel_bytes_accessed / GIB:.1f} GiB; not counted: "
                f"{list(reports[-1].unknown_kernels) or 'none'}")
        for loop in reports[-1].loops[:_LOGGED_LOOPS]:
            log(f"{'':>14}{loop['roofline_s'] * 1e3:9.1f} ms  {loop['count']:2d} x "
                f"{loop['trips'] or '-':>3} trips  {loop['flops']:.3e} FLOP  "
                f"{loop['bytes_accessed'] / GIB:8.1f} GiB  {loop['op_name']}")
    result: dict[str, Any] = dict(
        topology=topology, libtpu_topology=libtpu_name, chips=chips, devices=len(devices),
        mesh=dict(zip(mesh.axis_names, mesh.axis_sizes)), costs=costs,
        programs={r.name: r.as_dict() for r in reports},
        fits=all(r.fits for r in reports))
    by_name = {r.name: r for r in reports}
    if "train_step" in by_name and by_name["train_step"].fits:
        step = by_name["train_step"]
        flops = model_flops(rc, model_config)
        slice_peak = chip.peak_bf16_tflops * 1e12 * chips
        result.update(model_flops=flops,
                      analytic_flops_with_remat=model_flops(rc, model_config, recompute=True),
                      train_step_s=step.roofline_s, mfu=flops / (step.roofline_s * slice_peak))
        log(f"train step: model FLOPs {flops:.3e} ({result['analytic_flops_with_remat']:.3e} "
            f"with remat; compiled {step.flops * len(devices):.3e} on the slice), roofline "
            f"{step.roofline_s:.2f} s, bound by {step.bound_by} "
            f"({COST_METHODS[step.cost_method]}), MFU {result['mfu']:.1%} (upper bound: no "
            f"collective time, no latency)")
    if {"rollout", "decode_step"} <= set(by_name):
        decode = by_name["decode_step"].roofline_s
        # The rollout decodes in a data-dependent while loop, counted once: its prefill and
        # one decode step; the rest of the budget is decode steps at full cache.
        extra = rc.rollout.max_new_tokens - 1 if by_name["rollout"].uncounted_loops else 0
        result.update(rollout_s=by_name["rollout"].roofline_s + extra * decode)
        log(f"rollout: about {result['rollout_s']:.1f} s (prefill + {rc.rollout.max_new_tokens} "
            f"decode steps of {decode * 1e3:.1f} ms at full cache)")
    return result


def _row(r: ProgramReport) -> str:
    return (f"{r.name:>12}: args {r.argument_bytes / GIB:7.2f} GiB  temp {r.temp_bytes / GIB:7.2f}"
            f"  out {r.output_bytes / GIB:6.2f}  aliased {r.alias_bytes / GIB:6.2f}  total "
            f"{r.total_bytes / GIB:7.2f} of {r.hbm_bytes / GIB:.1f} GiB  headroom "
            f"{r.headroom:6.1%}  {'fits' if r.fits else 'DOES NOT FIT'}  |  {r.flops:.3e} FLOP "
            f"{r.bytes_accessed / GIB:8.1f} GiB accessed  roofline {r.roofline_s * 1e3:9.2f} ms  "
            f"(XLA, loops once: {r.xla_flops:.3e} FLOP {r.xla_bytes_accessed / GIB:.1f} GiB)")


_CONFIG = config_flags.DEFINE_config_file("config", None, "ml_collections config (configs/*.py)")
_TOPOLOGY = flags.DEFINE_string("topology", None, "v5p-64, v6e-16, ... or libtpu's v5p:2x4x4")
_PROGRAMS = flags.DEFINE_list("programs", list(PROGRAMS), f"any of {list(PROGRAMS)}")
_COSTS = flags.DEFINE_enum("costs", "loops", list(COST_METHODS), "where the train step's FLOPs "
                          "and bytes come from: " + "; ".join(f"{k}: {v}" for k, v in
                                                              COST_METHODS.items()))


def main(argv) -> int:
    del argv
    jax.config.update("jax_platforms", "cpu")  # the host's own devices are never used
    unknown = sorted(set(_PROGRAMS.value) - set(PROGRAMS))
    if unknown:
        print(f"error: --programs {unknown}: use any of {list(PROGRAMS)}", file=sys.stderr)
        return 2
    try:
        result = run(_CONFIG.value, _TOPOLOGY.value, tuple(_PROGRAMS.value), _COSTS.value)
    except (TopologyError, ValueError) as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    print(json.dumps(result))
    return 0 if result["fits"] else 1


if __name__ == "__main__":
    flags.mark_flags_as_required(["config", "topology"])
    app.run(main)
