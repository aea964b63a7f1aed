"""Official benchmark and training releases -> the JSONL files `sdpo_jax.data` reads.

    python -m sdpo_jax.prepare_data NAME SRC [OUT.jsonl] [--limit N] [--workers N]
    report = prepare("chartmimic", "ChartMimic/dataset/ori_500", "chartmimic_direct.jsonl")

NAME is one of PREPARERS; SRC is a local copy of the release (nothing downloads); OUT defaults
to `<NAME>.jsonl` in the data folder (`envs.data_folder`), and a bare OUT name is put there
too. Every row is validated; rows that fail are counted under their reason and skipped, and the
Report (also written as `<OUT>.report.json`) says what was kept and dropped. Target images are
written beside OUT and named by each row's `image` field (`records`). Where each release's
layout comes from is cited in its module (charts, web, slides). Row formats, by NAME:

NAME: release layout read -> fields written (record format in envs.registry.FORMATS)
  chartmimic:  dataset/ori_500/<id>.py + <id>.pdf|png -> id, chart_type, code, figsize?, image
  chart2code:  Chart2Code-160K JSON/JSONL (LLaVA rows) -> id, code, image? (runnable only)
  design2code: testset_final/<n>.html + <n>.png -> id, html, image
  websight:    parquet (image, text, llm_generated_idea) -> id, html, idea?, image
  webcode2m:   parquet (image, text, lang) -> id, html, lang?, image   (read as "websight")
  aeslides:    examples/deck/<deck>/slides/*.html (+ renders/*.jpg), or instruction rows
               -> id, deck?, html? | instruction, image?
"""
from __future__ import annotations

import functools
import json
import os
from collections.abc import Callable, Iterator

from envs.data_folder import data_folder
from sdpo_jax.prepare_data import charts, slides, web
from sdpo_jax.prepare_data.records import BadRow, Report, SourceError, Writer

Preparer = Callable[..., Iterator[tuple[dict, bytes | None]]]
PREPARERS: dict[str, Preparer] = {
    "chartmimic": charts.chartmimic,
    "chart2code": charts.chart2code,
    "design2code": web.design2code,
    "websight": web.websight,
    "webcode2m": web.webcode2m,
    "aeslides": slides.aeslides,
}
__all__ = ["PREPARERS", "Report", "SourceError", "output_path", "prepare"]


def output_path(name: str, out: str | None) -> str:
    """OUT as written: absolute, ./ and ../ paths as given; bare names (or none): data folder."""
    out = out or f"{name}.jsonl"
    if os.path.isabs(out) or out.startswith(("./", "../")):
        return out
    return os.path.join(data_folder(), out)


def prepare(name: str, src: str, out: str | None = None, limit: int | None = None,
            workers: int = 2) -> Report:
    """Prepare one release; raises only when SRC cannot be read at all (SourceError)."""
    if name not in PREPARERS:
        raise SourceError(f"unknown dataset {name!r}. Fix: use one of {sorted(PREPARERS)}")
    if limit is not None and limit < 1:
        raise SourceError(f"--limit must be a positive number of source rows, got {limit}")
    preparer = PREPARERS[name]
    if name == "chart2code":
        preparer = functools.partial(preparer, workers=workers)
    path = output_path(name, out)
    report = Report(name=name, source=src, output=path)
    with Writer(path) as writer:
        for row, image in preparer(src, report, limit):
            try:
                writer.add(row, image)
                report.kept += 1
            except BadRow as err:
                report.drop(str(err), row["id"])
    with open(path + ".report.json", "w", encoding="utf-8") as f:
        json.dump(report.to_json(), f, indent=1)
    return report
