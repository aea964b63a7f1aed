"""The one reader of a run's ml_collections config: every section validated up front.

A wrong key or value stops the run before any model is built, with a message that names the
field (`config.rollout.group_size`) and the fix. Sections map onto the typed configs of the
parts: LossConfig (losses), CreditConfig (credit), SamplerConfig (sampler), OptimConfig and
StepConfig (train step), TeacherPromptConfig (teacher prompt); the env section is handed to the
env workers as plain dicts.
"""
from __future__ import annotations

import dataclasses
import math
from typing import Any

from sdpo_jax.credit import CreditConfig
from envs.registry import DOMAINS, FORMATS
from sdpo_jax.data import Source
from sdpo_jax.losses import LossConfig
from sdpo_jax.rollout_batch import Shapes
from sdpo_jax.sampler import SamplerConfig
from sdpo_jax.sampling import Sampling
from sdpo_jax.teacher_prompt import TeacherPromptConfig
from sdpo_jax.train_step import OptimConfig, StepConfig, optim_from_mapping

SECTIONS = ("seed", "model", "mesh", "data", "rollout", "env", "credit", "teacher", "loss",
            "optim", "train")


class ConfigError(ValueError):
    """A config field is missing or invalid; the message names it and the fix."""


def _section(config: Any, name: str, keys: dict[str, Any]) -> dict[str, Any]:
    """config.<name> as a dict with defaults from `keys`; unknown keys are refused."""
    raw = config.get(name) if hasattr(config, "get") else None
    raw = {} if raw is None else dict(raw.items())
    unknown = sorted(set(raw) - set(keys))
    if unknown:
        raise ConfigError(f"unknown key(s) config.{name}.{unknown[0]}"
                          f"{' (+ ' + str(len(unknown) - 1) + ' more)' if len(unknown) > 1 else ''}; "
                          f"known: {sorted(keys)}")
    return {**keys, **raw}


