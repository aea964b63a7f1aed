"""One Visual-SDPO update as a single jitted, sharded function.

    student pass (gradient)   : policy(prompt + response)           -> hidden at response slots
    teacher pass (no gradient): teacher(prompt + feedback + response) -> hidden at response slots
    loss = credit-weighted distillation(teacher || student) + beta * GRPO   (fused, chunked)
    optax update (AdamW, warm-up + cosine, global-norm clipping, optional accumulation)
    EMA teacher refresh every `ema_every` optimizer steps (teacher_weights == "ema")

The teacher's weights are `live` (the current parameters, stop-gradient), `ema` (a moving
average kept in the train state) or `base` (the initial parameters, frozen). Parameters are
an `nnx.State` of `nnx.Param`s; everything here is a pure function of (state, batch), so the
same code runs on one CPU device, fake devices and a pod slice.
"""
from __future__ import annotations

import contextlib
import dataclasses
import functools
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
import optax
from flax import nnx, struct
from jax.sharding import Mesh, NamedSharding, PartitionSpec

from models.qwen3_vl.config import Qwen3VLConfig
from models.qwen3_vl.convert import abstract_model
from models.qwen3_vl.model import Qwen3VL
from models.qwen3_vl.vision_inputs import vision_shardings
from models.sharding import DEFAULT_RULES, Rules, logical_to_spec, state_shardings
from sdpo_jax.losses import LossBatch, LossConfig, sdpo_loss
from sdpo_jax.losses.cross_entropy import cross_entropy_loss
from sdpo_jax.multihost import allgather_arrays, process_block
from sdpo_jax.sequences import Sequences, Shapes

TEACHER_WEIGHTS = ("live", "ema", "base")


@dataclasses.dataclass(frozen=True)
class OptimConfig:
    """config.optim: AdamW with linear warm-up then cosine (or constant) decay.

    decay_steps: the index of the run's last optimizer update, which gets exactly
    learning_rate * end_lr_ratio; the run config derives it from train.num_steps.
    """

    learning_rate: float
    warmup_steps: int
    schedule: str  # cosine | constant
    end_lr_ratio: float
    weight_decay: float
    b1: float
    b2: float
    eps: float
    max_grad_norm: float
    grad_accum: int
    decay_steps: int

    def __post_init__(self):
        if self.schedule not in ("cosine", "constant"):
            raise ValueError(f"config.optim.schedule={self.schedule!r}: use 'cosine' or 'constant'")
        if not self.learning_rate > 0:
            raise ValueError(f"config.optim.learning_rate={self.learning_rate} must be > 0")
        for name in ("warmup_steps", "decay_steps", "grad_accum"):
            value = getattr(self, name)
            if not isinstance(value, int) or value < (1 if name == "grad_accum" else 0):
                raise ValueError(f"config.optim.{name}={value!r} must be an integer "
                                 f">= {1 if name == 'grad_accum' else 0}")
        if self.max_grad_norm <= 0:
            raise ValueError(f"config.optim.max_grad_norm={self.max_grad_norm} must be > 0")

    def schedule_fn(self) -> optax.Schedule:
        """Learning rate by optimizer update. Warm-up starts at lr / (warmup_steps + 1), so the
        very first update is never zero."""
        start = self.learning_rate / (self.warmup_steps + 1)
        if self.schedule == "constant":
            return optax.linear_schedule(start, self.learning_rate, max(self.warmup_steps, 1))
        return optax.warmup_cosine_decay_schedule(
            start, self.learning_rate, self.warmup_steps,
            max(self.decay_steps, self.warmup_steps + 1), self.learning_rate * self.end_lr_ratio)

    def optimizer(self) -> optax.GradientTransformation:
        tx = optax.chain(optax.clip_by_global_norm(self.max_grad_norm),
                         optax.adamw(self.schedule_fn(), b1=self.b1, b2=self.b2, eps=self.eps,
                                     weight_decay=self.weight_decay))
        return optax.MultiSteps(tx, every_k_schedule=self.grad_accum) if self.grad_accum > 1 else tx


