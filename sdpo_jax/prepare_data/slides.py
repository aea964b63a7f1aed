"""AeSlides: example HTML slides (with their renders) and instruction-only slide prompts.

The repository ympan0508/aeslides publishes example decks as
`examples/deck/<deck>/slides/page_<nn>.html`, each rendered at 1280 wide as
`examples/deck/<deck>/renders/page_<nn>.jpg`; give the repository (or its `examples/deck`)
folder. Rows: {id: "<deck>/page_<nn>", deck, html, image?}.

The training prompts (AeSlides-7k, instruction only) are not published in a documented layout,
so instruction files are read as JSON/JSONL rows with the text in `instruction`, `prompt` or
`query` (and an optional `html` slide); rows: {id, instruction, html?}. JSONL of the example
rows (the data folder's `aeslides_examples.jsonl`: {id, deck, html}) is re-validated as is.
Never imports jax.
"""
from __future__ import annotations

import functools
import os
from collections.abc import Iterator

from sdpo_jax.prepare_data.records import (BadRow, Report, collect, image_bytes, row_id,
                                           row_items, text_field)
from sdpo_jax.prepare_data.web import checked_html


def _deck_root(src: str) -> str | None:
    for root in (os.path.join(src, "examples", "deck"), src):
        if os.path.isdir(root) and any(os.path.isdir(os.path.join(root, d, "slides"))
                                       for d in os.listdir(root)):
            return root
    return None


def aeslides(src: str, report: Report, limit: int | None) -> Iterator[tuple[dict, bytes | None]]:
    root = _deck_root(src) if os.path.isdir(src) else None
    if root is None:
        yield from collect(row_items(src, _instruction_row), report, limit)
        return
    slides = [(deck, page[:-5]) for deck in sorted(os.listdir(root))
              if os.path.isdir(os.path.join(root, deck, "slides"))
              for page in sorted(os.listdir(os.path.join(root, deck, "slides")))
              if page.endswith(".html")]
    def build(deck: str, page: str) -> tuple[dict, bytes | None]:
        with open(os.path.join(root, deck, "slides", page + ".html"), encoding="utf-8",
                  errors="replace") as f:
            html = checked_html(f.read())
        render = os.path.join(root, deck, "renders", page + ".jpg")
        if not os.path.isfile(render):
            report.note("kept without a target image (no renders/<page>.jpg)")
        return ({"id": f"{deck}/{page}", "deck": deck, "html": html},
                image_bytes(render, "") if os.path.isfile(render) else None)
    yield from collect(((f"{deck}/{page}", functools.partial(build, deck, page))
                        for deck, page in slides), report, limit)


def _instruction_row(n: int, where: str, row: dict) -> tuple[dict, None]:
    out = {"id": row_id(row, f"aeslides_{n}")}
    if isinstance(row.get("deck"), str):
        out["deck"] = row["deck"]
    if isinstance(row.get("html"), str) and row["html"].strip():
        out["html"] = checked_html(row["html"])
    try:
        out["instruction"] = text_field(row, "instruction", "prompt", "query")
    except BadRow:
        if "html" not in out:
            raise BadRow("neither an html slide nor an instruction / prompt / query") from None
    return out, None
