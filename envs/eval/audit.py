"""By-eye audit of the detectors: contact sheets a person (or a helper that views images) judges.

`python -m envs.eval.audit sheets --domain chart|web|slide_html --flagged 20 --out DIR
[--kinds K...]` judges
real artifacts of the data folder (spread over the file) until `--flagged` of them have a
defect, plus a quarter as many clean ones, and draws each render with its numbered defect boxes
and messages, four panels to a sheet (DIR/sheet_NN.png), with DIR/index.json listing every
numbered defect. The viewer writes one verdict per defect ("y": a person sees that defect
there, "n": not) into a verdicts JSON {"audit": {"artifact id": {"1": "y", ...}}} (the audit:
its domain, and ":kind+kind" when limited with --kinds);
`python -m envs.eval.audit score VERDICTS INDEX...` prints precision per domain and kind;
`python -m envs.eval.audit rescore VERDICTS INDEX` re-judges an audit's artifacts with the
current detectors and says what became of each judged low-contrast text (defect, advisory note
or gone), by verdict.
Never imports jax; never imported by training.
"""
from __future__ import annotations

import argparse
import collections
import io
import json
import pathlib
import re
import sys

from PIL import Image, ImageDraw, ImageFont

from envs.data_folder import data_file
from envs.feedback import Feedback
from envs.task import Task

FILES = {"chart": "chartmimic_direct_v1.jsonl", "web": "design2code_testset.jsonl",
         "slide_html": "aeslides_examples.jsonl"}
COLOURS = {"overlap": (230, 30, 30), "clipped_text": (240, 140, 0), "overflow": (160, 0, 200),
           "misalignment": (0, 120, 255), "low_contrast": (0, 170, 80), "legend_over_data": (200, 0, 120)}
PANEL_WIDTH = 880


