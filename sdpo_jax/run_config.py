"""The one reader of a run's ml_collections config: every section read and validated up front.

The config file (configs/default.py, and the files that build on it) is the single source of
values: every key of every section is required, and an unknown key, a key that would do nothing,
a value of the wrong type or a broken cross-field rule stops the run before any model is built,
with a message that names the key (`config.rollout.group_size`) and the fix. Sections keep their
shape: each is a typed dataclass read by `read_section`, the one helper for all of them. Derived
values have one derivation each: the loss temperature is the rollout's, the learning-rate decay
spans `train.num_steps`.
"""
from __future__ import annotations

import dataclasses
import math
import types
import typing
from collections.abc import Mapping
from typing import Any

from envs.registry import DOMAINS, FORMATS
from sdpo_jax.credit import CreditConfig
from sdpo_jax.data import Source
from sdpo_jax.evaluation import EvalConfig
from sdpo_jax.losses import LossConfig
from sdpo_jax.sampler import SamplerConfig
from sdpo_jax.sampling import Sampling
from sdpo_jax.sequences import Shapes
from sdpo_jax.sft import SftConfig
from sdpo_jax.teacher_context import TeacherContextConfig
from sdpo_jax.train_step import OptimConfig, StepConfig

MODES = ("sdpo", "sft")
COMMON_SECTIONS = ("seed", "mode", "model", "mesh", "data", "env", "context", "optim", "train",
                   "eval")
# What each mode adds: Visual-SDPO's rollouts, credit, teacher and loss; the warm start's sft.
MODE_SECTIONS = {"sdpo": ("rollout", "credit", "teacher", "loss"), "sft": ("sft",)}


def image_patches(max_pixels: int, model_config) -> int:
    """Patch rows of the largest image `max_pixels` allows (a whole number of merge blocks)."""
    v = model_config.vision
    return math.ceil(max_pixels / v.patch_size ** 2 / v.merge_unit) * v.merge_unit


class ConfigError(ValueError):
    """A config key is missing, unknown or invalid; the message names it and the fix."""


@dataclasses.dataclass(frozen=True)
class ModelSection:
    """A size from configs/model_sizes.py (random weights) or a local checkpoint folder."""

    size: str
    checkpoint: str
    tokenizer: str  # "qwen3", a bundled sentencepiece model ("synthetic_charts"), or a .model path
    param_dtype: str
    dtype: str
    scan_layers: bool
    remat: str
    attention_query_chunk: int  # queries per attention chunk; 0: all at once
    attention_impl: str  # text attention without a cache: "xla", or "splash" (Pallas, on TPU)
    overrides: dict  # {"text_config": {...}, "vision_config": {...}} on top of `size`


@dataclasses.dataclass(frozen=True)
class MeshSection:
    """Mesh axis sizes; -1 takes the remaining devices."""

    data: int
    fsdp: int
    tensor: int


@dataclasses.dataclass(frozen=True)
class DataSection:
    sources: tuple[Source, ...]
    target_images: bool  # show the student the reference's render (domains that render one)
    image_max_pixels: int  # images are resized below this (tokens = pixels / 1024)
    image_min_pixels: int


@dataclasses.dataclass(frozen=True)
class RolloutSection:
    prompts_per_step: int
    group_size: int  # G rollouts per prompt: the GRPO group and the sampler's samples per prompt
    max_new_tokens: int
    max_prompt_tokens: int
    temperature: float  # 0: greedy
    top_k: int
    top_p: float
    max_off_policy_lag: int  # 1: sample batch k+1 while batch k renders; 0: strictly on-policy

    @property
    def rows(self) -> int:
        return self.prompts_per_step * self.group_size


@dataclasses.dataclass(frozen=True)
class EnvSection:
    num_workers: int
    timeout_s: float
    domains: dict  # domain -> its env's settings (config.env.<domain>), read by the env itself


@dataclasses.dataclass(frozen=True)
class TeacherSection:
    weights: str  # live | ema | base
    ema_rate: float
    ema_every: int
    distill: bool  # False: the GRPO-only ablation (no teacher pass, no distillation term)
    failed_exec_path: bool  # failed rollouts keep their distillation term (the error is context)


