"""The python-pptx slide environment: program -> sandbox -> .pptx -> sandboxed LibreOffice -> judge.

`PptxSlideEnv.step(task, code)` runs the program in the project sandbox (envs.sandbox, runner
envs/slide/pptx_runner.py, tracing shapes to the statements that created or edited them), checks
the saved deck as a zip (`envs.slide.deck_guard`: size limits, zip bombs, external links),
renders it with a long-lived LibreOffice in its own sandbox (PDF and PNG pages,
`envs.slide.office`), reads shape geometry (python-pptx, in this process) and text extents (PDF
spans), detects defects per slide, computes the AeSlides measures, and traces every defect to
line spans. reward = substance x (w x AeSlides average + (1 - w) x cleanliness), where substance
(`envs.reward.substance`) is 0 for a blank or nearly blank deck, which would otherwise score as
the cleanest. It never raises for bad programs: errors, time-outs, crashes of the program or of
LibreOffice come back as Feedback(ok=False). Multi-slide decks are judged slide by slide and
rendered as one image with the slides stacked (regions in that image's pixels). Never imports
jax.
"""
from __future__ import annotations

import dataclasses
import io
import time

import numpy as np
from PIL import Image

from envs import geometry, pixels
from envs.feedback import Defect, Element, ExecError, Feedback, split_advisories
from envs.outcome import feedback_from_run
from envs.reward import cleanliness, substance
from envs.finding import Finding
from envs.sandbox import Sandbox, SandboxLimits
from envs.slide import aeslides, pptx_detectors
from envs.slide.deck import DeckView, assign_spans, read_shapes, read_spans
from envs.slide.deck_guard import deck_problem
from envs.slide.office import Office, OfficeError
from envs.slide.pptx_runner import DECK
from envs.task import Task

Trace = dict[tuple[int, int], dict[str, list[list[int]]]]
MAX_PAGE_PIXELS = 16_000_000


@dataclasses.dataclass
class PptxEnvConfig:
    limits: SandboxLimits = dataclasses.field(
        default_factory=lambda: SandboxLimits(cpu_seconds=15.0, wall_seconds=20.0))
    detectors: pptx_detectors.PptxDetectorConfig = dataclasses.field(
        default_factory=pptx_detectors.PptxDetectorConfig)
    max_slides: int = 4              # judged and rendered per program
    convert_timeout_s: float = 30.0
    aesthetic_weight: float = 0.5

    def __post_init__(self):
        if self.max_slides < 1:
            raise ValueError(f"PptxEnvConfig.max_slides must be >= 1, got {self.max_slides}")
        if not 0.0 <= self.aesthetic_weight <= 1.0:
            raise ValueError(f"PptxEnvConfig.aesthetic_weight must be in [0, 1], got {self.aesthetic_weight}")


def parse_trace(raw) -> Trace:
    """The runner's trace (from the process that ran model code): checked, never trusted blindly."""
    trace: Trace = {}
    for slide, shape, lines in raw:
        trace[(int(slide), int(shape))] = {
            key: [[int(a), int(b)] for a, b in lines.get(key, [])] for key in ("created", "edited")}
    return trace


def finding_lines(finding: Finding, view: DeckView, trace: Trace) -> tuple[tuple[int, int], ...]:
    """Creation and edit statements of the shapes a finding names (+ slide-level edits for contrast)."""
    spans: set[tuple[int, int]] = set()
    for k in finding.records:
        shape = view.shapes[k]
        lines = trace.get((shape.slide, shape.shape_id), {})
        spans.update(tuple(s) for s in lines.get("created", []) + lines.get("edited", []))
        if finding.kind == "low_contrast":
            slide_lines = trace.get((shape.slide, 0), {})
            spans.update(tuple(s) for s in slide_lines.get("edited", []))
    return tuple(sorted(spans))


