"""The one table of domain facts: how each domain's env is built, what language its programs are
in, what the student is asked, whether the reference is rendered for it, its canvas, and which
dataset formats make its tasks. The CLI, the worker pool, the data loader, the trainer and the
run config all read it, so adding a domain is one `DOMAINS` entry (plus its env package).

    env = make_env("chart", {"reward": {"fidelity": 0.6}})   # config: the domain's config.env.<domain>
    env.step(task, program) -> Feedback; env.close()

A factory "module:function" takes (domain, config dict) and returns an object with
`step(task, program) -> Feedback` and `close()` (`Env`); its module is imported only when the
domain is first used, so a chart worker never imports Playwright. Envs judge the program itself
(already extracted from the reply, see envs.code_extract) and report lines in its coordinates.
Never imports jax.
"""
from __future__ import annotations

import dataclasses
import importlib
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, Protocol

from envs.code_extract import LANGUAGE_TAGS
from envs.feedback import Feedback

if TYPE_CHECKING:
    from envs.task import Task


class Env(Protocol):
    def step(self, task: Task, program: str) -> Feedback: ...

    def close(self) -> None: ...


Factory = Callable[[str, dict[str, Any]], Env]

CHART_INSTRUCTION = (
    "You are an expert Python developer who specializes in writing matplotlib code based on a "
    "given chart image. Write a complete, self-contained Python program that uses matplotlib to "
    "reproduce the chart in the image exactly: the same chart type, data, texts, layout and "
    "colours. Return only the code in one ```python block.")
WEB_INSTRUCTION = (
    "You are an expert web developer who specializes in HTML and CSS. Write a single self-contained "
    "HTML file (inline CSS, no external resources; use \"rick.jpg\" for every image) that "
    "reproduces the web page in the screenshot exactly: the same layout, texts and colours. Return "
    "only the code in one ```html block.")
SLIDE_HTML_INSTRUCTION = (
    "You are an expert presentation designer. Write one self-contained HTML slide for a 1280x720 "
    "viewport (inline CSS, no external resources) for this brief. Keep every element inside the "
    "slide, readable and well aligned. Return only the code in one ```html block.\n\nBrief: {brief}")
SLIDE_PPTX_INSTRUCTION = (
    "You are an expert presentation designer. Write a Python program using python-pptx that builds "
    "a 16:9 presentation with one slide for this brief and saves it to 'output.pptx'. Keep every "
    "shape on the slide, text inside its frame, readable and aligned. Return only the code in one "
    "```python block.\n\nBrief: {brief}")


@dataclasses.dataclass(frozen=True)
class DomainSpec:
    """One domain's row of the table (see the module docstring).

    language: the program's fence tag and statement rule ("python" | "html").
    instruction: what the student is asked; "{brief}" takes an open-ended task's brief.
    renders_reference: the reference program / page is rendered into the target image the
      student imitates (chart, web); open-ended domains (slides) are judged without one.
    """

    factory: str | Factory
    language: str
    instruction: str
    renders_reference: bool
    width: int = 640
    height: int = 480
    dpi: int = 100

    def __post_init__(self):
        if self.language not in LANGUAGE_TAGS:
            raise ValueError(f"DomainSpec.language={self.language!r}: use one of "
                             f"{sorted(LANGUAGE_TAGS)}")


@dataclasses.dataclass(frozen=True)
class RecordFormat:
    """How one JSON record of a dataset format becomes a task of `domain`: fields are tried in
    order and the first non-empty string wins.

    target: the reference program / page. brief: an open-ended task's brief (filled into the
    domain's instruction); with `brief_from_target` the reference page's visible text stands in
    when no brief field is present. instruction: a record that carries its own full instruction
    (generated tasks). meta: fields copied into Task.meta.
    """

    domain: str
    target: tuple[str, ...] = ()
    target_required: bool = True
    brief: tuple[str, ...] = ()
    brief_from_target: bool = False
    instruction: tuple[str, ...] = ()
    meta: tuple[str, ...] = ()


DOMAINS: dict[str, DomainSpec] = {
    "chart": DomainSpec("envs.chart:make_env", "python", CHART_INSTRUCTION, True, 640, 480, 100),
    "web": DomainSpec("envs.web:make_env", "html", WEB_INSTRUCTION, True, 1280, 720, 96),
    "slide_pptx": DomainSpec("envs.slide:make_env", "python", SLIDE_PPTX_INSTRUCTION, False,
                             1280, 720, 96),
    "slide_html": DomainSpec("envs.slide:make_env", "html", SLIDE_HTML_INSTRUCTION, False,
                             1280, 720, 96),
}

FORMATS: dict[str, RecordFormat] = {
    # ChartMimic Direct Mimic ground truth {id, chart_type, code}
    "chartmimic": RecordFormat("chart", target=("code",), meta=("chart_type",)),
    # Chart2Code-style {id?, code}: the target image is rendered from the code
    "chart2code": RecordFormat("chart", target=("code",)),
    # Design2Code test pages {id, html}
    "design2code": RecordFormat("web", target=("html",)),
    # WebSight-style pages {text | html}
    "websight": RecordFormat("web", target=("html", "text")),
    # AeSlides HTML slides {id, deck, html} or briefs {id, instruction}
    "aeslides": RecordFormat("slide_html", target=("html",), target_required=False,
                             brief=("instruction",), brief_from_target=True),
    # python-pptx slide briefs {id, instruction | brief, code?}
    "slide_instructions": RecordFormat("slide_pptx", target=("code",), target_required=False,
                                       brief=("instruction", "brief")),
    # this project's synthetic chart tasks {id, split, instruction, code, spec, ...}: the
    # instruction states the data; the spec rebuilds careless variants (sdpo_jax.synthetic)
    "synthetic_chart": RecordFormat("chart", target=("code",), instruction=("instruction",),
                                    meta=("spec", "split")),
}


def register(domain: str, spec: DomainSpec) -> None:
    """Add or replace a domain at run time (tests, experiments)."""
    DOMAINS[domain] = spec


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
    """A fresh env for `domain` configured by a plain dict (its section config.env.<domain>)."""
    return resolve(domain)(domain, dict(config or {}))
