"""Config files: each validates, ablations differ from their parent only in their knob, every key
is required and named when wrong, and derived values (the schedule's length, the loss
temperature) follow the keys they come from."""
import dataclasses
import importlib

import numpy as np
import pytest

from sdpo_jax.run_config import ConfigError, RunConfig

CONFIGS = ["default", "chart_8b", "web_8b", "slide_8b", "grpo_only", "uniform_credit",
           "no_failed_exec_path", "sft_toy", "toy_sdpo", "toy_grpo", "toy_uniform_credit",
           "toy_no_failed_exec_path", "toy_text_feedback", "toy_opsd"]
# ablation -> (parent, the one field path it changes, the value there)
ABLATIONS = {
    "grpo_only": ("chart_8b", "teacher.distill", False),
    "uniform_credit": ("chart_8b", "credit.alpha", 1.0),
    "no_failed_exec_path": ("chart_8b", "teacher.failed_exec_path", False),
    # the learning-signal arms (benchmarks/learning_signal.py)
    "toy_grpo": ("toy_sdpo", "teacher.distill", False),
    "toy_uniform_credit": ("toy_sdpo", "credit.alpha", 1.0),
    "toy_no_failed_exec_path": ("toy_sdpo", "teacher.failed_exec_path", False),
    "toy_text_feedback": ("toy_sdpo", "context.show_render", False),
    "toy_opsd": ("toy_sdpo", "context.show_reference", True),
}


def load(name: str) -> RunConfig:
    return RunConfig.from_config(importlib.import_module(f"configs.{name}").get_config())


def default_config():
    return importlib.import_module("configs.default").get_config()


def flatten(tree, prefix="") -> dict:
    """A RunConfig as {dotted field path: value}, nested dataclasses walked."""
    out = {}
    for field in dataclasses.fields(tree):
        value = getattr(tree, field.name)
        path = f"{prefix}{field.name}"
        if dataclasses.is_dataclass(value) and not isinstance(value, type):
            out.update(flatten(value, path + "."))
        else:
            out[path] = value
    return out


@pytest.mark.parametrize("name", CONFIGS)
def test_config_file_validates(name):
    rc = load(name)
    assert rc.train.num_steps >= 1 and rc.data.sources


def test_pod_configs_use_the_real_8b_and_the_paper_group_size():
    for name in ("chart_8b", "web_8b", "slide_8b"):
        rc = load(name)
        assert rc.model.size == "8b" and rc.model.dtype == "bfloat16"
        assert rc.rollout.group_size == 8 and rc.rollout.prompts_per_step == 32


@pytest.mark.parametrize("name", sorted(ABLATIONS))
def test_ablations_change_exactly_their_knob(name):
    parent_name, knob, value = ABLATIONS[name]
    parent, ablation = flatten(load(parent_name)), flatten(load(name))
    changed = {path for path in parent if parent[path] != ablation[path]}
    assert changed == {knob}, f"{name} must change only {knob}, it changes {sorted(changed)}"
    assert ablation[knob] == value


@pytest.mark.parametrize("num_steps, warmup, accumulation", [
    (4, 1, 1), (10, 2, 1), (500, 10, 1), (37, 0, 1), (40, 3, 4)])
def test_schedule_ends_at_end_lr_ratio_on_the_last_step(num_steps, warmup, accumulation):
    c = default_config()
    c.train.num_steps = num_steps
    c.optim.warmup_steps = warmup
    c.optim.grad_accum = accumulation
    optim = RunConfig.from_config(c).optim
    schedule = optim.schedule_fn()
    updates = num_steps // accumulation
    rates = np.array([schedule(i) for i in range(updates)])
    np.testing.assert_allclose(rates[-1], optim.learning_rate * optim.end_lr_ratio, rtol=1e-5)
    assert rates[min(warmup, updates - 1)] > rates[-1], "the schedule decays over the whole run"


@pytest.mark.parametrize("section, key, value, needle", [
    ("rollout", "group_size", 1, "GRPO needs groups"),
    ("rollout", "max_off_policy_lag", 3, "max_off_policy_lag=3"),
    ("rollout", "group_size", "8", r"config.rollout.group_size='8' must be int"),
    ("rollout", "top_p", 0.0, "config.rollout: .*top_p"),
    ("loss", "distill_support", "kl", "config.loss: .*distill_support"),
    ("loss", "advantage", "given", "advantage='given'"),
    ("teacher", "weights", "average", "config.teacher.weights"),
    ("optim", "schedule", "linear", "config.optim.schedule"),
    ("credit", "alpha", -1.0, "config.credit: .*alpha"),
    ("train", "num_steps", 0.5, r"config.train.num_steps=0.5 must be int"),
])
def test_bad_values_name_the_field(section, key, value, needle):
    c = default_config().to_dict()  # a plain dict: ConfigDict itself refuses some wrong types
    c[section][key] = value
    with pytest.raises(ConfigError, match=needle):
        RunConfig.from_config(c)


@pytest.mark.parametrize("section, key, needle", [
    ("rollout", "groupsize", "unknown key config.rollout.groupsize"),
    ("train", "log_every", "unknown key config.train.log_every"),
    ("loss", "temperature", "config.loss.temperature is not a setting: it is derived from "
                            "config.rollout.temperature"),
    ("optim", "decay_steps", "config.optim.decay_steps is not a setting"),
    ("teacher", "max_prompt_tokens", "unknown key config.teacher.max_prompt_tokens"),
    ("context", "failed_exec_path", "unknown key config.context.failed_exec_path"),
])
def test_unknown_and_derived_keys_are_refused_by_name(section, key, needle):
    c = default_config()
    c[section][key] = 1
    with pytest.raises(ConfigError, match=needle):
        RunConfig.from_config(c)


@pytest.mark.parametrize("path", ["rollout.top_k", "context.max_defects", "env.chart",
                                  "optim.eps", "model.overrides"])
def test_every_key_is_required(path):
    c = default_config()
    *parents, key = path.split(".")
    section = c
    for part in parents:
        section = section[part]
    del section[key]
    with pytest.raises(ConfigError, match=f"config.{path} is missing"):
        RunConfig.from_config(c)


def test_loss_temperature_is_the_samplers():
    c = default_config()
    c.rollout.temperature = 0.7
    rc = RunConfig.from_config(c)
    assert rc.loss.temperature == 0.7 == rc.sampler.sampling.temperature


def test_teacher_budget_must_hold_the_student_prompt():
    c = default_config()
    c.context.max_prompt_tokens = c.rollout.max_prompt_tokens - 1
    with pytest.raises(ConfigError, match="config.context.max_prompt_tokens"):
        RunConfig.from_config(c)