class PptxSlideEnv:
    """python-pptx programs judged through a warm LibreOffice. One per worker; not thread-safe."""

    domain = "slide_pptx"

    def __init__(self, config: PptxEnvConfig | None = None):
        self.config = config or PptxEnvConfig()
        self.office = Office(convert_timeout_s=self.config.convert_timeout_s)
        self.sandbox = Sandbox("envs.slide.pptx_runner", self.config.limits)

    def close(self) -> None:
        self.sandbox.close()
        self.office.close()

    def step(self, task: Task, program: str) -> Feedback:
        t0 = time.monotonic()
        run = self.sandbox.run(program, {})
        timings = {"run_s": time.monotonic() - t0}
        if not run.ok or not (run.result or {}).get("ok") or DECK not in run.artifacts:
            return feedback_from_run(run, timings)
        try:
            trace = parse_trace(run.result.get("trace", []))
        except (TypeError, ValueError, AttributeError) as err:
            return Feedback.failure(ExecError("ProtocolError", f"the run's trace is malformed ({err}); "
                                              "programs must not tamper with the runner"),
                                    reward_parts={"exec": 0.0}, timings=timings)
        deck = run.artifacts[DECK]
        problem = deck_problem(deck)
        if problem is not None:
            return Feedback.failure(ExecError("UnsafeDeck", problem), reward_parts={"exec": 0.0},
                                    timings=timings, stdout=run.stdout, stderr=run.stderr)
        try:
            t1 = time.monotonic()
            pdf, pngs = self.office.render(deck, self.config.max_slides)
            timings["convert_s"] = time.monotonic() - t1
            width, height, n_slides, shapes, backgrounds = read_shapes(deck, self.config.max_slides)
            pages = min(n_slides, self.config.max_slides, len(pngs))
            if pages == 0:
                return Feedback.failure(ExecError("EmptyPresentation", "the deck has no slides: "
                                                  "add one with prs.slides.add_slide(layout)"),
                                        reward_parts={"exec": 0.0}, timings=timings)
            view = DeckView(width, height, n_slides, shapes, read_spans(pdf, pages), backgrounds)
            images = [pixels.decode_png(png, MAX_PAGE_PIXELS) for png in pngs[:pages]]
        except OfficeError as err:
            return Feedback.failure(ExecError("OfficeError", str(err)), reward_parts={"exec": 0.0},
                                    timings=timings, stdout=run.stdout, stderr=run.stderr)
        except Exception as err:  # a deck python-pptx/PyMuPDF cannot read is the program's fault
            return Feedback.failure(ExecError(type(err).__name__, f"the saved deck could not be "
                                              f"read or rendered: {str(err)[:500]}"),
                                    reward_parts={"exec": 0.0}, timings=timings)
        try:
            feedback = self._judge(view, images, trace, timings, t0)
        except (ValueError, ArithmeticError, IndexError) as err:  # absurd geometry in a hostile deck
            return Feedback.failure(ExecError("DeckGeometryError", f"the deck's layout could not be "
                                              f"judged: {type(err).__name__}: {str(err)[:300]}"),
                                    reward_parts={"exec": 0.0}, timings=timings)
        feedback.stdout, feedback.stderr = run.stdout, run.stderr
        return feedback

    def _judge(self, view: DeckView, images: list[np.ndarray], trace: Trace, timings: dict,
               t0: float) -> Feedback:
        assign_spans(view)
        defects: list[Defect] = []
        per_slide: list[dict[str, float]] = []
        for slide, rgb in enumerate(images):
            offset = slide * view.height
            findings = pptx_detectors.detect_all(view, slide, rgb, self.config.detectors)
            for f in findings:
                region = (f.region[0], f.region[1] + offset, f.region[2], f.region[3] + offset)
                defects.append(Defect(f.kind, float(f.severity), region, f"slide {slide + 1}: {f.message}",
                                      finding_lines(f, view, trace), advisory=f.advisory))
            items = pptx_detectors.visual_items(view, slide)
            boxes = [pptx_detectors.rendered_box(view, k) for k, s in enumerate(view.shapes) if s.slide == slide]
            content = geometry.union_box([(0.0, 0.0, float(view.width), float(view.height)), *boxes])
            per_slide.append(aeslides.measures(rgb, items, (view.width, view.height),
                                               (content[2] - content[0], content[3] - content[1])))
        scores = {k: float(np.mean([m[k] for m in per_slide])) for k in per_slide[0]}
        canvas = np.concatenate(images, axis=0)
        defects, notes = split_advisories(defects)
        parts = {"exec": 1.0, "cleanliness": cleanliness(defects), **scores,
                 "substance": substance(canvas)}
        w = self.config.aesthetic_weight
        reward = parts["substance"] * (w * scores["aeslides_avg"] + (1 - w) * parts["cleanliness"])
        buf = io.BytesIO()
        Image.fromarray(canvas).save(buf, format="PNG")
        elements = []
        for shape in view.shapes:
            if shape.slide >= len(images):
                continue
            lines = trace.get((shape.slide, shape.shape_id), {})
            spans = tuple(sorted({tuple(s) for s in lines.get("created", []) + lines.get("edited", [])}))
            off = shape.slide * view.height
            elements.append(Element(kind=shape.kind, region=(shape.box[0], shape.box[1] + off, shape.box[2],
                                                             shape.box[3] + off),
                                    lines=spans, text=shape.text or None,
                                    attrs={"slide": shape.slide, "shape_id": shape.shape_id, "name": shape.name}))
        timings["total_s"] = time.monotonic() - t0
        return Feedback(ok=True, reward=float(reward), reward_parts=parts, defects=defects, notes=notes,
                        render_png=buf.getvalue(), elements=elements, timings=timings,
                        render_size=(canvas.shape[1], canvas.shape[0]))