@dataclasses.dataclass(frozen=True)
class EvalSection(EvalConfig):
    """config.eval: every `every` steps (0: never) the policy is evaluated on the first `count`
    tasks of the source `path` in `format` (sdpo_jax.evaluation)."""

    every: int
    path: str
    format: str
    count: int

    @property
    def source(self) -> Source:
        return Source(self.path, self.format, 1.0)


@dataclasses.dataclass(frozen=True)
class TrainSection:
    num_steps: int
    checkpoint_every: int
    keep_checkpoints: int
    plot_every: int


@dataclasses.dataclass(frozen=True)
class RunConfig:
    """A run: the common sections, and those of its mode (the others are None)."""

    seed: int
    mode: str
    model: ModelSection
    mesh: MeshSection
    data: DataSection
    env: EnvSection
    context: TeacherContextConfig
    optim: OptimConfig
    train: TrainSection
    eval: EvalSection
    rollout: RolloutSection | None = None
    credit: CreditConfig | None = None
    teacher: TeacherSection | None = None
    loss: LossConfig | None = None
    sft: SftConfig | None = None

    @property
    def sampler(self) -> SamplerConfig:
        r = self.rollout
        return SamplerConfig(group_size=r.group_size, max_new_tokens=r.max_new_tokens,
                             sampling=Sampling(r.temperature, r.top_k, r.top_p),
                             prompt_bucket=r.max_prompt_tokens)

    @property
    def step(self) -> StepConfig:
        t = self.teacher
        return StepConfig(loss=self.loss, teacher_weights=t.weights, ema_rate=t.ema_rate,
                          ema_every=t.ema_every, distill=t.distill)

    def shapes(self, model_config) -> Shapes:
        """Static shapes: an image needs at most image_max_pixels / patch^2 patch rows; the
        student sees one target image per prompt (domains that render a reference), the teacher
        that one plus each row's render."""
        rows = self.rollout.rows
        targets = self.rollout.prompts_per_step if self.shows_targets else 0
        return Shapes(response_length=self.rollout.max_new_tokens,
                      student_prompt_length=self.rollout.max_prompt_tokens,
                      teacher_prompt_length=self.context.max_prompt_tokens,
                      slot_patches=image_patches(self.data.image_max_pixels, model_config),
                      student_images=targets, teacher_images=targets + rows)

    @property
    def shows_targets(self) -> bool:
        """Whether student prompts carry the reference's render (config.data.target_images, for
        sources whose domain renders one)."""
        return self.data.target_images and any(
            DOMAINS[FORMATS[s.format].domain].renders_reference for s in self.data.sources)

    def sampler_for(self, model_config) -> SamplerConfig:
        """The sampler config with its image slots sized for the largest allowed image, so
        images of any allowed size share one compiled rollout program."""
        return dataclasses.replace(
            self.sampler, patch_bucket=image_patches(self.data.image_max_pixels, model_config))

    @classmethod
    def from_config(cls, config: Any) -> "RunConfig":
        if not isinstance(config, Mapping) and not hasattr(config, "items"):
            raise ConfigError(f"the config must be an ml_collections.ConfigDict, got "
                              f"{type(config).__name__}")
        mode = config.get("mode") if hasattr(config, "get") else None
        if mode not in MODES:
            raise ConfigError(f"config.mode={mode!r}: use one of {MODES} (configs/default.py is "
                              f"'sdpo', configs/sft_toy.py 'sft')")
        sections = COMMON_SECTIONS + MODE_SECTIONS[mode]
        unknown = sorted(set(config.keys()) - set(sections))
        if unknown:
            raise ConfigError(f"config key(s) {unknown} are not read in mode {mode!r}; its "
                              f"sections: {list(sections)}")
        missing = [name for name in sections if name not in config]
        if missing:
            raise ConfigError(f"config.{missing[0]} is missing; every section of mode {mode!r} is "
                              f"required (configs/default.py has them all)")
        train = read_section(TrainSection, config["train"], "train")
        optim_raw = _items(config["optim"], "optim")
        common = dict(
            seed=_typed("seed", config["seed"], int), mode=mode,
            model=read_section(ModelSection, config["model"], "model"),
            mesh=read_section(MeshSection, config["mesh"], "mesh"),
            data=_data_section(config["data"]), env=_env_section(config["env"]),
            context=read_section(TeacherContextConfig, config["context"], "context"),
            optim=read_section(OptimConfig, optim_raw, "optim",
                               derived={"decay_steps": "config.train.num_steps"},
                               decay_steps=_decay_steps(train, optim_raw)),
            train=train, eval=read_section(EvalSection, config["eval"], "eval"))
        if mode == "sft":
            run = cls(**common, sft=read_section(SftConfig, config["sft"], "sft"))
        else:
            rollout = read_section(RolloutSection, config["rollout"], "rollout")
            run = cls(**common, rollout=rollout,
                      credit=read_section(CreditConfig, config["credit"], "credit"),
                      teacher=read_section(TeacherSection, config["teacher"], "teacher"),
                      loss=read_section(LossConfig, config["loss"], "loss",
                                        derived={"temperature": "config.rollout.temperature"},
                                        temperature=rollout.temperature or 1.0))
        run.check()
        return run

    def check(self) -> None:
        """Rules that span fields; each names the keys to change."""
        e = self.eval
        rules = [
            (self.data.image_min_pixels > self.data.image_max_pixels,
             "config.data.image_min_pixels must not exceed config.data.image_max_pixels"),
            (e.format not in FORMATS,
             f"config.eval.format={e.format!r}: use one of {sorted(FORMATS)}"),
            (e.max_prompt_tokens > self.context.max_prompt_tokens,
             f"config.eval.max_prompt_tokens={e.max_prompt_tokens} exceeds "
             f"config.context.max_prompt_tokens={self.context.max_prompt_tokens}: a revision "
             f"prompt holds the plain one and more"),
        ]
        if self.mode == "sdpo":
            rules += self._sdpo_rules()
        for broken, message in rules:
            if broken:
                raise ConfigError(message)
        if self.mode == "sdpo":
            for section, derived in (("rollout", "sampler"), ("teacher", "step")):
                try:
                    getattr(self, derived)  # the sampler's and the step's own checks
                except ValueError as err:
                    raise ConfigError(f"config.{section}: {err}") from err

    def _sdpo_rules(self) -> list[tuple[bool, str]]:
        r, loss, t = self.rollout, self.loss, self.teacher
        return [
            (loss.uses_grpo and r.group_size < 2,
             f"config.rollout.group_size={r.group_size} with config.loss.beta={loss.beta}: GRPO "
             f"needs groups of at least 2 rollouts per prompt"),
            (not t.distill and not loss.uses_grpo,
             "config.teacher.distill=False with config.loss.beta=0 leaves no loss at all; set "
             "beta > 0 (GRPO only) or distill=True"),
            (loss.ref_kl_coef > 0,
             "config.loss.ref_kl_coef > 0 needs reference log-probs, which the trainer does not "
             "compute; set it to 0 (the teacher term already anchors the policy)"),
            (loss.advantage == "given",
             "config.loss.advantage='given' expects advantages from the caller; the trainer "
             "computes them from rewards: use 'mean_std' or 'mean'"),
            (r.max_off_policy_lag > 1,
             f"config.rollout.max_off_policy_lag={r.max_off_policy_lag}: the loop overlaps one "
             f"batch at most; use 0 or 1"),
            (self.context.max_prompt_tokens < r.max_prompt_tokens,
             f"config.context.max_prompt_tokens={self.context.max_prompt_tokens} is below "
             f"config.rollout.max_prompt_tokens={r.max_prompt_tokens}: the teacher's prompt "
             f"holds the student's and more; raise it"),
        ]


