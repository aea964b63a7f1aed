"""Write synthetic chart tasks to a JSONL file.

    python -m sdpo_jax.synthetic write --split train --count 10000 [--start 0] OUT.jsonl

One record per line (`sdpo_jax.synthetic.tasks.RECORD_FIELDS`): id, split, index, kind,
instruction, code (the reference program) and spec (what rebuilds any careless variant).
"""
from __future__ import annotations

import argparse
import sys

from sdpo_jax.synthetic.generate import SPLITS
from sdpo_jax.synthetic.tasks import write_records


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m sdpo_jax.synthetic",
                                     description=__doc__.split("\n")[0])
    commands = parser.add_subparsers(dest="command", required=True)
    write = commands.add_parser("write", help="write records of one split to a JSONL file")
    write.add_argument("--split", choices=SPLITS, required=True)
    write.add_argument("--count", type=int, required=True, help="how many records")
    write.add_argument("--start", type=int, default=0, help="index of the first record")
    write.add_argument("out", help="the JSONL file to write")
    args = parser.parse_args(argv)
    if args.count < 1 or args.start < 0:
        parser.error("--count must be >= 1 and --start >= 0")
    write_records(args.out, args.split, args.count, args.start)
    print(f"wrote {args.count} {args.split} tasks to {args.out}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
