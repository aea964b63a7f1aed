"""HTML slides (the AeSlides setting): a page judged on a fixed 1280x720 canvas in Chromium.

Reuses the web judge (same browser, tagging, detectors, tracing) with a strict canvas: content
below the slide's bottom edge overflows. Adds the AeSlides measures: the content height is
measured at an initial viewport height of 10 px (so the page's own height shows), whitespace
on the 1280x720 render, imbalance and collisions on the element geometry. A blank slide gets
reward 0 (`envs.reward.substance`).
Never imports jax.
"""
from __future__ import annotations

import dataclasses
import time


from envs import geometry
from envs.feedback import Defect, ExecError, Feedback, split_advisories
from envs.reward import cleanliness, substance
from envs.slide import aeslides
from envs.slide.aeslides import VisualItem
from envs.task import Task
from envs.web.browser import Browser, BrowserConfig, PageError
from envs.web.detectors import DetectorConfig, PageLayout
from envs.web.env import judge_page, page_error_feedback, to_defects, to_elements

ATOMIC_TAGS = frozenset({"img", "svg", "canvas", "video", "iframe", "button", "input", "select",
                         "textarea", "picture", "object", "embed"})
IMAGE_TAGS = frozenset({"img", "picture", "video", "canvas"})

_CONTENT_HEIGHT_JS = """
() => {
  const b = document.body, d = document.documentElement;
  return Math.max(b ? b.scrollHeight : 0, b ? b.offsetHeight : 0, d.clientHeight, d.scrollHeight, d.offsetHeight);
}
"""


def content_height(page, width: int, height: int, cap: int = 7680) -> float:
    """The page's own height (AeSlides: viewport 10 px high, then the max of the usual heights)."""
    page.set_viewport(width, 10)
    try:
        return float(min(page.evaluate(_CONTENT_HEIGHT_JS), cap))
    finally:
        page.set_viewport(width, height)


def visual_items(layout: PageLayout) -> list[VisualItem]:
    """AeSlides' weighted items from the element records (AeSlides, arXiv 2604.22840)."""
    records = layout.records
    children: dict[int, list[int]] = {}
    for i, rec in enumerate(records):
        children.setdefault(rec["parent"], []).append(i)
    vw, vh = layout.viewport
    items: list[VisualItem] = []
    for i, rec in enumerate(records):
        if rec["tag"] in ("html", "body") or not rec["visible"] or rec["opacity"] < 0.05:
            continue
        box = tuple(rec["box"])
        if rec["clip"]:
            box = geometry.intersection(box, rec["clip"]) or (0.0, 0.0, 0.0, 0.0)
        if geometry.area(box) < 4:
            continue
        lineage = frozenset(layout.ancestors(i))
        kids = children.get(i, [])
        if rec["lines"]:
            parts = rec["lines"] if len(rec["text"]) > 40 else [geometry.union_box(rec["lines"])]
            for part in parts:
                items.append(VisualItem(tuple(part), geometry.area(part), "text", i, lineage))
        small = geometry.area(box) <= 64 * 64
        if rec["tag"] == "i" or (rec["tag"] == "svg" and small):
            items.append(VisualItem(box, 0.5 * geometry.area(box), "icon", i, lineage))
        elif rec["tag"] in IMAGE_TAGS:
            items.append(VisualItem(box, geometry.area(box), "image", i, lineage))
        elif rec["tag"] in ATOMIC_TAGS and not kids:
            items.append(VisualItem(box, geometry.area(box), "atomic", i, lineage))
        elif (rec["bgImage"] or (rec["bg"] and rec["bg"][3] > 0)) and len(kids) <= 12:
            share = geometry.area(box) / (vw * vh)
            covered = sum(geometry.intersection_area(records[k]["box"], box) for k in kids)
            covered += sum(geometry.intersection_area(line, box) for line in rec["lines"])
            residual = geometry.area(box) - covered
            if 0.002 <= share <= 0.75 and residual >= 0.08 * geometry.area(box):
                items.append(VisualItem(box, residual, "background", i, lineage))
    return items


@dataclasses.dataclass
class HtmlSlideEnvConfig:
    browser: BrowserConfig = dataclasses.field(default_factory=BrowserConfig)
    detectors: DetectorConfig = dataclasses.field(
        default_factory=lambda: DetectorConfig(strict_canvas_height=True))
    max_elements: int = 20_000
    aesthetic_weight: float = 0.5  # share of the AeSlides average in the reward

    def __post_init__(self):
        if not 0.0 <= self.aesthetic_weight <= 1.0:
            raise ValueError(f"HtmlSlideEnvConfig.aesthetic_weight must be in [0, 1], got {self.aesthetic_weight}")


class HtmlSlideEnv:
    """HTML slides at the task's canvas (1280x720 for AeSlides). One per worker."""

    domain = "slide_html"

    def __init__(self, config: HtmlSlideEnvConfig | None = None, browser: Browser | None = None):
        self.config = config or HtmlSlideEnvConfig()
        self.browser = browser or Browser(self.config.browser)

    def close(self) -> None:
        self.browser.close()

    def judge(self, html: str, width: int, height: int):
        """Render and measure one slide; raises PageError for hostile or broken pages."""
        def hook(page, layout):
            return {"content_height": content_height(page, width, height)}
        judged = judge_page(self.browser, html, width, height, max_elements=self.config.max_elements,
                            detectors=self.config.detectors, screenshot_max_height=height,
                            full_page=False, page_hook=hook)
        rgb = judged.layout.pixels
        items = visual_items(judged.layout)
        scores = aeslides.measures(rgb, items, (width, height), (width, judged.extra["content_height"]))
        return judged, items, scores

    def step(self, task: Task, html: str) -> Feedback:
        t0 = time.monotonic()
        if not html.strip():
            return Feedback.failure(ExecError("EmptyPage", "the answer holds no HTML"),
                                    reward_parts={"exec": 0.0})
        try:
            judged, items, scores = self.judge(html, task.width, task.height)
        except PageError as err:
            return page_error_feedback(err, {"total_s": time.monotonic() - t0})
        defects, notes = split_advisories(to_defects(judged))
        defects += collision_defects(judged, items)
        parts = {"exec": 1.0, "cleanliness": cleanliness(defects), **scores,
                 "substance": substance(judged.layout.pixels)}
        w = self.config.aesthetic_weight
        reward = parts["substance"] * (w * scores["aeslides_avg"] + (1 - w) * parts["cleanliness"])
        return Feedback(
            ok=True, reward=float(reward), reward_parts=parts, defects=defects, render_png=judged.png,
            notes=notes,
            elements=to_elements(judged, 4000), timings={"total_s": time.monotonic() - t0},
            render_size=judged.png_size)


def collision_defects(judged, items: list[VisualItem]) -> list[Defect]:
    """AeSlides collisions not already reported as text overlaps, as overlap defects."""
    seen = {tuple(sorted(f.records)) for f in judged.findings if f.kind == "overlap"}
    out = []
    for hit in aeslides.collisions(items):
        if (hit.a, hit.b) in seen:
            continue
        spans = tuple(sorted({s for k in (hit.a, hit.b)
                              if (s := judged.source.lines_of(judged.layout.records[k]["sid"]))}))
        a, b = judged.layout.records[hit.a], judged.layout.records[hit.b]
        out.append(Defect("overlap", min(1.0, hit.fraction), hit.region,
                          f"<{a['tag']}> and <{b['tag']}> collide ({hit.fraction:.0%} of the smaller)", spans))
    return out
