"""The web environment: HTML/CSS pages rendered in Chromium via Playwright, judged for visual
defects traced to source lines, and scored with Design2Code metrics against a target page.
Entry point: `make_env("web", config_dict)` (envs.registry). Never imports jax.
"""
from __future__ import annotations

from typing import Any


def make_env(domain: str, config: dict[str, Any] | None = None):
    """The registry's factory: a WebEnv from a plain config dict (keys of WebEnvConfig)."""
    from envs.web.env import WebEnv, WebEnvConfig, config_from_dict
    if domain != "web":
        raise ValueError(f"envs.web makes the 'web' env, not {domain!r}")
    return WebEnv(config_from_dict(WebEnvConfig, config, "web env"))