@dataclasses.dataclass(frozen=True)
class StepConfig:
    """The static part of the train step (a jit cache key)."""

    loss: LossConfig
    teacher_weights: str
    ema_rate: float
    ema_every: int
    distill: bool  # False (GRPO-only ablation): no teacher pass at all

    def __post_init__(self):
        if self.teacher_weights not in TEACHER_WEIGHTS:
            raise ValueError(f"config.teacher.weights={self.teacher_weights!r}: use one of "
                             f"{TEACHER_WEIGHTS}")
        if not 0.0 < self.ema_rate <= 1.0:
            raise ValueError(f"config.teacher.ema_rate={self.ema_rate} must be in (0, 1]")
        if self.ema_every < 1:
            raise ValueError(f"config.teacher.ema_every={self.ema_every} must be >= 1")


class TrainState(struct.PyTreeNode):
    """Everything on device that a checkpoint must hold."""

    step: jax.Array  # optimizer updates applied (micro-steps with accumulation)
    params: nnx.State
    opt_state: Any
    teacher_params: nnx.State | None  # ema / base teacher; None for a live teacher


def _build_state(params: nnx.State, optim: OptimConfig, teacher_weights: str) -> TrainState:
    teacher = None if teacher_weights == "live" else jax.tree.map(jnp.copy, params)
    return TrainState(step=jnp.zeros((), jnp.int32), params=params,
                      opt_state=optim.optimizer().init(params), teacher_params=teacher)


def _abstract_state(params: nnx.State, optim: OptimConfig, teacher_weights: str) -> TrainState:
    return jax.eval_shape(functools.partial(_build_state, optim=optim,
                                            teacher_weights=teacher_weights), params)


def train_state_shardings(abstract: TrainState, param_shardings: nnx.State) -> TrainState:
    """Where every array of the train state lives: each optimizer moment (and the EMA / base
    teacher copy) exactly like its parameter, scalars (step, optimizer counts) replicated.

    Without these as the build's output shardings the compiler replicates the zero-initialised
    moments on every device (Adam's two moments are 2x the fp32 parameters)."""
    params_def = jax.tree.structure(param_shardings)
    any_sharding = jax.tree.leaves(param_shardings)[0]
    replicated = NamedSharding(any_sharding.mesh, PartitionSpec()) \
        if isinstance(any_sharding, NamedSharding) else any_sharding

    def like_params(subtree: Any) -> Any:
        if jax.tree.structure(subtree) == params_def:
            return param_shardings
        return jax.tree.map(lambda _: replicated, subtree)

    return jax.tree.map(like_params, abstract,
                        is_leaf=lambda x: jax.tree.structure(x) == params_def)


def init_train_state(model: Qwen3VL, optim: OptimConfig, teacher_weights: str
                     ) -> tuple[nnx.GraphDef, TrainState]:
    """Split the (already placed) model; optimizer and teacher state are built on its shardings."""
    graphdef, params = nnx.split(model, nnx.Param)
    shardings = train_state_shardings(_abstract_state(params, optim, teacher_weights),
                                      shardings_of(params))
    build = functools.partial(_build_state, optim=optim, teacher_weights=teacher_weights)
    return graphdef, jax.jit(build, out_shardings=shardings)(params)


def abstract_train_state(config: Qwen3VLConfig, mesh: Mesh, optim: OptimConfig,
                         teacher_weights: str) -> tuple[nnx.GraphDef, TrainState]:
    """The train state `init_train_state` would build on `mesh`, as ShapeDtypeStructs carrying
    their shardings: nothing is allocated (ahead-of-time compilation, sdpo_jax.aot)."""
    graphdef, params = nnx.split(abstract_model(config), nnx.Param)
    abstract = _abstract_state(params, optim, teacher_weights)
    shardings = train_state_shardings(
        abstract, state_shardings(params, mesh, config.sharding_rules))
    return graphdef, jax.tree.map(
        lambda x, sharding: jax.ShapeDtypeStruct(x.shape, x.dtype, sharding=sharding),
        abstract, shardings)


def shardings_of(tree: Any) -> Any:
    """The sharding of every array of a placed pytree (the train step keeps state where it is)."""
    return jax.tree.map(lambda x: x.sharding, tree)


def _response_hidden(model: Qwen3VL, seq: Sequences) -> jax.Array:
    """Final hidden states at the slots that predict the response tokens: [N, R, D]."""
    hidden = model.hidden_states(seq.input_ids, seq.positions, seq.mask, seq.vision)
    start = seq.prompt_length - 1
    return jax.lax.dynamic_slice_in_dim(hidden, start, seq.response_length, axis=1)