def _int(where: str, value: Any, low: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < low:
        raise ConfigError(f"{where}={value!r} must be an integer >= {low}")
    return value


@dataclasses.dataclass(frozen=True)
class RunConfig:
    seed: int
    model: dict[str, Any]
    mesh: dict[str, int]
    sources: tuple[Source, ...]
    image_max_pixels: int
    image_min_pixels: int
    prompts_per_step: int
    sampler: SamplerConfig
    max_prompt_tokens: int
    max_off_policy_lag: int
    env_workers: int
    env_timeout_s: float
    env_config: dict[str, dict[str, Any]]
    credit: CreditConfig
    teacher_prompt: TeacherPromptConfig
    teacher_max_prompt_tokens: int
    failed_exec_path: bool
    distill: bool  # False: the GRPO-only ablation (no distillation term)
    step: StepConfig
    optim: OptimConfig
    num_steps: int
    checkpoint_every: int
    keep_checkpoints: int
    plot_every: int

    def shapes(self, model_config) -> Shapes:
        """Static shapes: a target image needs at most image_max_pixels / patch^2 patch rows."""
        v = model_config.vision
        per_image = math.ceil(self.image_max_pixels / v.patch_size ** 2 / v.merge_unit) * v.merge_unit
        rows = self.sampler.num_samples * self.prompts_per_step
        return Shapes(response_length=self.sampler.max_new_tokens,
                      student_prompt_length=self.max_prompt_tokens,
                      teacher_prompt_length=self.teacher_max_prompt_tokens,
                      student_patches=rows * per_image, teacher_patches=2 * rows * per_image)

    @classmethod
    def from_config(cls, config: Any) -> "RunConfig":
        unknown = sorted(set(config.keys()) - set(SECTIONS))
        if unknown:
            raise ConfigError(f"unknown top-level config key(s) {unknown}; known: {list(SECTIONS)}")
        seed = _int("config.seed", config.get("seed", 0), 0)
        model = _section(config, "model", dict(size="tiny", checkpoint="", param_dtype="float32",
                                               dtype="float32", scan_layers=False, remat="none",
                                               overrides={}))
        model["overrides"] = {k: dict(v) for k, v in dict(model["overrides"]).items()}
        mesh = _section(config, "mesh", dict(data=-1, fsdp=1, tensor=1))
        data = _section(config, "data", dict(sources=[], image_max_pixels=128 * 128,
                                             image_min_pixels=64 * 64))
        rollout = _section(config, "rollout", dict(
            prompts_per_step=2, group_size=4, max_new_tokens=64, max_prompt_tokens=256,
            temperature=1.0, top_k=0, top_p=1.0, max_off_policy_lag=1))
        env = _section(config, "env", dict(num_workers=2, timeout_s=60.0,
                                           **{domain: {} for domain in DOMAINS}))
        # The program language (and so the line coordinates) follow each task's domain.
        credit = _section(config, "credit", {f.name: f.default
                                             for f in dataclasses.fields(CreditConfig)
                                             if f.name != "language"})
        teacher = _section(config, "teacher", dict(
            weights="live", ema_rate=0.05, ema_every=1, max_prompt_tokens=1024,
            failed_exec_path=True, distill=True,
            **{f.name: f.default for f in dataclasses.fields(TeacherPromptConfig)}))
        loss_raw = _section(config, "loss", {f.name: f.default for f in dataclasses.fields(LossConfig)})
        optim_raw = _section(config, "optim", {f.name: f.default
                                               for f in dataclasses.fields(OptimConfig)})
        train = _section(config, "train", dict(num_steps=4, log_every=1, checkpoint_every=2,
                                               keep_checkpoints=2, plot_every=2))

        sources = []
        for i, src in enumerate(data["sources"]):
            src = dict(src)
            where = f"config.data.sources[{i}]"
            if set(src) - {"path", "format", "weight"} or "path" not in src or "format" not in src:
                raise ConfigError(f"{where} = {src}: give exactly path, format and optional weight")
            if src["format"] not in FORMATS:
                raise ConfigError(f"{where}.format={src['format']!r}: use one of {sorted(FORMATS)}")
            sources.append(Source(str(src["path"]), src["format"], float(src.get("weight", 1.0))))
        if not sources:
            raise ConfigError("config.data.sources is empty: list at least one "
                              "{path, format, weight} (e.g. chartmimic_direct_v1.jsonl in the data folder)")

        group = _int("config.rollout.group_size", rollout["group_size"], 1)
        temperature = float(rollout["temperature"])
        try:
            sampler = SamplerConfig(
                num_samples=group, max_new_tokens=_int("config.rollout.max_new_tokens",
                                                       rollout["max_new_tokens"], 1),
                sampling=Sampling(temperature=temperature, top_k=rollout["top_k"],
                                  top_p=rollout["top_p"]),
                prompt_bucket=_int("config.rollout.max_prompt_tokens",
                                   rollout["max_prompt_tokens"], 8))
            loss = LossConfig.from_mapping({**loss_raw, "temperature": temperature or 1.0})
            step = StepConfig(loss=loss, teacher_weights=teacher["weights"],
                              ema_rate=float(teacher["ema_rate"]),
                              ema_every=_int("config.teacher.ema_every", teacher["ema_every"], 1),
                              distill=bool(teacher["distill"]))
            num_steps = _int("config.train.num_steps", train["num_steps"], 1)
            optim = optim_from_mapping(optim_raw, decay_steps=max(num_steps, 1))
            credit_config = CreditConfig.from_mapping(credit)
            teacher_prompt = TeacherPromptConfig.from_mapping(teacher)
        except (ValueError, TypeError) as err:
            raise ConfigError(f"invalid config: {err}") from err
        if loss.uses_grpo and group < 2:
            raise ConfigError(f"config.rollout.group_size={group} with config.loss.beta="
                              f"{loss.beta}: GRPO needs groups of at least 2 rollouts per prompt")
        if not teacher["distill"] and not loss.uses_grpo:
            raise ConfigError("config.teacher.distill=False with config.loss.beta=0 leaves no "
                              "loss at all; set beta > 0 (GRPO only) or distill=True")
        if loss.ref_kl_coef > 0:
            raise ConfigError("config.loss.ref_kl_coef > 0 needs reference log-probs, which the "
                              "trainer does not compute; set it to 0 (the teacher term already "
                              "anchors the policy) or add a reference pass")
        lag = _int("config.rollout.max_off_policy_lag", rollout["max_off_policy_lag"], 0)
        if lag > 1:
            raise ConfigError(f"config.rollout.max_off_policy_lag={lag}: the loop overlaps one "
                              f"batch at most; use 0 or 1")
        if not isinstance(env["chart"], dict) and not hasattr(env["chart"], "items"):
            raise ConfigError("config.env.chart must be a dict of chart env settings")
        for name in ("image_max_pixels", "image_min_pixels"):
            _int(f"config.data.{name}", data[name], 1)
        if data["image_min_pixels"] > data["image_max_pixels"]:
            raise ConfigError("config.data.image_min_pixels must not exceed image_max_pixels")
        return cls(
            seed=seed, model=model, mesh=mesh, sources=tuple(sources),
            image_max_pixels=data["image_max_pixels"], image_min_pixels=data["image_min_pixels"],
            prompts_per_step=_int("config.rollout.prompts_per_step", rollout["prompts_per_step"], 1),
            sampler=sampler, max_prompt_tokens=rollout["max_prompt_tokens"],
            max_off_policy_lag=lag,
            env_workers=_int("config.env.num_workers", env["num_workers"], 1),
            env_timeout_s=float(env["timeout_s"]),
            env_config={d: dict(env[d]) for d in DOMAINS},
            credit=credit_config, teacher_prompt=teacher_prompt,
            teacher_max_prompt_tokens=_int("config.teacher.max_prompt_tokens",
                                           teacher["max_prompt_tokens"], 8),
            failed_exec_path=bool(teacher["failed_exec_path"]), distill=bool(teacher["distill"]),
            step=step, optim=optim,
            num_steps=num_steps,
            checkpoint_every=_int("config.train.checkpoint_every", train["checkpoint_every"], 1),
            keep_checkpoints=_int("config.train.keep_checkpoints", train["keep_checkpoints"], 1),
            plot_every=_int("config.train.plot_every", train["plot_every"], 1))
