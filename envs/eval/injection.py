"""Detector recall and tracing on injected defects, and false-positive rates on clean artifacts.

For each clean artifact: judge it (its defects give the false-positive rate per kind), inject
each kind once, judge again. A detection is a defect of the injected kind that the clean render
did not have (no clean defect of that kind with region IoU > 0.9). Recall = injected artifacts
with a detection; tracing = detections whose line spans hold the edited line.

`python -m envs.eval.injection --domain web|slide_html|slide_pptx --limit N` prints the table
and one JSON line (slide_pptx: N seeded programs from envs.eval.pptx_samples); `--person` runs
the person-written recipes of `envs.eval.person_recipes` (slide_pptx: `envs.eval.pptx_person`)
instead, tabled per recipe, counting only valid injections (the render visibly changed). Never
imports jax.
"""
from __future__ import annotations

import argparse
import collections
import dataclasses
import json
import random
import sys
import time
from collections.abc import Callable, Iterable

from envs import geometry
from envs.data_folder import data_file
from envs.feedback import Defect, Feedback, split_advisories


@dataclasses.dataclass
class InjectionStats:
    """Counts per defect kind across a corpus."""

    injected: collections.Counter = dataclasses.field(default_factory=collections.Counter)
    detected: collections.Counter = dataclasses.field(default_factory=collections.Counter)
    detections: collections.Counter = dataclasses.field(default_factory=collections.Counter)
    traced: collections.Counter = dataclasses.field(default_factory=collections.Counter)
    no_target: collections.Counter = dataclasses.field(default_factory=collections.Counter)
    clean_items: int = 0
    clean_with_kind: collections.Counter = dataclasses.field(default_factory=collections.Counter)
    clean_below_wcag: int = 0  # clean artifacts with a readable text below WCAG (an advisory note)
    invalid: collections.Counter = dataclasses.field(default_factory=collections.Counter)
    noted: collections.Counter = dataclasses.field(default_factory=collections.Counter)  # misses told as advisory notes
    misses: list = dataclasses.field(default_factory=list)

    def record(self, kind: str | tuple[str, ...], clean: list[Defect], judged: list[Defect] | None,
               line: int | tuple[int, ...],
               item: str, key: str | None = None, notes: tuple[list[Defect], list[Defect]] | None = None) -> None:
        """One injection of `kind` (tabled under `key`, default the kind); `line`: the edited
        line(s), any of which a traced detection must name; `notes`: (clean, injected) advisory
        notes, to count a miss the judge only noted (readable below WCAG)."""
        key = key or (kind if isinstance(kind, str) else kind[0])
        lines = line if isinstance(line, tuple) else (line,)
        self.injected[key] += 1
        if judged is None:  # the injected artifact failed to render: a miss
            self.misses.append((item, key, "render failed"))
            return
        new = new_defects(clean, judged, kind)
        if new:
            self.detected[key] += 1
        elif notes is not None and new_defects(notes[0], notes[1], kind):
            self.noted[key] += 1
            self.misses.append((item, key, "an advisory note only"))
        else:
            self.misses.append((item, key, "not detected"))
        self.detections[key] += len(new)
        self.traced[key] += sum(any(a <= ln <= b for a, b in d.lines for ln in lines) for d in new)

    def record_clean(self, defects: list[Defect], notes: list[Defect] = ()) -> None:
        """A clean artifact's defects (low contrast: hard to read) and advisory notes (readable
        text below WCAG)."""
        self.clean_items += 1
        self.clean_with_kind.update({d.kind for d in defects})
        self.clean_below_wcag += any(d.kind == "low_contrast" for d in notes)

    def table(self, kinds: Iterable[str]) -> dict[str, dict[str, float]]:
        out = {}
        for kind in kinds:
            n, det = self.injected[kind], self.detections[kind]
            out[kind] = {"injected": n, "recall": self.detected[kind] / n if n else float("nan"),
                         "trace_rate": self.traced[kind] / det if det else float("nan"),
                         "clean_fp_rate": self.clean_with_kind[kind] / self.clean_items if self.clean_items else float("nan"),
                         "no_target": self.no_target[kind], "invalid": self.invalid[kind],
                         "advisory_only": self.noted[kind]}
        return out


def already_defective(judged, kind: str) -> frozenset[int]:
    """Records of a judged page that already have a defect of `kind`."""
    return frozenset(r for f in judged.findings if f.kind == kind for r in f.records)