def read_section(cls: type, raw: Any, where: str, *, derived: Mapping[str, str] | None = None,
                 **values: Any) -> Any:
    """config.<where> as dataclass `cls`: every field required except those in `values` (derived
    elsewhere; `derived` names where, for the error a user who sets one gets), unknown keys
    refused, scalar types checked, nested dataclass fields read recursively, and the
    dataclass's own validation errors reported as ConfigErrors naming the section."""
    items = _items(raw, where)
    hints = typing.get_type_hints(cls)
    fields = [f.name for f in dataclasses.fields(cls) if f.init and f.name not in values]
    for key in sorted(set(items) - set(fields)):
        if derived and key in derived:
            raise ConfigError(f"config.{where}.{key} is not a setting: it is derived from "
                              f"{derived[key]}; remove it")
        raise ConfigError(f"unknown key config.{where}.{key}; known: {sorted(fields)}")
    for key in fields:
        if key not in items:
            raise ConfigError(f"config.{where}.{key} is missing: every key is required (see "
                              f"configs/default.py for its meaning and default)")
        hint = hints[key]
        if dataclasses.is_dataclass(hint):
            values[key] = read_section(hint, items[key], f"{where}.{key}")
        else:
            values[key] = _typed(f"{where}.{key}", items[key], hint)
    try:
        return cls(**values)
    except (ValueError, TypeError) as err:
        raise ConfigError(f"config.{where}: {err}") from err


