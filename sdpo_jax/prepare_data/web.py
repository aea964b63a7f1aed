"""Web releases: the Design2Code test set, WebSight and WebCode2M (screenshot + HTML pairs).

Design2Code (NoviScl/Design2Code README, "Testset"; hub SALT-NLP/Design2Code): a folder
`testset_final/` of `<n>.html` pages, each with its screenshot `<n>.png`, plus the placeholder
`rick.jpg` the pages point at. Rows: {id, html, image}. A JSONL of {id, html} rows (the data
folder's `design2code_testset.jsonl`) is re-validated and kept without images.

WebSight (HuggingFaceM4/WebSight dataset card: parquet shards, features `image` (an HF Image,
stored as {bytes, path}), `text` (the HTML), and in v0.2 `llm_generated_idea`). Rows:
{id, html, idea?, image}.

WebCode2M (xcodemind/webcode2m: parquet shards `data/*.parquet` whose rows carry `image` and
`text`, the HTML, as loaders of the release read them, e.g. `sample["image"]`,
`sample["text"]`; `lang` is kept when present). Rows: {id, html, lang?, image}.

JSONL copies of either (same field names, image as a path or base64) are read the same way. A
page must contain markup; its screenshot must decode. Never imports jax.
"""
from __future__ import annotations

import functools
import os
from collections.abc import Iterator

from sdpo_jax.prepare_data.records import (BadRow, Report, collect, image_bytes, row_id,
                                           row_items, source_dir, text_field)


def checked_html(page: str) -> str:
    if "<" not in page or ">" not in page:
        raise BadRow("page has no HTML markup")
    return page


def design2code(src: str, report: Report, limit: int | None
                ) -> Iterator[tuple[dict, bytes | None]]:
    if not (os.path.isdir(src) and any(f.endswith(".html") for f in os.listdir(src))):
        yield from _rows(src, report, limit, "design2code", keep=(), image_required=False)
        return
    pages = sorted((f[:-5] for f in os.listdir(src) if f.endswith(".html")),
                   key=lambda stem: (not stem.isdigit(), int(stem) if stem.isdigit() else 0, stem))
    yield from collect(((stem, functools.partial(_design2code_page, src, stem)) for stem in pages),
                       report, limit)


def _design2code_page(folder: str, stem: str) -> tuple[dict, bytes]:
    with open(os.path.join(folder, stem + ".html"), encoding="utf-8", errors="replace") as f:
        page = checked_html(f.read())
    shot = os.path.join(folder, stem + ".png")
    if not os.path.isfile(shot):
        raise BadRow("no screenshot <n>.png beside the page")
    return {"id": stem, "html": page}, image_bytes(shot, "")


def websight(src: str, report: Report, limit: int | None) -> Iterator[tuple[dict, bytes | None]]:
    yield from _rows(src, report, limit, "websight", keep=(("llm_generated_idea", "idea"),))


def webcode2m(src: str, report: Report, limit: int | None) -> Iterator[tuple[dict, bytes | None]]:
    yield from _rows(src, report, limit, "webcode2m", keep=(("lang", "lang"),))


def _rows(src: str, report: Report, limit: int | None, prefix: str,
          keep: tuple[tuple[str, str], ...], image_required: bool = True
          ) -> Iterator[tuple[dict, bytes | None]]:
    """Screenshot/HTML rows: `text` or `html`, `image`; `keep` maps extra fields to row names."""
    def build(n: int, where: str, row: dict) -> tuple[dict, bytes | None]:
        out = {"id": row_id(row, f"{prefix}_{n}"),
               "html": checked_html(text_field(row, "text", "html"))}
        out.update({name: row[field] for field, name in keep
                    if isinstance(row.get(field), str) and row[field]})
        if not image_required and not row.get("image"):
            report.note("kept without a target image (none in the row)")
            return out, None
        return out, image_bytes(row.get("image"), source_dir(where))
    yield from collect(row_items(src, build), report, limit)
