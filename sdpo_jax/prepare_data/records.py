"""What every preparer shares: reading release rows, checking images, writing JSONL, counting.

A release is read from a local path only (nothing downloads): a `.jsonl` / `.json` file (a list
of objects, or one object per line), a `.parquet` file (pyarrow), or a folder of them. Target
images travel as files beside the output: `<out stem>_images/<safe id>.<png|jpg>`, named in each
row's `image` field relative to the JSONL's folder (the original bytes, never re-encoded; a PDF
target is rasterised). Every row is validated; a bad row is counted under its reason and skipped,
never fatal. Never imports jax.
"""
from __future__ import annotations

import base64
import collections
import dataclasses
import functools
import io
import json
import os
import re
from collections.abc import Callable, Iterable, Iterator
from typing import Any, TypeVar

from PIL import Image, UnidentifiedImageError

ROW_SUFFIXES = (".jsonl", ".json", ".parquet")
T = TypeVar("T")


class SourceError(ValueError):
    """The release path cannot be read at all; the message names it and the fix."""


class BadRow(ValueError):
    """One row fails validation; its message is the reason it is counted under."""


@dataclasses.dataclass
class Report:
    """Kept and dropped counts, with reasons and a few example ids per reason."""

    name: str
    source: str
    output: str = ""
    kept: int = 0
    dropped: collections.Counter = dataclasses.field(default_factory=collections.Counter)
    notes: collections.Counter = dataclasses.field(default_factory=collections.Counter)
    examples: dict[str, list[str]] = dataclasses.field(default_factory=dict)

    def drop(self, reason: str, item_id: str) -> None:
        self.dropped[reason] += 1
        self.examples.setdefault(reason, [])
        if len(self.examples[reason]) < 3:
            self.examples[reason].append(item_id)

    def note(self, what: str) -> None:
        """A non-fatal remark on a kept row (e.g. kept without a target image)."""
        self.notes[what] += 1

    @property
    def total(self) -> int:
        return self.kept + sum(self.dropped.values())

    def to_json(self) -> dict[str, Any]:
        return {"name": self.name, "source": self.source, "output": self.output,
                "total": self.total, "kept": self.kept, "dropped": dict(self.dropped),
                "notes": dict(self.notes), "examples": self.examples}

    def summary(self) -> str:
        lines = [f"{self.name}: kept {self.kept} of {self.total} rows from {self.source}"
                 + (f" -> {self.output}" if self.output else "")]
        for reason, count in self.dropped.most_common():
            examples = ", ".join(self.examples[reason])
            lines.append(f"  dropped {count:>7}  {reason}  (e.g. {examples})")
        for what, count in self.notes.most_common():
            lines.append(f"  note    {count:>7}  {what}")
        return "\n".join(lines)


def row_files(src: str) -> list[str]:
    """The row files of a release path: the file itself, or every row file under the folder."""
    if os.path.isfile(src):
        if not src.endswith(ROW_SUFFIXES):
            raise SourceError(f"{src}: not a {'/'.join(ROW_SUFFIXES)} file. Fix: point at the "
                              f"release's row files or their folder")
        return [src]
    if not os.path.isdir(src):
        raise SourceError(f"{src}: no such file or folder. Fix: download the release yourself "
                          f"and give its local path (nothing is downloaded here)")
    found = sorted(os.path.join(root, f) for root, _, files in os.walk(src) for f in files
                   if f.endswith(ROW_SUFFIXES))
    if not found:
        raise SourceError(f"{src}: no {'/'.join(ROW_SUFFIXES)} files inside. Fix: point at the "
                          f"folder that holds the release's row files")
    return found


def read_rows(src: str) -> Iterator[tuple[str, dict | BadRow]]:
    """(where, row) for every row of the release; unreadable or non-object rows come back as
    BadRow values, for the caller to count."""
    for where, row in _raw_rows(src):
        if not isinstance(row, (dict, BadRow)):
            row = BadRow(f"row is a {type(row).__name__}, not an object")
        yield where, row


def _raw_rows(src: str) -> Iterator[tuple[str, Any]]:
    for path in row_files(src):
        if path.endswith(".parquet"):
            yield from _parquet_rows(path)
        elif path.endswith(".jsonl"):
            with open(path, encoding="utf-8") as f:
                for lineno, line in enumerate(f, 1):
                    if line.strip():
                        yield f"{path}:{lineno}", _json_or_bad(line)
        else:
            with open(path, encoding="utf-8") as f:
                data = _json_or_bad(f.read())
            rows = data.get("data", data) if isinstance(data, dict) else data
            if not isinstance(rows, list):
                yield path, BadRow("a .json release must hold a list of row objects")
                continue
            for i, row in enumerate(rows):
                yield f"{path}[{i}]", row


def _json_or_bad(text: str) -> Any:
    try:
        return json.loads(text)
    except json.JSONDecodeError as err:
        return BadRow(f"not valid JSON ({err.msg})")


def _parquet_rows(path: str) -> Iterator[tuple[str, Any]]:
    try:
        import pyarrow.parquet as pq
    except ImportError as err:
        raise SourceError(f"{path}: reading parquet needs pyarrow ({err}). Fix: pip install "
                          f"pyarrow (it is in setup.cfg)") from None
    try:
        table = pq.ParquetFile(path)
    except Exception as err:  # noqa: BLE001 - pyarrow raises several types for a bad file
        yield path, BadRow(f"unreadable parquet file ({type(err).__name__})")
        return
    index = 0
    for batch in table.iter_batches(batch_size=256):
        for row in batch.to_pylist():
            yield f"{path}#{index}", row
            index += 1