def _items(raw: Any, where: str) -> dict[str, Any]:
    if not hasattr(raw, "items"):
        raise ConfigError(f"config.{where} must be a section (a ConfigDict / dict), got "
                          f"{type(raw).__name__}")
    return dict(raw.items())


def _typed(where: str, value: Any, hint: Any) -> Any:
    """`value` checked against a scalar type hint (int, float, bool, str, their Optional);
    containers are converted (tuple, dict) and checked by their section's own reader."""
    options = typing.get_args(hint) if isinstance(hint, types.UnionType) else (hint,)
    if value is None and type(None) in options:
        return None
    for option in options:
        if option is bool and isinstance(value, bool):
            return value
        if option is int and isinstance(value, int) and not isinstance(value, bool):
            return value
        if option is float and isinstance(value, (int, float)) and not isinstance(value, bool):
            return float(value)
        if option is str and isinstance(value, str):
            return value
        if option is dict and hasattr(value, "items"):
            return _plain(value)
        if typing.get_origin(option) is tuple and isinstance(value, (list, tuple)):
            return tuple(value)
    names = " or ".join(getattr(o, "__name__", str(o)) for o in options)
    raise ConfigError(f"config.{where}={value!r} must be {names}")


def _plain(value: Any) -> Any:
    """Nested ConfigDicts / mappings as plain dicts (they travel to env worker processes)."""
    if hasattr(value, "items"):
        return {k: _plain(v) for k, v in value.items()}
    return list(map(_plain, value)) if isinstance(value, (list, tuple)) else value


def _data_section(raw: Any) -> DataSection:
    items = _items(raw, "data")
    sources = items.get("sources")
    if not isinstance(sources, (list, tuple)) or not sources:
        raise ConfigError("config.data.sources must list at least one {path, format, weight} "
                          "(e.g. chartmimic_direct_v1.jsonl in the data folder)")
    read = []
    for i, src in enumerate(sources):
        source = read_section(Source, src, f"data.sources[{i}]")
        if source.format not in FORMATS:
            raise ConfigError(f"config.data.sources[{i}].format={source.format!r}: use one of "
                              f"{sorted(FORMATS)}")
        read.append(source)
    return read_section(DataSection, {**items, "sources": tuple(read)}, "data")


def _env_section(raw: Any) -> EnvSection:
    """config.env: num_workers, timeout_s, and one settings dict per domain of envs.registry."""
    items = _items(raw, "env")
    domains = {name: items.pop(name) for name in list(items) if name in DOMAINS}
    missing = sorted(set(DOMAINS) - set(domains))
    if missing:
        raise ConfigError(f"config.env.{missing[0]} is missing: give every domain's env settings "
                          f"(an empty dict keeps the env's own defaults)")
    for name, settings in domains.items():
        if not hasattr(settings, "items"):
            raise ConfigError(f"config.env.{name} must be a dict of {name} env settings")
    return read_section(EnvSection, {**items, "domains": domains}, "env")


def _decay_steps(train: TrainSection, optim: Mapping[str, Any]) -> int:
    """The index of the run's last optimizer update (train.num_steps micro-steps of grad_accum
    each), which the schedule gives exactly end_lr_ratio."""
    accumulation = optim.get("grad_accum", 1)
    if isinstance(accumulation, bool) or not isinstance(accumulation, int) or accumulation < 1:
        accumulation = 1  # a bad grad_accum is reported by the optim section itself
    return max(1, train.num_steps // accumulation - 1)
