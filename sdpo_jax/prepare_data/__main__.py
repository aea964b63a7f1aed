"""CLI: python -m sdpo_jax.prepare_data NAME SRC [OUT.jsonl] [--limit N] [--workers N]."""
from __future__ import annotations

import argparse
import json
import sys

from sdpo_jax.prepare_data import PREPARERS, SourceError, prepare


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m sdpo_jax.prepare_data",
                                     description="Turn a local copy of an official release into "
                                                 "the JSONL the trainer and evaluator read.")
    parser.add_argument("name", choices=sorted(PREPARERS))
    parser.add_argument("src", help="local release file or folder (nothing is downloaded)")
    parser.add_argument("out", nargs="?", help="output JSONL (default: <name>.jsonl in the data "
                                               "folder; bare names go there too)")
    parser.add_argument("--limit", type=int, help="read at most N source rows")
    parser.add_argument("--workers", type=int, default=2,
                        help="chart env workers for chart2code's executable subset")
    args = parser.parse_args(argv)
    try:
        report = prepare(args.name, args.src, args.out, limit=args.limit, workers=args.workers)
    except SourceError as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    print(report.summary())
    print(json.dumps({k: v for k, v in report.to_json().items() if k != "examples"}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