def loss_and_grads(graphdef: nnx.GraphDef, params: nnx.State, teacher_params: nnx.State,
                   student: Sequences, teacher: Sequences, batch: LossBatch, loss: LossConfig,
                   distill: bool = True) -> tuple[jax.Array, dict[str, jax.Array], nnx.State]:
    """(loss, metrics, d loss / d params): the teacher pass runs once, outside the gradient.

    Without `distill` (every row's distill_mask is 0) the teacher pass is skipped: the student
    stands in for the teacher, so the masked divergence is zero and costs no forward pass."""
    if distill:
        teacher_model = nnx.merge(graphdef, jax.lax.stop_gradient(teacher_params))
        teacher_hidden = jax.lax.stop_gradient(_response_hidden(teacher_model, teacher))
        teacher_head = jax.lax.stop_gradient(teacher_model.lm_head_matrix())

    def loss_fn(params):
        model = nnx.merge(graphdef, params)
        student_hidden, head = _response_hidden(model, student), model.lm_head_matrix()
        if not distill:
            return sdpo_loss(student_hidden, student_hidden, head, batch, loss)
        return sdpo_loss(student_hidden, teacher_hidden, head, batch, loss,
                         teacher_lm_head=teacher_head)

    (value, metrics), grads = jax.value_and_grad(loss_fn, has_aux=True)(params)
    return value, metrics, grads