def collect(items: Iterable[tuple[str, Callable[[], T]]], report: Report, limit: int | None
            ) -> Iterator[T]:
    """Build each item (at most `limit`); an item whose build raises BadRow is counted, skipped."""
    for n, (where, build) in enumerate(items):
        if limit is not None and n >= limit:
            return
        try:
            built = build()
        except BadRow as err:
            report.drop(str(err), where)
            continue
        yield built


def row_items(src: str, build: Callable[[int, str, dict], T]
              ) -> Iterator[tuple[str, Callable[[], T]]]:
    """collect() items for every release row: build(n, where, row), or the row's own BadRow."""
    def item(n: int, where: str, row: dict | BadRow) -> T:
        if isinstance(row, BadRow):
            raise row
        return build(n, where, row)
    for n, (where, row) in enumerate(read_rows(src)):
        yield where, functools.partial(item, n, where, row)


def source_dir(where: str) -> str:
    """The folder of the release file a row came from (`where` as read_rows names it)."""
    return os.path.dirname(re.sub(r"(:\d+|\[\d+\]|#\d+)$", "", where))


def text_field(row: dict, *names: str) -> str:
    """The first of `names` holding a non-empty string; BadRow naming them otherwise."""
    for name in names:
        value = row.get(name)
        if isinstance(value, str) and value.strip():
            return value
    raise BadRow(f"missing or empty {' / '.join(names)}")


def row_id(row: dict, fallback: str) -> str:
    value = row.get("id")
    return str(value) if isinstance(value, (str, int)) and str(value).strip() else fallback


def image_bytes(value: Any, base_dir: str) -> bytes:
    """Image bytes from a release field: an HF Image struct {bytes, path}, raw bytes, base64 or a
    data URL, or a path (relative to the release file). BadRow if absent or not an image."""
    data = None
    if isinstance(value, dict):
        data = value.get("bytes")
        if not data and isinstance(value.get("path"), str):
            value = value["path"]
    if isinstance(value, (bytes, bytearray)):
        data = bytes(value)
    elif data is None and isinstance(value, str) and value.strip():
        text = value.strip()
        path = text if os.path.isabs(text) else os.path.join(base_dir, text)
        if os.path.isfile(path):
            with open(path, "rb") as f:
                data = f.read()
        else:
            try:
                encoded = text.split(",", 1)[-1] if text.startswith("data:") else text
                data = base64.b64decode(encoded, validate=True)
            except ValueError:
                raise BadRow(f"image {text[:60]!r} is neither a file nor base64") from None
    if not data:
        raise BadRow("no target image")
    check_image(data)
    return data


def check_image(data: bytes) -> None:
    try:
        with Image.open(io.BytesIO(data)) as im:
            im.verify()
    except (UnidentifiedImageError, OSError, SyntaxError, ValueError):
        raise BadRow("target image is not a readable PNG/JPEG") from None


def rasterise_pdf(path: str, dpi: int) -> bytes:
    """The first page of a PDF as PNG bytes (ChartMimic ships PDF targets)."""
    import pymupdf
    try:
        with pymupdf.open(path) as doc:
            return doc[0].get_pixmap(dpi=dpi).tobytes("png")
    except Exception as err:  # noqa: BLE001 - pymupdf raises its own types for broken files
        raise BadRow(f"unreadable PDF target ({type(err).__name__})") from None


class Writer:
    """Writes kept rows as JSONL and their images beside it; `with Writer(out) as w: w.add(...)`."""

    def __init__(self, out: str):
        self.out = os.path.abspath(out)
        folder, name = os.path.split(self.out)
        os.makedirs(folder, exist_ok=True)
        self.images_name = re.sub(r"\.jsonl?$", "", name) + "_images"
        self.images_dir = os.path.join(folder, self.images_name)
        self._ids: set[str] = set()
        self._image_names: set[str] = set()
        self._file = open(self.out + ".tmp", "w", encoding="utf-8")

    def add(self, row: dict[str, Any], image: bytes | None = None) -> None:
        """Write one row (its `id` must be new); `image` becomes the file its `image` names."""
        if row["id"] in self._ids:
            raise BadRow("duplicate id")
        if image is not None:
            os.makedirs(self.images_dir, exist_ok=True)
            ext = "png" if image.startswith(b"\x89PNG") else "jpg"
            stem = re.sub(r"[^A-Za-z0-9._-]+", "_", row["id"])
            name = f"{stem}.{ext}"
            if name in self._image_names:  # two ids that differ only in unsafe characters
                name = f"{stem}-{len(self._ids)}.{ext}"
            self._image_names.add(name)
            with open(os.path.join(self.images_dir, name), "wb") as f:
                f.write(image)
            row = {**row, "image": f"{self.images_name}/{name}"}
        self._ids.add(row["id"])
        self._file.write(json.dumps(row, ensure_ascii=False) + "\n")

    def __enter__(self) -> "Writer":
        return self

    def __exit__(self, exc_type, *exc) -> None:
        self._file.close()
        if exc_type is None:
            os.replace(self.out + ".tmp", self.out)  # a crash never leaves a half-written file
        else:
            os.remove(self.out + ".tmp")