def judged(domain: str, rows: list[dict], flagged: int):
    """(row id, Feedback) over the rows until `flagged` have defects (and a quarter as many
    clean ones have been kept)."""
    env, step = judge_of(domain)
    kept_flagged = kept_clean = 0
    try:
        for row in rows:
            if kept_flagged >= flagged:
                break
            fb = step(row)
            if not fb.ok:
                continue
            if shown(fb):
                kept_flagged += 1
            elif kept_clean < max(1, flagged // 4):
                kept_clean += 1
            else:
                continue
            yield row["id"], fb
    finally:
        env.close()


def judge_of(domain: str, all_findings: bool = False):
    """(env, step): the domain's env as the audits judge with it, and row -> Feedback.
    `all_findings`: no per-kind cap on what a chart reports (re-scoring matches every text)."""
    if domain == "chart":
        from envs.chart.detectors import ChartDetectorConfig
        from envs.chart.env import ChartEnv, ChartEnvConfig
        env = ChartEnv(ChartEnvConfig(detectors=ChartDetectorConfig(max_per_kind=10 ** 6))
                       if all_findings else None)
        return env, lambda row: env.step(Task(domain="chart", task_id=row["id"], instruction=""), row["code"])
    from envs.slide.html_slide import HtmlSlideEnv
    from envs.web.env import WebEnv, WebEnvConfig
    env = WebEnv(WebEnvConfig(screenshot_max_height=1440)) if domain == "web" else HtmlSlideEnv()
    return env, lambda row: env.step(Task(domain=domain, task_id=row["id"], instruction="",
                                          width=1280, height=720), row["html"])


KINDS: tuple[str, ...] = ()  # only these defect kinds are drawn and judged (all when empty)


def shown(fb: Feedback) -> list:
    """Defects (of the audited kinds) whose region starts inside the render (a page's
    screenshot is cut at a height)."""
    height = fb.render_size[1] if fb.render_size else 10 ** 9
    return [d for d in fb.defects if d.region[1] < height and (not KINDS or d.kind in KINDS)]


def panel(item_id: str, fb: Feedback) -> Image.Image:
    """The render with numbered defect boxes, its defect list underneath."""
    image = Image.open(io.BytesIO(fb.render_png)).convert("RGB")
    draw = ImageDraw.Draw(image)
    font = ImageFont.load_default(size=max(12, image.width // 60))
    for n, d in enumerate(shown(fb), 1):
        colour = COLOURS.get(d.kind, (0, 0, 0))
        x0, y0, x1, y1 = d.region
        draw.rectangle((x0, y0, max(x1, x0 + 2), max(y1, y0 + 2)), outline=colour, width=3)
        draw.text((x0 + 2, max(0, y0 - font.size - 2)), str(n), fill=colour, font=font,
                  stroke_width=2, stroke_fill=(255, 255, 255))
    scale = PANEL_WIDTH / image.width
    image = image.resize((PANEL_WIDTH, max(1, int(image.height * scale))))
    if image.height > 1500:
        image = image.crop((0, 0, PANEL_WIDTH, 1500))
    small = ImageFont.load_default(size=13)
    lines = [f"{item_id}: {len(shown(fb))} defect(s) shown"] + [
        f"{n}. {d.kind} {d.severity:.2f}: {d.message[:118]}" for n, d in enumerate(shown(fb)[:14], 1)]
    out = Image.new("RGB", (PANEL_WIDTH, image.height + 16 * len(lines) + 8), "white")
    out.paste(image, (0, 0))
    text = ImageDraw.Draw(out)
    for k, line in enumerate(lines):
        text.text((4, image.height + 4 + 16 * k), line, fill=(0, 0, 0), font=small)
    return out


def sheets(domain: str, flagged: int, out: pathlib.Path, per_sheet: int = 4) -> dict:
    rows = [json.loads(line) for line in open(data_file(FILES[domain]))]
    rows = [row for start in range(7) for row in rows[start::7]]  # spread over the file
    out.mkdir(parents=True, exist_ok=True)
    index, panels = {"domain": domain, "kinds": list(KINDS), "artifacts": {}}, []
    for item_id, fb in judged(domain, rows, flagged):
        index["artifacts"][item_id] = {
            "sheet": len(panels) // per_sheet,
            "defects": {str(n): {"kind": d.kind, "severity": round(d.severity, 3), "message": d.message}
                        for n, d in enumerate(shown(fb)[:14], 1)}}
        panels.append(panel(item_id, fb))
        print(f"[audit] {domain} {item_id}: {len(fb.defects)} defect(s)", file=sys.stderr, flush=True)
    for s in range(0, len(panels), per_sheet):
        group = panels[s:s + per_sheet]
        rows_of = [group[k:k + 2] for k in range(0, len(group), 2)]
        height = sum(max(p.height for p in r) for r in rows_of)
        sheet = Image.new("RGB", (2 * PANEL_WIDTH + 10, height + 10 * len(rows_of)), (90, 90, 90))
        y = 0
        for r in rows_of:
            for k, p in enumerate(r):
                sheet.paste(p, (k * (PANEL_WIDTH + 10), y))
            y += max(p.height for p in r) + 10
        sheet.save(out / f"sheet_{s // per_sheet:02d}.png")
    (out / "index.json").write_text(json.dumps(index, indent=1))
    return index


def audit_name(index: dict) -> str:
    """How verdicts name an audit: its domain, the kinds it was limited to, and its round (an
    index's optional "round": the same audit redrawn after detector changes, judged anew)."""
    kinds = index.get("kinds") or []
    return index["domain"] + (":" + "+".join(kinds) if kinds else "") + \
        (f"@{index['round']}" if index.get("round") else "")


def score(verdicts: dict, indexes: list[dict]) -> dict[str, dict[str, dict[str, float]]]:
    """Precision per domain and kind (low contrast also split into hard-to-read and below-WCAG-
    only texts): defects judged "y" over defects judged."""
    table: dict[str, dict[str, dict[str, float]]] = {}
    for index in indexes:
        domain = audit_name(index)
        counts: dict[str, collections.Counter] = collections.defaultdict(collections.Counter)
        for item_id, marks in verdicts.get(domain, {}).items():
            defects = index["artifacts"][item_id]["defects"]
            for n, verdict in marks.items():
                if verdict not in ("y", "n"):
                    raise ValueError(f"{domain} {item_id} #{n}: verdict must be 'y' or 'n', got {verdict!r}")
                counts[defects[n]["kind"]][verdict] += 1
                if defects[n]["kind"] == "low_contrast":  # the readability split
                    hard = "hard to" in defects[n]["message"]
                    counts["low_contrast: " + ("hard to read/see" if hard else "below WCAG only")][verdict] += 1
        table[domain] = {kind: {"judged": c["y"] + c["n"], "precision": c["y"] / (c["y"] + c["n"])}
                         for kind, c in sorted(counts.items())}
    return table


_CONTRAST = re.compile(r"^(.*) has contrast ([0-9.]+):1")


def rescore_contrast(index: dict, verdicts: dict, rows: dict | None = None,
                     judge=None) -> collections.Counter:
    """The judged low-contrast texts of an audit under the current detectors: re-judges its
    artifacts and counts (verdict, now) with now "defect", "note", "gone" (passes WCAG now, or
    is no longer found) or "failed" (the artifact could not be judged this time). A judged text is matched to a current finding by its description
    (role and text) and, among equal ones, the nearest contrast ratio. `rows` (id -> row) and
    `judge` ((env, step) as `judge_of` makes them) default to the data folder's and the domain's."""
    marks = verdicts.get(audit_name(index), {})
    if rows is None:
        rows = {row["id"]: row for row in map(json.loads, open(data_file(FILES[index["domain"]])))
                if row["id"] in marks}
    env, step = judge or judge_of(index["domain"], all_findings=True)
    counts: collections.Counter = collections.Counter()
    try:
        for item_id, row in rows.items():
            fb = step(row)
            if not fb.ok:  # e.g. a browser timeout on a loaded machine: not judged, not gone
                print(f"[rescore] {item_id} failed: {fb.error}", file=sys.stderr, flush=True)
                counts.update((verdict, "failed") for n, verdict in marks[item_id].items()
                              if index["artifacts"][item_id]["defects"][n]["kind"] == "low_contrast")
                continue
            found = [(*_CONTRAST.match(d.message).groups(), d.advisory)
                     for d in fb.defects + fb.notes if d.kind == "low_contrast" and _CONTRAST.match(d.message)]
            for n, verdict in marks[item_id].items():
                judged = index["artifacts"][item_id]["defects"][n]
                if judged["kind"] != "low_contrast":
                    continue
                what, ratio = _CONTRAST.match(judged["message"]).groups()
                same = [f for f in found if f[0] == what]
                if not same:
                    counts[(verdict, "gone")] += 1
                    continue
                nearest = min(same, key=lambda f: abs(float(f[1]) - float(ratio)))
                found.remove(nearest)
                counts[(verdict, "note" if nearest[2] else "defect")] += 1
            print(f"[rescore] {item_id}", file=sys.stderr, flush=True)
    finally:
        env.close()
    return counts


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="command", required=True)
    make = sub.add_parser("sheets")
    make.add_argument("--domain", choices=sorted(FILES), required=True)
    make.add_argument("--flagged", type=int, default=20)
    make.add_argument("--out", type=pathlib.Path, required=True)
    make.add_argument("--kinds", nargs="*", default=(), help="audit only these defect kinds")
    judge = sub.add_parser("score")
    judge.add_argument("verdicts", type=pathlib.Path)
    judge.add_argument("indexes", type=pathlib.Path, nargs="+")
    again = sub.add_parser("rescore", help="judged low-contrast texts under the current detectors")
    again.add_argument("verdicts", type=pathlib.Path)
    again.add_argument("index", type=pathlib.Path)
    args = parser.parse_args(argv)
    if args.command == "rescore":
        counts = rescore_contrast(json.loads(args.index.read_text()), json.loads(args.verdicts.read_text()))
        for verdict, words in (("y", "judged hard to read"), ("n", "judged readable")):
            total = sum(c for (v, _), c in counts.items() if v == verdict)
            print(f"{words}: {total} texts; " + ", ".join(
                f"{counts[(verdict, now)]} {now}" for now in ("defect", "note", "gone", "failed")))
        print(json.dumps({f"{v}:{now}": c for (v, now), c in sorted(counts.items())}))
        return
    if args.command == "sheets":
        global KINDS
        KINDS = tuple(args.kinds)
        index = sheets(args.domain, args.flagged, args.out)
        print(json.dumps({"domain": args.domain, "artifacts": len(index["artifacts"])}))
        return
    table = score(json.loads(args.verdicts.read_text()), [json.loads(p.read_text()) for p in args.indexes])
    for domain, kinds in table.items():
        for kind, row in kinds.items():
            print(f"{domain:10s} {kind:16s} judged {row['judged']:3d}  precision {row['precision']:.1%}")
    print(json.dumps(table))


if __name__ == "__main__":
    main()
