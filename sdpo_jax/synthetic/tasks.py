"""Synthetic chart tasks as data files and the trainer see them: instruction text, JSONL records
and `envs.task.Task`s.

    record = make_record("train", 7)   # a dict of RECORD_FIELDS; "code" is the reference
    task = task_from_record(record)    # a chart Task; the spec travels in task.meta["spec"]
    task = synthetic_task("test", 3)   # the same task, without the JSON hop (on-the-fly source)
    spec = ChartSpec.from_json(task.meta["spec"])   # to write careless variants of its program

The instruction states all the data as text (title, axis labels, categories, series names,
colours and values, "n/a" for a missing value); no image is needed. A Task's `target` is the
reference program, so the chart env scores fidelity against it; `meta["target_image"]` says
whether a prompt should also show its render (off unless asked). Never imports jax.
"""
from __future__ import annotations

import json
from collections.abc import Iterator, Mapping
from typing import Any

from envs.registry import spec as domain_spec
from envs.task import Task
from sdpo_jax.synthetic.generate import generate_spec
from sdpo_jax.synthetic.program import SAVE, string_literal, write_program
from sdpo_jax.synthetic.spec import CATEGORICAL_KINDS, ChartSpec

RECORD_FIELDS = ("id", "split", "index", "kind", "instruction", "code", "spec")
_CHART_NAMES = {"bar": "a bar chart", "grouped_bar": "a grouped bar chart",
                "line": "a line chart", "scatter": "a scatter plot", "pie": "a pie chart"}


def instruction(spec: ChartSpec) -> str:
    """The task as the policy reads it."""
    lines = [f"Write a Python program using matplotlib that draws {_CHART_NAMES[spec.kind]} of "
             f"this data.", f"Title: {string_literal(spec.title)}"]
    if spec.kind != "pie":
        lines += [f"X axis label: {string_literal(spec.x_label)}",
                  f"Y axis label: {string_literal(spec.y_label)}"]
    if spec.kind in CATEGORICAL_KINDS:
        lines.append("Categories: " + ", ".join(string_literal(c) for c in spec.categories))
    for s in spec.series:
        if spec.kind == "pie":
            lines.append("Slices: " + ", ".join(f"{string_literal(c)} {_number(v)}"
                                                for c, v in zip(spec.categories, s.values)))
            lines.append(f"Pull out the slice {string_literal(spec.categories[spec.highlight])}.")
        elif spec.kind == "scatter":
            points = ", ".join(f"({x}, {_number(y)})" for x, y in zip(s.x, s.values))
            lines.append(f"Series {string_literal(s.name)} (colour {s.color}): {points}")
        elif spec.kind == "bar":
            lines.append(f"Values (colour {s.color}): {', '.join(map(_number, s.values))}")
        else:
            lines.append(f"Series {string_literal(s.name)} (colour {s.color}): "
                         f"{', '.join(map(_number, s.values))}")
    if spec.missing is not None:
        lines.append("n/a marks a missing value.")
    lines.append(f"Save the figure with {SAVE}.")
    return "\n".join(lines)


def _number(value: int | None) -> str:
    return "n/a" if value is None else str(value)


def make_record(split: str, index: int) -> dict[str, Any]:
    """The JSONL record of task `index` of `split` (see RECORD_FIELDS); `code` is the reference."""
    spec = generate_spec(split, index)
    return {"id": f"synthetic-{split}-{index}", "split": split, "index": index, "kind": spec.kind,
            "instruction": instruction(spec), "code": write_program(spec).code,
            "spec": spec.to_json()}


def records(split: str, start: int = 0) -> Iterator[dict[str, Any]]:
    """Records start, start + 1, ... of a split, without end."""
    index = start
    while True:
        yield make_record(split, index)
        index += 1


def task_from_record(record: Mapping[str, Any], target_image: bool = False) -> Task:
    """A chart Task from a record: the reference program as target, the spec in meta."""
    missing = [f for f in RECORD_FIELDS if f not in record]
    if missing:
        raise ValueError(f"synthetic record {record.get('id', '?')!r} lacks field(s) {missing}; "
                         f"write records with `python -m sdpo_jax.synthetic write`")
    ChartSpec.from_json(record["spec"])  # a malformed spec fails here, naming what is wrong
    canvas = domain_spec("chart")
    return Task(domain="chart", task_id=str(record["id"]), instruction=record["instruction"],
                target=record["code"], width=canvas.width, height=canvas.height, dpi=canvas.dpi,
                meta={"spec": record["spec"], "split": record["split"],
                      "target_image": bool(target_image)})


def synthetic_task(split: str, index: int, target_image: bool = False) -> Task:
    """Task `index` of `split`, generated on the fly (the same Task the record would give)."""
    return task_from_record(make_record(split, index), target_image)


def write_records(path: str, split: str, count: int, start: int = 0) -> None:
    """Records start .. start + count - 1 of a split, one JSON object per line."""
    with open(path, "w", encoding="utf-8") as f:
        for index in range(start, start + count):
            f.write(json.dumps(make_record(split, index), ensure_ascii=False) + "\n")
