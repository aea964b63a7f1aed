"""The web environment: HTML/CSS written by the model -> Chromium render -> defects -> Feedback.

`WebEnv.step(task, code)` never raises for bad model output: oversized sources, script loops,
dialog storms, network or navigation attempts, crashed renderers and huge DOMs all come back as
`Feedback(ok=False)` with an error naming the cause. The browser is long-lived (one per env,
i.e. per worker); every page gets a fresh context. With a target page (Design2Code task) the
reward mixes Design2Code fidelity with defect-freeness; target captures are cached per source.
A blank or nearly blank page gets reward 0 (`envs.reward.substance`): it would otherwise be the
cleanest page of all. Judging scripts run in an isolated world (`envs.web.browser.Page`) and
the page's source tags are checked against the source map (`SourceMap.forged_tags`).

`judge_page` is the shared core the HTML-slide environment reuses with a strict canvas.
Never imports jax.
"""
from __future__ import annotations

import dataclasses
import hashlib
import io
import pathlib
import time
from typing import Any

import numpy as np
from PIL import Image

from envs.config_dict import checked
from envs.feedback import Defect, Element, ExecError, Feedback, split_advisories
from envs.finding import Finding
from envs.reward import cleanliness, substance
from envs.task import Task
from envs.web import design2code
from envs.web.browser import Browser, BrowserConfig, PageError
from envs.web.detectors import DetectorConfig, PageLayout, detect_all
from envs.web.source_map import SourceMap, build_source_map
from envs.web.trace import trace_findings

EXTRACT_JS = (pathlib.Path(__file__).with_name("extract.js")).read_text()


@dataclasses.dataclass
class WebEnvConfig:
    """Everything the web judge can be told; validated on construction."""

    browser: BrowserConfig = dataclasses.field(default_factory=BrowserConfig)
    detectors: DetectorConfig = dataclasses.field(default_factory=DetectorConfig)
    max_elements: int = 20_000
    screenshot_max_height: int = 4096
    max_feedback_elements: int = 4000
    fidelity_weight: float = 0.5     # share of Design2Code "final" in the reward when a target exists
    target_cache_size: int = 64

    def __post_init__(self):
        if not 0.0 <= self.fidelity_weight <= 1.0:
            raise ValueError(f"WebEnvConfig.fidelity_weight must be in [0, 1], got {self.fidelity_weight}")
        if self.max_elements <= 0 or self.screenshot_max_height <= 0:
            raise ValueError("WebEnvConfig.max_elements and screenshot_max_height must be positive")


@dataclasses.dataclass
class JudgedPage:
    """One rendered page with its findings traced to lines; `capture` only when asked for."""

    layout: PageLayout
    findings: list[Finding]
    lines: list[tuple[tuple[int, int], ...]]
    source: SourceMap
    png: bytes
    png_size: tuple[int, int]
    log_blocked: list[str]
    capture: design2code.PageCapture | None = None
    extra: dict[str, Any] = dataclasses.field(default_factory=dict)


def config_from_dict(cls: type, values: dict[str, Any] | None, what: str):
    """A config dataclass from plain data; nested dataclass fields take nested dicts.

    Unknown keys fail with the valid names (envs.config_dict.checked); missing ones keep defaults.
    """
    values = checked(cls, values, what)
    defaults = cls()
    for name, value in values.items():
        current = getattr(defaults, name)
        if dataclasses.is_dataclass(current) and isinstance(value, dict):
            values[name] = dataclasses.replace(current, **checked(type(current), value, f"{what}.{name}"))
    return dataclasses.replace(defaults, **values)


def judge_page(browser: Browser, html: str, width: int, height: int, *, max_elements: int,
               detectors: DetectorConfig, screenshot_max_height: int, full_page: bool = True,
               with_capture: bool = False, page_hook=None) -> JudgedPage:
    """Render, extract, detect and trace one page. Raises PageError for anything hostile."""
    source = build_source_map(html)
    with browser.open(source.tagged_html, width, height) as page:
        data = page.evaluate(EXTRACT_JS, max_elements)
        if "tooMany" in data:
            raise PageError("too_large", f"page has {data['tooMany']} elements, above the limit of "
                                         f"{max_elements}: generate a smaller page")
        if page.log.violations:
            raise PageError("violation", "page " + "; ".join(sorted(set(page.log.violations))[:3])
                            + " (pages must be self-contained: no network, no navigation)")
        forged = source.forged_tags(data.get("elements", []))
        if forged:
            raise PageError("tamper", "the page rewrote the source tags the judge put on its "
                                      f"elements ({'; '.join(forged[:3])}); scripts must leave the "
                                      "data-vs attributes alone")
        layout = PageLayout.from_extraction(data)
        png = page.screenshot(full_page=full_page, max_height=screenshot_max_height)
        layout.pixels = np.asarray(Image.open(io.BytesIO(png)).convert("RGB"))  # backdrops of text
        findings = detect_all(layout, detectors)
        lines = trace_findings(page, findings, layout, source)
        extra = page_hook(page, layout) if page_hook else {}
        capture = design2code.capture(page, screenshot_max_height) if with_capture else None
        blocked = list(page.log.blocked)
    size = (layout.pixels.shape[1], layout.pixels.shape[0])
    return JudgedPage(layout=layout, findings=findings, lines=lines, source=source, png=png,
                      png_size=size, log_blocked=blocked, capture=capture, extra=extra)