def new_defects(clean: list[Defect], judged: list[Defect], kind: str | tuple[str, ...]) -> list[Defect]:
    """Defects of `kind` (or any of several kinds) the clean render did not have."""
    kinds = (kind,) if isinstance(kind, str) else kind
    before = [d.region for d in clean if d.kind in kinds]
    return [d for d in judged if d.kind in kinds and geometry.max_iou(d.region, before) <= 0.9]


def evaluate_html(rows: list[dict], judge: Callable, kinds: Iterable[str], seed: int = 0,
                  viewport_only: bool = False, progress: bool = True) -> InjectionStats:
    """Pages or HTML slides: judge(html) -> (JudgedPage, defects) raising PageError on failure."""
    from envs.web.browser import PageError
    from envs.eval.web_inject import inject

    stats = InjectionStats()
    rng = random.Random(seed)
    for row, clean_page, clean in _clean_pages(rows, judge, stats, "inject" if progress else None):
        for kind in kinds:
            injection = inject(clean_page.source, clean_page.layout, kind, rng, viewport_only,
                               avoid=already_defective(clean_page, kind))
            if injection is None:
                stats.no_target[kind] += 1
                continue
            try:
                judged = judge(injection.html)[1]
            except PageError:
                judged = None
            stats.record(kind, clean, judged, injection.line, row["id"])
    return stats


def _clean_pages(rows: list[dict], judge: Callable, stats: InjectionStats, label: str | None):
    """(row, JudgedPage, defects) of every row that renders, its clean defects recorded."""
    from envs.web.browser import PageError
    from envs.web.env import to_defects

    for n, row in enumerate(rows):
        try:
            clean_page, clean = judge(row["html"])
        except PageError:
            continue
        stats.record_clean(clean, split_advisories(to_defects(clean_page))[1])
        yield row, clean_page, clean
        if label and (n + 1) % 5 == 0:
            print(f"[{label}] {n + 1}/{len(rows)}", file=sys.stderr, flush=True)


def evaluate_planted(rows: list[dict], judge: Callable, recipes: Iterable[str], seed: int = 0,
                     canvas: tuple[float, float] = (1280, 720), progress: bool = True) -> InjectionStats:
    """Pages or HTML slides with the person-written recipes of `envs.eval.person_recipes`,
    tabled per recipe; an injection whose render did not visibly change is invalid, not a miss."""
    from envs.eval.person_recipes import HTML_KINDS, plant
    from envs.web.browser import PageError

    def judged(html):
        try:
            page, defects = judge(html)
        except PageError:
            return None, None
        return page.layout.pixels, defects

    stats = InjectionStats()
    rng = random.Random(seed)
    for row, clean_page, clean in _clean_pages(rows, judge, stats, "planted" if progress else None):
        for recipe in recipes:
            shown = frozenset(r for f in clean_page.findings if f.kind in HTML_KINDS[recipe] for r in f.records)
            planted = plant(clean_page.source, clean_page.layout, recipe, rng, canvas, avoid=shown)
            _record_planted(stats, row["id"], recipe, clean, clean_page.layout.pixels,
                            planted and (planted.kinds, planted.html, planted.lines), judged)
    return stats


def _record_planted(stats: InjectionStats, item: str, recipe: str, clean, clean_pixels,
                    planted: tuple | None, judge: Callable) -> None:
    """One planted recipe: `planted` = (kinds, source, added lines) or None (no target);
    judge(source) -> (pixels, defects), or (None, None) when it failed to render; `clean`: the
    clean defects, or the clean Feedback (with `judge` giving Feedback too: its advisory notes
    count misses told only as notes). Tabled under the recipe; an injection whose render did
    not visibly change is invalid, not a miss."""
    from envs.pixels import visibly_changed

    if planted is None:
        stats.no_target[recipe] += 1
        return
    kinds, source, lines = planted
    shown, judged = judge(source)
    if shown is not None and not visibly_changed(clean_pixels, shown):
        stats.invalid[recipe] += 1
        return
    if isinstance(clean, Feedback):
        notes = None if judged is None else (clean.notes, judged.notes)
        stats.record(kinds, clean.defects, judged and judged.defects, lines, item, key=recipe, notes=notes)
    else:
        stats.record(kinds, clean, judged, lines, item, key=recipe)


def pptx_rows(programs: int, seed: int = 0) -> list[dict]:
    """The seeded python-pptx programs of envs.eval.pptx_samples as rows (id, code, program):
    the data folder holds no python-pptx programs."""
    from envs.eval import pptx_samples
    rows = []
    for n in range(programs):
        program = pptx_samples.clean_program(seed * 1000 + n)
        rows.append({"id": str(n), "code": program.code, "program": program})
    return rows


