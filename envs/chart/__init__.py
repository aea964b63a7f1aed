"""The chart (matplotlib) environment: sandboxed runner, tracing, scene extraction, detectors,
ChartMimic metrics and defect injection. Entry point: `make_env("chart", config_dict)`.
Never imports jax.
"""
from __future__ import annotations

from typing import Any


def make_env(domain: str, config: dict[str, Any] | None = None):
    """The registry's factory (`envs.registry`): a ChartEnv from a plain config dict."""
    from envs.chart.env import ChartEnv, ChartEnvConfig
    if domain != "chart":
        raise ValueError(f"envs.chart makes the 'chart' env, not {domain!r}")
    return ChartEnv(ChartEnvConfig.from_dict(config))
