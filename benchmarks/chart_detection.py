"""Chart environment on all real ChartMimic programs: executability, self-fidelity, and
detection of injected defects (recall, tracing to the mutated line, clean false positives).

For every program: run it with itself as the target (exec rate; fidelity must be 1.0), then run
it clean and with each injection of `envs.eval.chart_inject` (one inserted line per defect kind).
Ours = macro recall over defect kinds on injected programs; baseline = the rate at which the
same detectors flag that kind on the clean programs, measured in the same run (ratio = signal
over noise). Runs through an EnvPool of --workers chart workers.

    .venv/bin/python benchmarks/chart_detection.py [--workers 2] [--limit N] [--no-tight-bbox]

By default each program's savefig(bbox_inches="tight") is honoured (how ChartMimic's reference
images were made, and the env's default); --no-tight-bbox renders the plain figure canvas (how
ChartMimic evaluates generated code). Ends with one JSON line.
"""
from __future__ import annotations

import argparse
import json
import pathlib
import sys
import time

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parents[1]))

from envs.eval.chart_inject import INJECTIONS, KINDS, detection_report, format_report  # noqa: E402
from envs.eval.chart_validation import self_scores  # noqa: E402
from envs.eval.person_recipes import CHART_RECIPES  # noqa: E402
from envs.data_folder import data_file  # noqa: E402
from envs.pool import EnvPool  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--limit", type=int, default=0, help="only the first N programs")
    parser.add_argument("--tight-bbox", action=argparse.BooleanOptionalAction, default=True)
    parser.add_argument("--clean-only", action="store_true", help="only the clean programs' flag rates")
    parser.add_argument("--person", action="store_true",
                        help="the person-written recipes (envs.eval.person_recipes) on --limit programs "
                             "spread over the chart types, instead of envs.eval.chart_inject's")
    args = parser.parse_args()
    rows = [json.loads(line) for line in open(data_file("chartmimic_direct_v1.jsonl"))]
    if args.person and args.limit:
        rows = rows[::max(1, len(rows) // args.limit)][:args.limit]
    elif args.limit:
        rows = rows[:args.limit]
    programs = [(r["id"], r["code"]) for r in rows]
    injections = () if args.clean_only else CHART_RECIPES if args.person else INJECTIONS
    start = time.perf_counter()
    with EnvPool(args.workers, {"chart": {"tight_bbox": args.tight_bbox}}, warm=["chart"]) as pool:
        scores = self_scores(programs, pool.map)
        print(f"executed {scores['executed']}/{scores['programs']} = {scores['exec_rate']:.2%}; "
              f"self-fidelity 1.0 for {scores['self_fidelity_perfect']:.2%} of those")
        for pid, error in scores["failures"].items():
            print(f"  failed {pid}: {error}")
        for pid, views in scores["imperfect"].items():
            print(f"  imperfect self-score {pid}: {views}")
        report = detection_report(programs, pool.map, injections=injections)
    elapsed = time.perf_counter() - start
    if args.clean_only:
        flagged = {k: sum(any(d.kind == k for d in fb.defects) for fb in report["clean_feedback"]) for k in KINDS}
        advised = sum(any(d.kind == "low_contrast" for d in fb.notes) for fb in report["clean_feedback"])
        for pid, fb in zip(report["clean_ids"], report["clean_feedback"]):
            for d in (d for d in fb.defects + fb.notes if d.kind == "low_contrast"):
                print(f"  {pid} {'note' if d.advisory else 'defect'}: {d.message}")
        print(f"clean programs flagged per kind: {flagged} of {report['clean_ran']}; any defect: "
              f"{report['clean_with_any_defect']:.1%}; readable text below WCAG (advisory notes, "
              f"not defects): {advised}")
        print(json.dumps({"benchmark": "chart_detection_clean", "ours": round(report["clean_with_any_defect"], 4),
                          "baseline": None, "ratio": None, "unit": "share of clean programs with any defect",
                          "flagged": flagged, "below_wcag_advisory": advised, "tight_bbox": args.tight_bbox, "programs": len(programs)}))
        return
    print(format_report(report))
    kinds = report["kinds"] if not args.person else report["injections"]
    recall = sum(r["recall"] for r in kinds.values()) / len(kinds)
    clean_fp = sum(r["clean_fp_rate"] for r in kinds.values()) / len(kinds)
    print(f"macro recall {recall:.1%} vs macro clean flag rate {clean_fp:.1%}; {elapsed / 60:.1f} min "
          f"on {args.workers} workers")
    print(json.dumps({"benchmark": "chart_detection", "ours": round(recall, 4), "baseline": round(clean_fp, 4),
                      "ratio": round(recall / clean_fp, 2) if clean_fp else None,
                      "unit": "macro recall on injected vs clean flag rate",
                      "exec_rate": round(scores["exec_rate"], 4),
                      "self_fidelity_perfect": round(scores["self_fidelity_perfect"], 4),
                      "min_recall": round(min(r["recall"] for r in kinds.values()), 4),
                      "min_trace_accuracy": round(min(r["trace_accuracy"] for r in kinds.values()), 4),
                      "clean_with_any_defect": round(report["clean_with_any_defect"], 4),
                      "kinds": kinds, "tight_bbox": args.tight_bbox, "programs": len(programs),
                      "minutes": round(elapsed / 60, 1)}))


if __name__ == "__main__":
    main()