def pptx_judge():
    """(env, step(code) -> Feedback) for python-pptx programs on a 1280x720 task."""
    from envs.slide.pptx_env import PptxSlideEnv
    from envs.task import Task

    env = PptxSlideEnv()
    task = Task(domain="slide_pptx", task_id="inject", instruction="", width=1280, height=720)
    return env, lambda code: env.step(task, code)


def _clean_programs(rows: list[dict], step: Callable, stats: InjectionStats, label: str | None):
    """(row, clean Feedback) of every program that runs, its clean defects recorded."""
    for n, row in enumerate(rows):
        clean = step(row["code"])
        if not clean.ok:
            stats.misses.append((row["id"], "clean", str(clean.error)))
            continue
        stats.record_clean(clean.defects, clean.notes)
        yield row, clean
        if label and (n + 1) % 5 == 0:
            print(f"[{label}] {n + 1}/{len(rows)}", file=sys.stderr, flush=True)


def evaluate_pptx(programs: int, seed: int = 0) -> InjectionStats:
    """Seeded python-pptx programs (envs.eval.pptx_samples): clean run, then each kind injected."""
    from envs.eval import pptx_samples

    env, step = pptx_judge()
    stats, rng = InjectionStats(), random.Random(seed)
    try:
        for row, clean in _clean_programs(pptx_rows(programs, seed), step, stats, None):
            for kind in pptx_samples.KINDS:
                code, line = pptx_samples.inject(row["program"], kind, rng)
                fb = step(code)
                stats.record(kind, clean.defects, fb.defects if fb.ok else None, line, row["id"])
    finally:
        env.close()
    return stats


def evaluate_planted_pptx(rows: list[dict], step: Callable, recipes: Iterable[str], seed: int = 0,
                          progress: bool = True) -> InjectionStats:
    """python-pptx programs (rows with "id" and "code") with the person-written recipes of
    `envs.eval.pptx_person`, tabled per recipe; only visibly changed renders count."""
    from envs.eval.pptx_person import plant
    from envs.pixels import decode_png
    from envs.slide.pptx_env import MAX_PAGE_PIXELS

    def judged(code):
        fb = step(code)
        return (decode_png(fb.render_png, MAX_PAGE_PIXELS), fb) if fb.ok else (None, None)

    stats = InjectionStats()
    rng = random.Random(seed)
    for row, clean in _clean_programs(rows, step, stats, "planted" if progress else None):
        clean_pixels = decode_png(clean.render_png, MAX_PAGE_PIXELS)
        for recipe in recipes:
            planted = plant(row["code"], clean, recipe, rng)
            _record_planted(stats, row["id"], recipe, clean, clean_pixels,
                            planted and (planted.kinds, planted.code, planted.lines), judged)
    return stats


def judges(domain: str):
    from envs.slide.html_slide import HtmlSlideEnv, collision_defects
    from envs.web.env import WebEnv, to_defects

    if domain == "web":
        env = WebEnv()
        return env, lambda html: _web(env, html, to_defects)
    env = HtmlSlideEnv()

    def slide(html):
        judged, items, _ = env.judge(html, 1280, 720)
        return judged, split_advisories(to_defects(judged))[0] + collision_defects(judged, items)
    return env, slide


def _web(env, html, to_defects):
    from envs.web.env import judge_page
    judged = judge_page(env.browser, html, 1280, 720, max_elements=env.config.max_elements,
                        detectors=env.config.detectors, screenshot_max_height=720, full_page=False)
    return judged, split_advisories(to_defects(judged))[0]


