"""Agreement of our low-contrast detector with axe-core's `color-contrast` rule.

axe-core (npm, node_modules/axe-core, installed by launch/setup.sh with the test extra) is
injected into the same Chromium page our extraction ran on, so both judge the same DOM. An
element counts when both examined it (axe: passes or violations; us: a measured contrast);
they agree when both call it a violation or both a pass. Disagreements are sorted by cause:
a different background, a different foreground, the same colours but a different size/weight
threshold, or a ratio within 0.05 of the threshold (rounding).

Usage: python -m envs.eval.axe_agreement [--limit N]   (prints a summary and one JSON line)
Never imports jax.
"""
from __future__ import annotations

import argparse
import collections
import dataclasses
import json
import os
import pathlib
import sys
import time

from envs.data_folder import data_folder
from envs import color as wcolor
from envs.web.browser import Browser, PageError
from envs.web.detectors import DetectorConfig, PageLayout, measure_contrast
from envs.web.env import EXTRACT_JS
from envs.web.source_map import build_source_map

AXE_PATH = pathlib.Path(__file__).resolve().parents[2] / "node_modules" / "axe-core" / "axe.min.js"

_RUN_AXE_JS = """
async (source) => {
  if (!window.axe) (0, eval)(source);
  const res = await axe.run(document, {runOnly: {type: 'rule', values: ['color-contrast']},
                                      resultTypes: ['passes', 'violations', 'incomplete'],
                                      elementRef: true});
  const where = new Map((window.__sdpoNodes || []).map((el, i) => [el, i]));
  const pick = (group) => (res[group][0] ? res[group][0].nodes : []).map((n) => {
    const check = [...n.any, ...n.all, ...n.none].find((c) => c.data && c.data.bgColor) || {};
    const d = check.data || {};
    return [where.has(n.element) ? where.get(n.element) : -1,
            d.fgColor || null, d.bgColor || null, d.contrastRatio || null, d.expectedContrastRatio || null];
  });
  return {passes: pick('passes'), violations: pick('violations'), incomplete: pick('incomplete')};
}
"""


def load_axe() -> str:
    if not AXE_PATH.is_file():
        raise FileNotFoundError(f"axe-core not found at {AXE_PATH}: run `npm install` in the project "
                                f"root (or bash launch/setup.sh)")
    return AXE_PATH.read_text()


@dataclasses.dataclass
class Agreement:
    both: int = 0
    agree: int = 0
    causes: collections.Counter = dataclasses.field(default_factory=collections.Counter)
    examples: list = dataclasses.field(default_factory=list)

    @property
    def rate(self) -> float:
        return self.agree / self.both if self.both else 1.0


def _hex_rgb(text: str | None):
    if not text or not text.startswith("#") or len(text) < 7:
        return None
    return tuple(int(text[k:k + 2], 16) for k in (1, 3, 5))


def _cause(ours, axe_fg, axe_bg, axe_ratio, axe_expected) -> str:
    fg, bg = _hex_rgb(axe_fg), _hex_rgb(axe_bg)
    if bg is None or wcolor.ciede2000(bg, ours.bg) > 2.0:
        return "different background (stacking, positioned or overlapping elements)"
    if fg is None or wcolor.ciede2000(fg, ours.fg) > 2.0:
        return "different foreground (opacity, text-shadow or blending)"
    if axe_expected and abs(float(str(axe_expected).split(":")[0]) - ours.required) > 1e-6:
        return "different large-text threshold (font size/weight)"
    if axe_ratio is not None and abs(float(axe_ratio) - ours.ratio) > 0.05:
        return "same colours, different ratio (text-shadow rescue)"
    return "ratio at the threshold (rounding)"


def compare_page(browser: Browser, html: str, axe_source: str, agreement: Agreement, page_id: str,
                 cfg: DetectorConfig) -> None:
    source = build_source_map(html)
    with browser.open(source.tagged_html, 1280, 720) as page:
        layout = PageLayout.from_extraction(page.evaluate(EXTRACT_JS, 20_000))
        axe = page.evaluate(_RUN_AXE_JS, axe_source, timeout_s=60)
    ours = {m.record: m for m in measure_contrast(layout, cfg)}
    verdicts = {}
    for group in ("passes", "violations"):
        for idx, fg, bg, ratio, expected in axe[group]:
            if idx >= 0:
                verdicts[idx] = (group == "violations", fg, bg, ratio, expected)
    for idx, m in ours.items():
        if idx not in verdicts:
            continue
        axe_fail, fg, bg, ratio, expected = verdicts[idx]
        agreement.both += 1
        if axe_fail == (m.ratio < m.required):
            agreement.agree += 1
            continue
        cause = _cause(m, fg, bg, ratio, expected)
        agreement.causes[cause] += 1
        if len(agreement.examples) < 40:
            agreement.examples.append({"page": page_id, "text": layout.records[idx]["text"][:40],
                                       "ours": [wcolor.hex_color(m.fg), wcolor.hex_color(m.bg), round(m.ratio, 2)],
                                       "axe": [fg, bg, ratio], "axe_violation": axe_fail, "cause": cause})


def run(rows: list[dict], progress: bool = True) -> tuple[Agreement, list[str]]:
    axe_source = load_axe()
    agreement, failed = Agreement(), []
    cfg = DetectorConfig()
    with Browser() as browser:
        for k, row in enumerate(rows):
            try:
                compare_page(browser, row["html"], axe_source, agreement, row["id"], cfg)
            except PageError as err:
                failed.append(f"{row['id']}: {err}")
            if progress and (k + 1) % 25 == 0:
                print(f"[axe] {k + 1}/{len(rows)} pages, agreement {agreement.rate:.4f} over "
                      f"{agreement.both} elements", file=sys.stderr, flush=True)
    return agreement, failed


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", default=os.path.join(data_folder(), "design2code_testset.jsonl"))
    parser.add_argument("--limit", type=int, default=None)
    args = parser.parse_args(argv)
    rows = [json.loads(line) for line in open(args.data)][:args.limit]
    t0 = time.monotonic()
    agreement, failed = run(rows)
    print(f"pages {len(rows)} (failed {len(failed)}), elements examined by both {agreement.both}, "
          f"agreement {agreement.rate:.4f}, {time.monotonic() - t0:.0f}s")
    for cause, n in agreement.causes.most_common():
        print(f"  {n:5d}  {cause}")
    for ex in agreement.examples[:10]:
        print("  e.g.", json.dumps(ex, ensure_ascii=False))
    print(json.dumps({"pages": len(rows), "failed": failed, "elements": agreement.both,
                      "agreement": round(agreement.rate, 4), "causes": dict(agreement.causes)}))


if __name__ == "__main__":
    main()