def apply_gradients(state: TrainState, loss: jax.Array, metrics: dict[str, jax.Array],
                    grads: nnx.State, optim: OptimConfig, config: StepConfig | None = None
                    ) -> tuple[TrainState, dict[str, jax.Array]]:
    """One optimizer update (and the EMA teacher's refresh under `config`), with its metrics."""
    tx = optim.optimizer()
    updates, opt_state = tx.update(grads, state.opt_state, state.params)
    params = optax.apply_updates(state.params, updates)
    step = state.step + 1
    new_teacher = state.teacher_params
    if config is not None and config.teacher_weights == "ema":
        refresh = (step % config.ema_every) == 0
        rate = jnp.where(refresh, config.ema_rate, 0.0)
        new_teacher = jax.tree.map(lambda t, p: (1 - rate) * t + rate * p.astype(t.dtype),
                                   state.teacher_params, params)
    metrics = dict(metrics, **{"loss/total": loss, "optim/grad_norm": optax.global_norm(grads),
                               "optim/update_norm": optax.global_norm(updates),
                               "optim/learning_rate": optim.schedule_fn()(
                                   state.step // optim.grad_accum)})
    return state.replace(step=step, params=params, opt_state=opt_state,
                         teacher_params=new_teacher), metrics


def train_step(graphdef: nnx.GraphDef, state: TrainState, student: Sequences, teacher: Sequences,
               batch: LossBatch, *, config: StepConfig, optim: OptimConfig
               ) -> tuple[TrainState, dict[str, jax.Array]]:
    """Un-jitted body; `make_train_step` jits it (donating the state)."""
    teacher_params = state.params if state.teacher_params is None else state.teacher_params
    loss, metrics, grads = loss_and_grads(graphdef, state.params, teacher_params, student,
                                          teacher, batch, config.loss, config.distill)
    return apply_gradients(state, loss, metrics, grads, optim, config)


@struct.dataclass
class SupervisedBatch:
    """Supervised warm-start inputs: whole examples packed into rows (segment ids), the token
    each position predicts, and the mask of the response tokens among them."""

    sequences: Sequences
    targets: jax.Array
    mask: jax.Array


def supervised_step(graphdef: nnx.GraphDef, state: TrainState, batch: SupervisedBatch, *,
                    chunk_size: int, optim: OptimConfig) -> tuple[TrainState, dict[str, jax.Array]]:
    """Token cross-entropy on the packed examples' responses, then the update."""
    def loss_fn(params):
        model = nnx.merge(graphdef, params)
        seq = batch.sequences
        hidden = model.hidden_states(seq.input_ids, seq.positions, seq.mask, seq.vision,
                                     seq.segment_ids)
        return cross_entropy_loss(hidden, model.lm_head_matrix(), batch.targets, batch.mask,
                                  chunk_size=chunk_size)

    (loss, metrics), grads = jax.value_and_grad(loss_fn, has_aux=True)(state.params)
    return apply_gradients(state, loss, metrics, grads, optim)


def input_shardings(mesh: Mesh, rules: Rules, *inputs: Any) -> tuple[Any, ...]:
    """The step's inputs placed by rows over the batch axes ("act_batch"), images over the same
    axes ("act_images"): Sequences field by field, anything else leaf by leaf along its first
    axis; works on arrays and on ShapeDtypeStructs alike."""
    def rows(x: Any, row_axis: int = 0) -> NamedSharding:
        names = [None] * len(x.shape)
        names[row_axis] = "act_batch"
        return NamedSharding(mesh, logical_to_spec(names, rules, _mesh_sizes(mesh), x.shape))

    def place(node: Any) -> Any:
        if not isinstance(node, Sequences):
            return rows(node)
        vision = None if node.vision is None else vision_shardings(node.vision, mesh, rules)
        segments = None if node.segment_ids is None else rows(node.segment_ids)
        return node.replace(input_ids=rows(node.input_ids), positions=rows(node.positions, 1),
                            mask=rows(node.mask), vision=vision, segment_ids=segments)

    return jax.tree.map(place, inputs, is_leaf=lambda x: isinstance(x, Sequences))


def _mesh_sizes(mesh: Mesh) -> dict[str, int]:
    return dict(zip(mesh.axis_names, mesh.axis_sizes))


@dataclasses.dataclass(frozen=True)
class InputLayout:
    """The step's global inputs as ShapeDtypeStructs carrying their shardings, fixed by the
    config for the whole run (one pytree, one set of shapes: one compilation), and the part of
    them this process builds.

    A host builds the rows its devices hold (`rows`) and the image slots they hold (`slots`);
    `place` makes the global arrays from those process-local numpy arrays
    (`jax.make_array_from_process_local_data`) after checking them against the layout, so a
    batch that would compile another program is an error instead. The one table every host
    needs whole is `VisionInputs.token_rows` (the model counts visual tokens row-major over the
    whole batch, like transformers' masked_scatter): hosts exchange their visual tokens' feature
    rows (4 bytes a token), never pixels."""

    abstract: tuple[Any, ...]

    @classmethod
    def on_mesh(cls, mesh: Mesh, rules: Rules, *inputs: Any) -> "InputLayout":
        """The layout of abstract global `inputs` placed by `input_shardings`."""
        return cls(jax.tree.map(lambda x, sharding: jax.ShapeDtypeStruct(x.shape, x.dtype,
                                                                         sharding=sharding),
                                inputs, input_shardings(mesh, rules, *inputs)))

    @property
    def rows(self) -> slice:
        """The global rows this process builds."""
        ids = self.abstract[0].input_ids
        return process_block(ids.sharding, ids.shape)

    def slots(self, index: int) -> slice:
        """The image slots of the `index`-th input (a Sequences) this process fills."""
        vision = self.abstract[index].vision
        if vision is None:
            return slice(0, 0)
        return process_block(vision.pixel_values.sharding, vision.pixel_values.shape)

    def local_shapes(self, shapes: Shapes) -> tuple[Shapes, tuple[int, int]]:
        """`shapes` with this process's image slot counts of the student (input 0) and teacher
        (input 1) passes, and where those slots start among the global ones."""
        student, teacher = self.slots(0), self.slots(1)
        local = dataclasses.replace(shapes, student_images=student.stop - student.start,
                                    teacher_images=teacher.stop - teacher.start)
        return local, (student.start, teacher.start)

    def place(self, *local: Any) -> tuple[Any, ...]:
        """Global arrays from this process's part of every input (see the class docstring)."""
        if jax.tree.structure(local) != jax.tree.structure(self.abstract):
            raise ValueError(f"the batch's pytree {jax.tree.structure(local)} is not the run's "
                             f"{jax.tree.structure(self.abstract)}: it would compile another "
                             f"train step")
        local = tuple(self._whole_token_table(x, a) if isinstance(x, Sequences) else x
                      for x, a in zip(local, self.abstract))
        paths = jax.tree_util.tree_flatten_with_path(local)[0]
        out = []
        for (path, x), spec in zip(paths, jax.tree.leaves(self.abstract)):
            x = np.asarray(x)
            expected = _process_shape(spec)
            if x.shape != expected or x.dtype != spec.dtype:
                raise ValueError(f"input {jax.tree_util.keystr(path)}: {x.dtype}{list(x.shape)} "
                                 f"on this process, the run's layout needs "
                                 f"{np.dtype(spec.dtype)}{list(expected)} (of {list(spec.shape)})")
            out.append(jax.make_array_from_process_local_data(spec.sharding, x, spec.shape))
        return jax.tree.unflatten(jax.tree.structure(self.abstract), out)

    def _whole_token_table(self, local: Sequences, abstract: Sequences) -> Sequences:
        """`local` with the global `token_rows`: every host's visual tokens, in row order."""
        vision = local.vision
        if vision is None:
            return local
        count = int(vision.num_image_tokens)
        starts = np.concatenate(allgather_arrays(np.array([self.rows.start], np.int64)))
        parts = allgather_arrays(np.asarray(vision.token_rows[:count], np.int32))
        table = np.concatenate([parts[i] for i in np.argsort(starts, kind="stable")])
        total = abstract.vision.token_rows.shape[0]
        if len(table) > total:
            raise ValueError(f"{len(table)} visual tokens exceed the layout's {total}")
        rows = np.zeros(total, np.int32)
        rows[:len(table)] = table
        return local.replace(vision=vision.replace(
            token_rows=rows, num_image_tokens=np.asarray(len(table), np.int32)))


def _process_shape(spec: jax.ShapeDtypeStruct) -> tuple[int, ...]:
    """The shape of this process's part of a global array (its blocks along every axis)."""
    if not spec.shape:
        return ()
    return tuple(len(range(*process_block(spec.sharding, spec.shape, axis).indices(size)))
                 for axis, size in enumerate(spec.shape))


@dataclasses.dataclass(frozen=True)
class TrainStep:
    """The jitted step (state donated and kept on its shardings) run under the mesh, so the
    model's activation constraints bind; inputs are placed by `input_shardings` first."""

    jitted: Any
    mesh: Mesh | None
    rules: Rules

    def _active(self) -> contextlib.AbstractContextManager:
        return contextlib.nullcontext() if self.mesh is None else jax.set_mesh(self.mesh)

    def place(self, *inputs: Any) -> tuple[Any, ...]:
        if self.mesh is None:
            return inputs
        return jax.device_put(inputs, input_shardings(self.mesh, self.rules, *inputs))

    def __call__(self, state: TrainState, *inputs: Any) -> tuple[TrainState, dict[str, jax.Array]]:
        with self._active():
            return self.jitted(state, *self.place(*inputs))

    def lower(self, state: Any, *inputs: Any) -> jax.stages.Lowered:
        """Lower for abstract inputs that carry their shardings (sdpo_jax.aot)."""
        with self._active():
            return self.jitted.lower(state, *inputs)


def make_train_step(graphdef: nnx.GraphDef, config: StepConfig, optim: OptimConfig,
                    state_shardings: Any = None, mesh: Mesh | None = None,
                    rules: Rules = DEFAULT_RULES) -> TrainStep:
    """jit(train_step) with the state donated (and kept on `state_shardings` when given), run
    under `mesh` with its inputs sharded by `rules` (the model config's sharding_rules)."""
    body = functools.partial(train_step, graphdef, config=config, optim=optim)
    return _jitted_step(body, state_shardings, mesh, rules)


def make_supervised_step(graphdef: nnx.GraphDef, chunk_size: int, optim: OptimConfig,
                         state_shardings: Any = None, mesh: Mesh | None = None,
                         rules: Rules = DEFAULT_RULES) -> TrainStep:
    """jit(supervised_step), placed and run like `make_train_step`'s."""
    body = functools.partial(supervised_step, graphdef, chunk_size=chunk_size, optim=optim)
    return _jitted_step(body, state_shardings, mesh, rules)


def _jitted_step(body: Any, state_shardings: Any, mesh: Mesh | None, rules: Rules) -> TrainStep:
    out_shardings = None if state_shardings is None else (state_shardings, None)
    return TrainStep(jax.jit(body, donate_argnums=(0,), out_shardings=out_shardings), mesh, rules)