def format_table(stats, kinds) -> str:
    """The per-kind recall / trace / clean false-positive table, and the first misses."""
    lines = [f"{stats.clean_items} clean artifacts rendered"]
    for kind, row in stats.table(kinds).items():
        lines.append(f"  {kind:13s} injected {row['injected']:4d}  recall {row['recall']:.3f}  "
                     f"trace {row['trace_rate']:.3f}  clean FP {row['clean_fp_rate']:.3f}  "
                     f"no target {row['no_target']}" +
                     (f"  missed as advisory notes {row['advisory_only']}" if row["advisory_only"] else ""))
    lines += [f"  miss: {miss}" for miss in stats.misses[:15]]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--domain", choices=("web", "slide_html", "slide_pptx"), default="web")
    parser.add_argument("--limit", type=int, default=None)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--person", action="store_true",
                        help="the person-written recipes of envs.eval.person_recipes on --limit "
                             "artifacts spread over the file (pages and HTML slides), or of "
                             "envs.eval.pptx_person on --limit seeded python-pptx programs")
    parser.add_argument("--recipes", nargs="*", default=None, help="with --person: only these recipes")
    args = parser.parse_args(argv)
    t0 = time.monotonic()
    if args.person:
        _main_person(args)
        return
    if args.domain == "slide_pptx":
        from envs.eval.pptx_samples import KINDS
        rows = list(range(args.limit or 20))
        stats = evaluate_pptx(len(rows), seed=args.seed)
    else:
        from envs.eval.web_inject import KINDS
        name = "design2code_testset.jsonl" if args.domain == "web" else "aeslides_examples.jsonl"
        rows = [json.loads(line) for line in open(data_file(name))][:args.limit]
        env, judge = judges(args.domain)
        try:
            stats = evaluate_html(rows, judge, KINDS, seed=args.seed, viewport_only=args.domain == "slide_html")
        finally:
            env.close()
    print(f"{args.domain}: {len(rows)} artifacts, {time.monotonic() - t0:.0f}s")
    print(format_table(stats, KINDS))
    print(json.dumps({"domain": args.domain, "items": len(rows), "table": stats.table(KINDS)}))


def run_person(domain: str, rows: list[dict], limit: int | None, only: Iterable[str] | None = None,
               seed: int = 0, progress: bool = True) -> tuple[InjectionStats, list[str], list[dict]]:
    """The person-written recipes that apply to `domain` on `limit` rows spread over `rows`
    (slide_pptx: rows with "id" and "code", planted by `envs.eval.pptx_person`)."""
    from envs.eval.person_recipes import CANVAS_ONLY, HTML_KINDS

    if limit:
        rows = rows[::max(1, len(rows) // limit)][:limit]
    recipes = [r for r in HTML_KINDS if (domain != "web" or r not in CANVAS_ONLY)
               and (not only or r in only)]
    env, judge = pptx_judge() if domain == "slide_pptx" else judges(domain)
    evaluate = evaluate_planted_pptx if domain == "slide_pptx" else evaluate_planted
    try:
        return evaluate(rows, judge, recipes, seed=seed, progress=progress), recipes, rows
    finally:
        env.close()


def shortfalls(stats: InjectionStats, recipes: Iterable[str], min_rate: float = 0.9,
               min_injected: int = 10) -> list[str]:
    """What falls short of issue 15's bar: per recipe, >= min_injected valid injections and recall
    and trace >= min_rate; clean misalignment false alarms <= 2%."""
    out = []
    for recipe, row in stats.table(recipes).items():
        if row["injected"] < min_injected:
            out.append(f"{recipe}: only {row['injected']} valid injections")
        elif row["recall"] < min_rate or row["trace_rate"] < min_rate:
            out.append(f"{recipe}: recall {row['recall']:.3f}, trace {row['trace_rate']:.3f}")
    if stats.clean_items and stats.clean_with_kind["misalignment"] / stats.clean_items > 0.02:
        out.append(f"clean misalignment {stats.clean_with_kind['misalignment']}/{stats.clean_items}")
    return out


def _main_person(args) -> None:
    from envs.feedback import DEFECT_KINDS

    if args.domain == "slide_pptx":  # no python-pptx programs in the data folder: the seeded ones
        rows = pptx_rows(args.limit or 20, seed=args.seed)
    else:
        name = "design2code_testset.jsonl" if args.domain == "web" else "aeslides_examples.jsonl"
        with open(data_file(name)) as f:
            rows = [json.loads(line) for line in f]
    t0 = time.monotonic()
    stats, recipes, rows = run_person(args.domain, rows, args.limit, args.recipes, args.seed)
    print(f"{args.domain}: {len(rows)} artifacts, person recipes, {time.monotonic() - t0:.0f}s")
    print(format_table(stats, recipes))
    clean = stats.table(DEFECT_KINDS)
    print("clean FP per kind: " + ", ".join(f"{k} {v['clean_fp_rate']:.1%}" for k, v in clean.items()) +
          f" (low contrast: hard to read); readable below WCAG (advisory notes): "
          f"{stats.clean_below_wcag / max(stats.clean_items, 1):.1%}")
    print(json.dumps({"domain": args.domain, "items": len(rows), "person": True,
                      "table": stats.table(recipes), "invalid": dict(stats.invalid),
                      "clean_fp": {k: v["clean_fp_rate"] for k, v in clean.items()},
                      "clean_below_wcag_advisory": stats.clean_below_wcag / max(stats.clean_items, 1)}))


if __name__ == "__main__":
    main()
