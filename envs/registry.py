"""Domain name -> environment factory: how the CLI, the worker pool and the trainer build envs.

    env = make_env("chart", {"reward": {"fidelity": 0.6}})
    env.step(task, code) -> Feedback; env.close()

Each domain names a factory "module:function" taking (domain, config dict) and returning an
object with `step(task, code) -> Feedback` and `close()` (`Env`). Modules are imported only when
their domain is first used, so a chart worker never imports Playwright. A domain package adds
itself by its entry in `DOMAINS` (data, not logic) or at run time with `register`. Each entry
also gives the default canvas for tasks made from the command line. Never imports jax.
"""
from __future__ import annotations

import dataclasses
import importlib
from collections.abc import Callable
from typing import Any, Protocol

from envs.feedback import Feedback
from envs.task import Task


class Env(Protocol):
    def step(self, task: Task, code: str) -> Feedback: ...

    def close(self) -> None: ...


Factory = Callable[[str, dict[str, Any]], Env]


@dataclasses.dataclass(frozen=True)
class DomainSpec:
    factory: str | Factory  # "module:function" or the function itself
    width: int = 640
    height: int = 480
    dpi: int = 100


DOMAINS: dict[str, DomainSpec] = {
    "chart": DomainSpec("envs.chart:make_env", 640, 480, 100),
    "web": DomainSpec("envs.web:make_env", 1280, 720, 96),
    "slide_pptx": DomainSpec("envs.slide:make_env", 1280, 720, 96),
    "slide_html": DomainSpec("envs.slide:make_env", 1280, 720, 96),
}


def register(domain: str, factory: str | Factory, width: int = 640, height: int = 480,
             dpi: int = 100) -> None:
    """Add or replace a domain at run time (tests, experiments)."""
    DOMAINS[domain] = DomainSpec(factory, width, height, dpi)


def spec(domain: str) -> DomainSpec:
    if domain not in DOMAINS:
        raise KeyError(f"unknown env domain {domain!r}; known: {sorted(DOMAINS)} "
                       f"(add one to envs.registry.DOMAINS or call envs.registry.register)")
    return DOMAINS[domain]


def resolve(domain: str) -> Factory:
    """The factory function of a domain, importing its module on first use."""
    factory = spec(domain).factory
    if callable(factory):
        return factory
    module_name, _, attr = factory.partition(":")
    try:
        module = importlib.import_module(module_name)
    except ImportError as err:
        raise ImportError(f"env domain {domain!r} needs module {module_name!r}, which failed to import "
                          f"({err}); install its dependencies or fix DOMAINS[{domain!r}]") from err
    if not hasattr(module, attr):
        raise ImportError(f"env domain {domain!r} is registered as {factory!r}, but {module_name} has no "
                          f"{attr!r}; expose make_env(domain, config) there or fix DOMAINS[{domain!r}]")
    return getattr(module, attr)


def make_env(domain: str, config: dict[str, Any] | None = None) -> Env:
    """A fresh env for `domain` configured by a plain dict (its section of the env config)."""
    return resolve(domain)(domain, dict(config or {}))
