"""Chart environment throughput: charts judged per second by one worker.

Ours: `ChartEnv.step` (a fork from the warm server in the bubblewrap sandbox, tracing hooks
armed, render, scene extraction, PNG; then, in the judge: PNG decode, scene parse, pixel
verification, all detectors, Feedback), no target. Baseline, measured in the same run on the
same ChartMimic programs, interleaved with ours: plain exec-and-savefig (ChartMimic's pipeline,
`envs.chart.plain_runner`) in the same sandbox, so the ratio is the cost of tracing +
extraction + detection. Also reported: the same plain exec-and-savefig in this process without
any sandbox (the sandbox's own cost), and ours with a target (ChartMimic recording + metrics;
the target's recording is cached, as in training).

Quotes medians of per-chart wall time; charts/s = 1 / median. Peak memory: the largest
resident set of a run (its program process, from wait4) and of the warm sandbox server.

    .venv/bin/python benchmarks/env_chart.py [--programs 60] [--with-target]

Ends with one JSON line.
"""
from __future__ import annotations

import argparse
import contextlib
import io
import json
import pathlib
import re
import resource
import statistics
import sys
import time

import psutil

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parents[1]))

from envs.chart.env import ChartEnv  # noqa: E402
from envs.data_folder import data_file  # noqa: E402
from envs.sandbox import Sandbox  # noqa: E402
from envs.task import Task  # noqa: E402

_CUT = re.compile(r"plt\.savefig\(.*|plt\.show\(.*", re.S)


def server_rss_mib(sandbox: Sandbox) -> float:
    """Resident memory of a sandbox's warm server processes (what each worker keeps alive)."""
    total = 0
    for pid in sandbox.server_pids:
        try:
            total += psutil.Process(pid).memory_info().rss
        except psutil.Error:
            pass
    return total / 2**20


def in_process_plain(code: str, dpi: int) -> float:
    """Exec-and-savefig in this process, no sandbox (trusted ChartMimic code only)."""
    import matplotlib
    import matplotlib.pyplot as plt
    start = time.perf_counter()
    with contextlib.redirect_stdout(io.StringIO()), contextlib.redirect_stderr(io.StringIO()):
        try:
            exec(compile(_CUT.sub("", code), "<gen>", "exec"), {"__name__": "__main__"})
            plt.gcf().savefig(io.BytesIO(), format="png", dpi=dpi)
        except Exception:  # noqa: BLE001 - the same few programs fail in every runner
            pass
    elapsed = time.perf_counter() - start
    plt.close("all")
    matplotlib.rcdefaults()
    return elapsed


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--programs", type=int, default=60, help="first N of every 397/N-th program")
    parser.add_argument("--with-target", action="store_true", help="also time steps with a target")
    args = parser.parse_args()
    rows = [json.loads(line) for line in open(data_file("chartmimic_direct_v1.jsonl"))]
    rows = rows[::max(1, len(rows) // args.programs)][:args.programs]

    env = ChartEnv()
    plain = Sandbox("envs.chart.plain_runner", env.config.limits)
    plain.isolation  # noqa: B018 - wait for its warm server
    from envs.chart import runner
    runner.import_libraries()  # for the in-process baseline
    ours, base, inproc, targeted = [], [], [], []
    peak_run_kb = {"ours": 0, "baseline": 0}
    peak_server = 0.0
    ok = 0
    for i, row in enumerate(rows):
        task = Task("chart", row["id"], "")
        for which in (("ours", "baseline") if i % 2 == 0 else ("baseline", "ours")):
            start = time.perf_counter()
            if which == "ours":
                feedback = env.step(task, row["code"])
                ours.append(time.perf_counter() - start)
                ok += feedback.ok
            else:
                run = plain.run(row["code"], {"dpi": task.dpi})
                base.append(time.perf_counter() - start)
                peak_run_kb["baseline"] = max(peak_run_kb["baseline"], run.max_rss_kb)
        peak_run_kb["ours"] = max(peak_run_kb["ours"], env.sandbox.last_result.max_rss_kb)
        inproc.append(in_process_plain(row["code"], task.dpi))
        if args.with_target:
            target_task = Task("chart", row["id"], "", target=row["code"])
            env.step(target_task, row["code"])  # caches the target's recording
            start = time.perf_counter()
            env.step(target_task, row["code"])
            targeted.append(time.perf_counter() - start)
        peak_server = max(peak_server, server_rss_mib(env.sandbox))
        print(f"{i + 1}/{len(rows)} {row['id']}: ours {ours[-1]:.3f} s, baseline {base[-1]:.3f} s",
              file=sys.stderr)
    env.close()
    plain.close()

    med = {k: statistics.median(v) for k, v in (("ours", ours), ("baseline", base), ("inproc", inproc))}
    ratio = med["ours"] / med["baseline"]
    print(f"programs: {len(rows)} ChartMimic programs ({ok} rendered), one worker, sequential")
    print(f"ours (trace + extract + detect, sandboxed):   median {med['ours']:.3f} s/chart = "
          f"{1 / med['ours']:.2f} charts/s")
    print(f"baseline (plain exec + savefig, sandboxed):   median {med['baseline']:.3f} s/chart = "
          f"{1 / med['baseline']:.2f} charts/s")
    print(f"ratio ours / baseline (median): {ratio:.3f}x; ratio of totals: {sum(ours) / sum(base):.3f}x")
    print(f"plain exec + savefig in-process, no sandbox:  median {med['inproc']:.3f} s/chart "
          f"(sandbox cost: {med['baseline'] / med['inproc']:.2f}x)")
    if targeted:
        print(f"ours with a target (ChartMimic recording + metrics): median {statistics.median(targeted):.3f} s/chart")
    print(f"peak RSS of one run: ours {peak_run_kb['ours'] / 1024:.0f} MiB, baseline "
          f"{peak_run_kb['baseline'] / 1024:.0f} MiB; warm sandbox server {peak_server:.0f} MiB; "
          f"this process {resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024:.0f} MiB")
    result = {"benchmark": "env_chart", "ours": round(1 / med["ours"], 3),
              "baseline": round(1 / med["baseline"], 3), "ratio": round(ratio, 3),
              "unit": "charts/s per worker (ratio = median s/chart ours / baseline)",
              "ours_median_s": round(med["ours"], 4), "baseline_median_s": round(med["baseline"], 4),
              "inprocess_plain_median_s": round(med["inproc"], 4),
              "ratio_of_totals": round(sum(ours) / sum(base), 3), "programs": len(rows),
              "peak_run_rss_mib": round(peak_run_kb["ours"] / 1024, 1),
              "peak_server_rss_mib": round(peak_server, 1)}
    if targeted:
        result["with_target_median_s"] = round(statistics.median(targeted), 4)
    print(json.dumps(result))


if __name__ == "__main__":
    main()
