"""Web environment throughput: pages judged per second by one worker.

Ours: one long-lived Chromium, a fresh context per page (envs.web.WebEnv.step: render, extract,
detect, trace, screenshot). Baseline, measured in the same run on the same pages: a cold start
per page (a new Playwright driver + Chromium for every page, then the same judging).
Quotes medians of per-page wall time; throughput = 1 / median. Peak memory is the largest
resident set of this process plus its children (driver, browser) sampled after each page.

    .venv/bin/python benchmarks/env_web.py [--pages 20] [--baseline-pages 6] [--target]

With --target each page is also scored against itself with the Design2Code metrics (two
captures per step). Ends with one JSON line.
"""
from __future__ import annotations

import argparse
import json
import pathlib
import statistics
import sys
import time

import psutil

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parents[1]))

from envs.data_folder import data_file  # noqa: E402
from envs.task import Task  # noqa: E402
from envs.web.browser import Browser  # noqa: E402
from envs.web.env import WebEnv, judge_page  # noqa: E402


def tree_rss_mb() -> float:
    me = psutil.Process()
    total = me.memory_info().rss
    for child in me.children(recursive=True):
        try:
            total += child.memory_info().rss
        except psutil.Error:
            pass
    return total / 2**20


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--pages", type=int, default=20)
    parser.add_argument("--baseline-pages", type=int, default=6)
    parser.add_argument("--target", action="store_true", help="also compute Design2Code metrics")
    args = parser.parse_args()
    rows = [json.loads(line) for line in open(data_file("design2code_testset.jsonl"))][:args.pages]
    peak = 0.0

    env = WebEnv()
    env.step(Task("web", "warmup", "", width=1280, height=720), "<p>warm up</p>")  # browser launch
    ours = []
    for row in rows:
        task = Task("web", row["id"], "", target=row["html"] if args.target else None, width=1280, height=720)
        t0 = time.perf_counter()
        fb = env.step(task, row["html"])
        ours.append(time.perf_counter() - t0)
        peak = max(peak, tree_rss_mb())
        if not fb.ok:
            print(f"  {row['id']}: {fb.error}", file=sys.stderr)
    env.close()

    base = []
    for row in rows[:args.baseline_pages]:
        t0 = time.perf_counter()
        with Browser() as browser:  # cold: a new driver and browser for this page alone
            judge_page(browser, row["html"], 1280, 720, max_elements=env.config.max_elements,
                       detectors=env.config.detectors, screenshot_max_height=env.config.screenshot_max_height,
                       with_capture=args.target)
            peak = max(peak, tree_rss_mb())
        base.append(time.perf_counter() - t0)

    ours_med, base_med = statistics.median(ours), statistics.median(base)
    ours_rate, base_rate = 1.0 / ours_med, 1.0 / base_med
    print(f"web env, {len(ours)} Design2Code pages{' with Design2Code metrics' if args.target else ''}")
    print(f"  ours (warm browser, context per page): median {ours_med:.3f}s/page -> {ours_rate:.2f} pages/s")
    print(f"  baseline (cold browser per page, {len(base)} pages): median {base_med:.3f}s/page -> "
          f"{base_rate:.2f} pages/s")
    print(f"  ratio {ours_rate / base_rate:.2f}x; peak RSS (process + browser) {peak:.0f} MiB")
    print(json.dumps({"benchmark": "env_web" + ("_d2c" if args.target else ""), "ours": round(ours_rate, 3),
                      "baseline": round(base_rate, 3), "ratio": round(ours_rate / base_rate, 2),
                      "unit": "pages/s per worker", "ours_median_s": round(ours_med, 3),
                      "baseline_median_s": round(base_med, 3), "pages": len(ours),
                      "baseline_pages": len(base), "peak_rss_mib": round(peak)}))


if __name__ == "__main__":
    main()
