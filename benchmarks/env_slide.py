"""Slide environment throughput: slides judged per second by one worker.

pptx (the headline): envs.slide.PptxSlideEnv.step on seeded python-pptx programs (sandboxed run,
warm LibreOffice over UNO, pdftoppm, PDF spans, detectors, AeSlides measures). Baseline in the
same run on the same programs: the identical pipeline except every conversion is a cold
`soffice --headless --convert-to pdf` process. HTML slides: HtmlSlideEnv on the AeSlides
examples (warm browser) against a new browser per slide. Medians of per-slide wall time;
throughput = 1 / median. Peak memory: largest RSS of this process plus children (LibreOffice,
sandbox server, browser) sampled after each slide.

    .venv/bin/python benchmarks/env_slide.py [--slides 12] [--baseline-slides 5]

Ends with one JSON line.
"""
from __future__ import annotations

import argparse
import json
import pathlib
import statistics
import sys
import time

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parents[1]))

from benchmarks.env_web import tree_rss_mb  # noqa: E402
from envs.data_folder import data_file  # noqa: E402
from envs.eval import pptx_samples  # noqa: E402
from envs.slide.html_slide import HtmlSlideEnv  # noqa: E402
from envs.slide.office import cold_render  # noqa: E402
from envs.slide.pptx_env import PptxSlideEnv  # noqa: E402
from envs.task import Task  # noqa: E402
from envs.web.browser import Browser  # noqa: E402


class ColdOffice:
    """The baseline renderer: a fresh soffice process per deck (same interface as Office)."""

    restarts = 0

    def render(self, deck: bytes, pages: int) -> tuple[bytes, list[bytes]]:
        return cold_render(deck, pages)

    def close(self) -> None:
        pass


def timed_steps(env, task, items, peak):
    times = []
    for code in items:
        t0 = time.perf_counter()
        fb = env.step(task, code)
        times.append(time.perf_counter() - t0)
        peak[0] = max(peak[0], tree_rss_mb())
        if not fb.ok:
            print(f"  failed: {fb.error}", file=sys.stderr)
    return times


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--slides", type=int, default=12)
    parser.add_argument("--baseline-slides", type=int, default=5)
    args = parser.parse_args()
    peak = [0.0]
    pptx_task = Task("slide_pptx", "bench", "", width=1280, height=720)
    programs = [pptx_samples.clean_program(seed).code for seed in range(args.slides)]

    env = PptxSlideEnv()
    env.step(pptx_task, programs[0])  # starts LibreOffice and the sandbox server
    ours = timed_steps(env, pptx_task, programs, peak)
    warm_office = env.office
    env.office = ColdOffice()
    base = timed_steps(env, pptx_task, programs[:args.baseline_slides], peak)
    env.office = warm_office
    env.close()

    rows = [json.loads(line) for line in open(data_file("aeslides_examples.jsonl"))][:args.slides]
    html_task = Task("slide_html", "bench", "", width=1280, height=720)
    html_env = HtmlSlideEnv()
    html_env.step(html_task, "<p>warm up</p>")
    html_ours = timed_steps(html_env, html_task, [r["html"] for r in rows], peak)
    html_env.close()
    html_base = []
    for row in rows[:args.baseline_slides]:
        t0 = time.perf_counter()
        cold = HtmlSlideEnv(browser=Browser())
        cold.step(html_task, row["html"])
        peak[0] = max(peak[0], tree_rss_mb())
        cold.close()
        html_base.append(time.perf_counter() - t0)

    med = {name: statistics.median(v) for name, v in
           (("ours", ours), ("base", base), ("html_ours", html_ours), ("html_base", html_base))}
    rate = {k: 1.0 / v for k, v in med.items()}
    print(f"pptx slides ({len(ours)} programs): warm LibreOffice median {med['ours']:.3f}s -> "
          f"{rate['ours']:.2f} slides/s; cold soffice --convert-to per slide ({len(base)}): median "
          f"{med['base']:.3f}s -> {rate['base']:.2f} slides/s; ratio {rate['ours'] / rate['base']:.2f}x")
    print(f"HTML slides ({len(html_ours)} AeSlides examples): warm browser median {med['html_ours']:.3f}s -> "
          f"{rate['html_ours']:.2f} slides/s; cold browser per slide ({len(html_base)}): median "
          f"{med['html_base']:.3f}s -> {rate['html_base']:.2f} slides/s; ratio "
          f"{rate['html_ours'] / rate['html_base']:.2f}x")
    print(f"peak RSS (process + LibreOffice + sandbox + browser) {peak[0]:.0f} MiB")
    print(json.dumps({"benchmark": "env_slide", "ours": round(rate["ours"], 3), "baseline": round(rate["base"], 3),
                      "ratio": round(rate["ours"] / rate["base"], 2), "unit": "pptx slides/s per worker",
                      "ours_median_s": round(med["ours"], 3), "baseline_median_s": round(med["base"], 3),
                      "html_ours": round(rate["html_ours"], 3), "html_baseline": round(rate["html_base"], 3),
                      "html_ratio": round(rate["html_ours"] / rate["html_base"], 2),
                      "peak_rss_mib": round(peak[0])}))


if __name__ == "__main__":
    main()