def to_defects(judged: JudgedPage) -> list[Defect]:
    """The page's findings as Defects, advisory notes included (`split_advisories` parts them)."""
    return [Defect(kind=f.kind, severity=float(f.severity), region=tuple(float(v) for v in f.region),
                   message=f.message, lines=spans, advisory=f.advisory)
            for f, spans in zip(judged.findings, judged.lines)]


def to_elements(judged: JudgedPage, limit: int) -> list[Element]:
    """Rendered elements the model wrote (own start tag), with text or an image, for credit."""
    out = []
    for rec in judged.layout.records:
        if not rec["own"] or not rec["visible"] or not (rec["lines"] or rec["leaf"]):
            continue
        span = judged.source.lines_of(rec["sid"])
        color = rec["color"]
        out.append(Element(kind=rec["tag"], region=tuple(float(v) for v in rec["box"]),
                           lines=(span,) if span else (), text=rec["text"] or None,
                           color=None if not color else "#%02x%02x%02x" % tuple(int(c) for c in color[:3])))
        if len(out) >= limit:
            break
    return out


def page_error_feedback(err: PageError, timings: dict[str, float]) -> Feedback:
    return Feedback.failure(ExecError(type=f"Page{err.kind.title().replace('_', '')}Error",
                                      message=str(err)), reward_parts={"exec": 0.0}, timings=timings)


class WebEnv:
    """HTML/CSS pages in Chromium. One instance per worker process; not thread-safe."""

    domain = "web"

    def __init__(self, config: WebEnvConfig | None = None):
        self.config = config or WebEnvConfig()
        self.browser = Browser(self.config.browser)
        self._targets: dict[str, design2code.PageCapture] = {}

    def close(self) -> None:
        self.browser.close()

    def _judge(self, html: str, task: Task, with_capture: bool) -> JudgedPage:
        return judge_page(self.browser, html, task.width, task.height,
                          max_elements=self.config.max_elements, detectors=self.config.detectors,
                          screenshot_max_height=self.config.screenshot_max_height,
                          with_capture=with_capture)

    def target_capture(self, task: Task) -> design2code.PageCapture | None:
        """The reference page's blocks and screenshot, rendered once per distinct target."""
        if not task.target:
            return None
        key = hashlib.sha1(f"{task.width}x{task.height}\0{task.target}".encode()).hexdigest()
        if key not in self._targets:
            if len(self._targets) >= self.config.target_cache_size:
                self._targets.pop(next(iter(self._targets)))
            self._targets[key] = self._judge(task.target, task, with_capture=True).capture
        return self._targets[key]

    def step(self, task: Task, html: str) -> Feedback:
        t0 = time.monotonic()
        timings: dict[str, float] = {}
        if not html.strip():
            return Feedback.failure(ExecError("EmptyPage", "the answer holds no HTML"),
                                    reward_parts={"exec": 0.0})
        try:
            target = self.target_capture(task)
        except PageError as err:  # a broken reference is a task problem, reported as such
            return Feedback.failure(ExecError("TargetPageError", f"reference page of task "
                                              f"{task.task_id} failed to render: {err}"),
                                    reward_parts={"exec": 0.0})
        timings["target_s"] = time.monotonic() - t0
        try:
            judged = self._judge(html, task, with_capture=target is not None)
        except PageError as err:
            timings["total_s"] = time.monotonic() - t0
            return page_error_feedback(err, timings)
        defects, notes = split_advisories(to_defects(judged))
        parts = {"exec": 1.0, "cleanliness": cleanliness(defects), "substance": substance(judged.layout.pixels)}
        reward = parts["cleanliness"]
        if target is not None:
            metrics = design2code.score(target, judged.capture)
            parts.update({f"d2c_{k}": float(v) for k, v in metrics.items()})
            w = self.config.fidelity_weight
            reward = w * parts["d2c_final"] + (1 - w) * parts["cleanliness"]
        reward *= parts["substance"]
        timings["total_s"] = time.monotonic() - t0
        return Feedback(
            ok=True, reward=float(reward), reward_parts=parts, defects=defects, render_png=judged.png,
            notes=notes,
            elements=to_elements(judged, self.config.max_feedback_elements), timings=timings,
            render_size=judged.png_size, stderr="\n".join(f"blocked: {u}" for u in judged.log_blocked[:20]))
