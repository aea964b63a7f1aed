"""Every config file validates (RunConfig) and the ablations differ from chart_8b where they say."""
import importlib
import os

import pytest

from sdpo_jax.run_config import ConfigError, RunConfig

CONFIGS = ["default", "chart_8b", "web_8b", "slide_8b", "grpo_only", "uniform_credit",
           "no_failed_exec_path"]


@pytest.mark.parametrize("name", CONFIGS)
def test_config_file_validates(name):
    rc = RunConfig.from_config(importlib.import_module(f"configs.{name}").get_config())
    assert rc.num_steps >= 1 and rc.sources


def test_pod_configs_use_the_real_8b_and_the_paper_group_size():
    for name in ("chart_8b", "web_8b", "slide_8b"):
        rc = RunConfig.from_config(importlib.import_module(f"configs.{name}").get_config())
        assert rc.model["size"] == "8b" and rc.model["dtype"] == "bfloat16"
        assert rc.sampler.num_samples == 8 and rc.prompts_per_step == 32


def test_ablations_change_exactly_their_knob():
    base = RunConfig.from_config(importlib.import_module("configs.chart_8b").get_config())
    grpo = RunConfig.from_config(importlib.import_module("configs.grpo_only").get_config())
    uniform = RunConfig.from_config(importlib.import_module("configs.uniform_credit").get_config())
    no_fail = RunConfig.from_config(
        importlib.import_module("configs.no_failed_exec_path").get_config())
    assert base.distill and not grpo.distill and grpo.step.loss.beta > 0
    assert base.credit.alpha > 1 and uniform.credit.alpha == 1.0
    assert base.failed_exec_path and not no_fail.failed_exec_path


@pytest.mark.parametrize("section, key, value, needle", [
    ("rollout", "group_size", 1, "GRPO needs groups"),
    ("rollout", "max_off_policy_lag", 3, "max_off_policy_lag=3"),
    ("loss", "distill_support", "kl", "distill_support"),
    ("teacher", "weights", "average", "config.teacher.weights"),
    ("optim", "schedule", "linear", "config.optim.schedule"),
    ("credit", "alpha", -1.0, "alpha"),
])
def test_bad_values_name_the_field(section, key, value, needle):
    c = importlib.import_module("configs.default").get_config()
    c[section][key] = value
    with pytest.raises(ConfigError, match=needle):
        RunConfig.from_config(c)


def test_unknown_keys_are_refused():
    c = importlib.import_module("configs.default").get_config()
    c.rollout.groupsize = 4
    with pytest.raises(ConfigError, match="config.rollout.groupsize"):
        RunConfig.from_config(c)
