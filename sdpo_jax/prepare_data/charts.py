"""Chart releases: ChartMimic Direct Mimic (ori_500) and Chart2Code-160K (executable subset).

ChartMimic (repository ChartMimic/ChartMimic, `dataset/ori_500/`; the hub copy
`dataset-iclr.tar.gz` unpacks to the same folder): one `<type>_<n>.py` ground-truth program per
item with its target `<type>_<n>.pdf` (GitHub) or `.png` (some hub copies). The chart type is
the id without its number. A PDF target is rasterised at 120 dpi, as ChartMimic's
`Chart2CodeDataset` converts it for the model. The Direct Mimic instruction asks for
`figsize=(width, height)` (chart2code/prompts/DirectAgent); the program's own literal figsize is
kept as `figsize` when it has one. Rows: {id, chart_type, code, figsize?, image}. A JSONL of such
rows (the data folder's `chartmimic_direct_v1.jsonl`) is re-validated the same way.

Chart2Code-160K (ChartCoder, thunlp/ChartCoder, trained with the LLaVA-NeXT code base): LLaVA
rows {id, image, conversations: [{from: human, value}, {from: gpt, value}]} in JSON or JSONL,
the program in the gpt turn's ```python block; flat rows with `code` are read too. The image
path is resolved against the release file's folder; rows whose image is missing are kept
without one (the loader renders the program). Only programs that run in the chart environment
(`envs.registry.make_env("chart")`, through `envs.pool.EnvPool`) are kept; the others are
counted under their error type. Rows: {id, code, image?}.
"""
from __future__ import annotations

import ast
import functools
import os
import re
from collections.abc import Iterator
from typing import Any

from envs.code_extract import extract_code
from envs.pool import EnvPool
from envs.registry import spec as domain_spec
from envs.task import Task
from sdpo_jax.prepare_data.records import (BadRow, Report, collect, image_bytes, rasterise_pdf,
                                           row_id, row_items, source_dir, text_field)

PDF_DPI = 120
_FIGSIZE = re.compile(r"figsize\s*=\s*[(\[]\s*([0-9.]+)\s*,\s*([0-9.]+)\s*[)\]]")
_CHUNK = 64  # programs in flight per pool round


def checked_program(code: str) -> str:
    """The program (a fenced reply is unwrapped), or BadRow if it is empty or not Python."""
    program = extract_code(code, "python").code
    if not program.strip():
        raise BadRow("empty program")
    try:
        ast.parse(program)
    except (SyntaxError, ValueError) as err:
        raise BadRow(f"program is not valid Python ({type(err).__name__})") from None
    return program


def _figsize(code: str) -> list[float] | None:
    match = _FIGSIZE.search(code)
    return [float(match.group(1)), float(match.group(2))] if match else None


def chartmimic(src: str, report: Report, limit: int | None) -> Iterator[tuple[dict, bytes | None]]:
    if os.path.isdir(src) and any(f.endswith(".py") for f in os.listdir(src)):
        items = ((f[:-3], functools.partial(_chartmimic_file, os.path.join(src, f)))
                 for f in sorted(os.listdir(src)) if f.endswith(".py"))
        yield from collect(items, report, limit)
    else:
        yield from collect(row_items(src, _chartmimic_json_row), report, limit)


def _chartmimic_file(path: str) -> tuple[dict, bytes]:
    try:
        with open(path, encoding="utf-8") as f:
            code = checked_program(f.read())
    except UnicodeDecodeError:
        raise BadRow("program is not UTF-8") from None
    stem = path[:-3]
    return _chartmimic_row(os.path.basename(stem), code), _chartmimic_target(stem)


def _chartmimic_json_row(n: int, where: str, row: dict) -> tuple[dict, bytes | None]:
    code = checked_program(text_field(row, "code"))
    image = row.get("image")
    return (_chartmimic_row(row_id(row, where), code),
            image_bytes(image, source_dir(where)) if image else None)


def _chartmimic_row(item_id: str, code: str) -> dict[str, Any]:
    row: dict[str, Any] = {"id": item_id, "chart_type": item_id.rsplit("_", 1)[0], "code": code}
    size = _figsize(code)
    if size:
        row["figsize"] = size
    return row


def _chartmimic_target(stem: str) -> bytes:
    for ext in (".png", ".jpg"):
        if os.path.isfile(stem + ext):
            return image_bytes(stem + ext, "")
    if os.path.isfile(stem + ".pdf"):
        return rasterise_pdf(stem + ".pdf", PDF_DPI)
    raise BadRow("no target image (<id>.png or <id>.pdf)")


def _chart2code_code(row: dict) -> str:
    if isinstance(row.get("code"), str):
        return row["code"]
    turns = row.get("conversations")
    if isinstance(turns, list):
        for turn in turns:
            if isinstance(turn, dict) and turn.get("from") in ("gpt", "assistant") \
                    and isinstance(turn.get("value"), str):
                return turn["value"]
    raise BadRow("no program (neither `code` nor a gpt turn in `conversations`)")


def chart2code(src: str, report: Report, limit: int | None, workers: int = 2
               ) -> Iterator[tuple[dict, bytes | None]]:
    """Validated rows, then only those whose program runs in the chart env (module docstring)."""
    canvas = domain_spec("chart")
    with EnvPool(num_workers=workers, env_config={"chart": {"detect": False}},
                 warm=("chart",), item_timeout_s=120.0) as pool:
        def build(n: int, where: str, row: dict) -> tuple[dict, bytes | None]:
            item = {"id": row_id(row, f"chart2code_{n}"),
                    "code": checked_program(_chart2code_code(row))}
            return item, _optional_image(row, where, report)

        batch: list[tuple[dict, bytes | None]] = []
        for built in collect(row_items(src, build), report, limit):
            batch.append(built)
            if len(batch) == _CHUNK:
                yield from _runnable(pool, batch, canvas, report)
                batch = []
        yield from _runnable(pool, batch, canvas, report)


def _optional_image(row: dict, where: str, report: Report) -> bytes | None:
    if not row.get("image"):
        report.note("kept without a target image (none in the row)")
        return None
    try:
        return image_bytes(row["image"], source_dir(where))
    except BadRow as err:
        report.note(f"kept without a target image ({err})")
        return None


def _runnable(pool: EnvPool, batch: list[tuple[dict, bytes | None]], canvas,
              report: Report) -> Iterator[tuple[dict, bytes | None]]:
    tasks = [(Task(domain="chart", task_id=item["id"], instruction="", width=canvas.width,
                   height=canvas.height, dpi=canvas.dpi), item["code"]) for item, _ in batch]
    for index, feedback in pool.stream(tasks, ordered=True):
        item, image = batch[index]
        if feedback.ok:
            yield item, image
        else:
            report.drop(f"does not run in the chart env ({feedback.error.type})", item["id"])
