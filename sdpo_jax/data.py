"""Task datasets: local JSONL files in benchmark formats -> `envs.task.Task`, mixed by weight.

Every file is read and validated before step 1, so a missing file or a malformed line stops the run
with a message naming the file and the line. Sampling is a pure function of (seed, position), so
the data position in a checkpoint is a few integers and resuming replays exactly the same tasks.
Never downloads anything: paths point at local folders.

How a record of each format becomes a task is a row of envs.registry.FORMATS. The data folder
(envs.data_folder: `$SDPO_DATA_DIR`, else `data/` in the repository) holds prepared datasets and
real benchmark artifacts; a source path that is neither absolute nor starts with `./` or `../` is
read from there, so configs name files (`chartmimic_direct_v1.jsonl`), not machines.
"""
from __future__ import annotations

import collections.abc
import dataclasses
import functools
import html.parser
import json
import os
from collections.abc import Iterator, Sequence
from typing import Any

import numpy as np

from envs.data_folder import DATA_DIR_VARIABLE, data_folder
from envs.registry import FORMATS, RecordFormat
from envs.registry import spec as domain_spec
from envs.task import Task


class DataError(ValueError):
    """A dataset file is missing or malformed; the message names the file, the line and the fix."""


def data_path(path: str) -> str:
    """A source path as read: absolute and ./ or ../ paths as given, bare names in data_folder()."""
    if os.path.isabs(path) or path.startswith(("./", "../")):
        return path
    return os.path.join(data_folder(), path)


@dataclasses.dataclass(frozen=True)
class Source:
    """One JSONL file in a known format, its domain, and its share of the prompt mix."""

    path: str
    format: str
    weight: float = 1.0


class _VisibleText(html.parser.HTMLParser):
    """Collects the visible text of a page (for slide briefs derived from example slides)."""

    _SKIP = {"script", "style", "head", "title", "noscript"}

    def __init__(self):
        super().__init__()
        self.parts: list[str] = []
        self._skip_depth = 0

    def handle_starttag(self, tag, attrs):
        if tag in self._SKIP:
            self._skip_depth += 1

    def handle_endtag(self, tag):
        if tag in self._SKIP and self._skip_depth:
            self._skip_depth -= 1

    def handle_data(self, data):
        if not self._skip_depth and data.strip():
            self.parts.append(" ".join(data.split()))


def slide_brief_from_html(page: str, max_chars: int = 600) -> str:
    """A content brief for a slide: its visible text in reading order (the layout is the model's)."""
    parser = _VisibleText()
    parser.feed(page)
    return " | ".join(parser.parts)[:max_chars]


def _first_text(record: dict[str, Any], names: Sequence[str]) -> str | None:
    for name in names:
        value = record.get(name)
        if isinstance(value, str) and value.strip():
            return value
    return None


def task_from_record(record: dict[str, Any], form: RecordFormat, task_id: str, where: str) -> Task:
    """A Task on its domain's canvas and instruction (envs.registry), from one JSON record."""
    domain = domain_spec(form.domain)
    target = _first_text(record, form.target)
    if target is None and form.target_required:
        raise DataError(f"{where}: missing or empty field {' / '.join(map(repr, form.target))}. "
                        f"Fix: each line must be a JSON object with that field as a non-empty "
                        f"string.")
    instruction = _first_text(record, form.instruction)
    if instruction is None:
        brief = _first_text(record, form.brief)
        if brief is None and form.brief_from_target and target is not None:
            brief = slide_brief_from_html(target)
        if brief is None and "{brief}" in domain.instruction:
            names = form.brief + (form.target if form.brief_from_target else ())
            raise DataError(f"{where}: an open-ended {form.domain} task needs a brief: give a "
                            f"non-empty {' / '.join(map(repr, names))} field.")
        instruction = domain.instruction.format(brief=brief) if brief else domain.instruction
    meta = {name: record[name] for name in form.meta if name in record}
    return Task(domain=form.domain, task_id=task_id, instruction=instruction, target=target,
                width=domain.width, height=domain.height, dpi=domain.dpi, meta=meta)


GENERATED = "synthetic:"  # path prefix of a generated source: synthetic:<split>[:<count>]
GENERATED_COUNT = 100_000


class GeneratedTasks(collections.abc.Sequence):
    """Tasks 0 .. count-1 of a synthetic split, made when first read (nothing on disk)."""

    def __init__(self, split: str, count: int):
        from sdpo_jax.synthetic.tasks import synthetic_task  # only runs that use it pay for it
        self._make = functools.lru_cache(maxsize=4096)(
            lambda index: synthetic_task(split, index))
        self.split, self.count = split, count

    def __len__(self) -> int:
        return self.count

    def __getitem__(self, index):
        if isinstance(index, slice):
            return [self[i] for i in range(*index.indices(self.count))]
        if not 0 <= index < self.count:
            raise IndexError(f"task {index} of {self.count} in synthetic split {self.split!r}")
        return self._make(int(index))


def generated_tasks(path: str) -> GeneratedTasks:
    """The source `synthetic:<split>[:<count>]` (count default GENERATED_COUNT)."""
    from sdpo_jax.synthetic.generate import SPLITS
    parts = path[len(GENERATED):].split(":")
    split, count = parts[0], parts[1] if len(parts) > 1 else str(GENERATED_COUNT)
    if split not in SPLITS or len(parts) > 2 or not count.isdigit() or int(count) < 1:
        raise DataError(f"data source {path!r}: write synthetic:<split>[:<count>] with split one "
                        f"of {SPLITS} and a positive count, e.g. synthetic:train:100000.")
    return GeneratedTasks(split, int(count))


def load_tasks(source: Source) -> Sequence[Task]:
    """All tasks of one source: a JSONL file validated line by line, or generated synthetic
    tasks (path synthetic:<split>[:<count>], format synthetic_chart)."""
    if source.format not in FORMATS:
        raise DataError(f"{source.path}: unknown format {source.format!r}. "
                        f"Fix: use one of {sorted(FORMATS)} (envs.registry.FORMATS).")
    if source.path.startswith(GENERATED):
        if source.format != "synthetic_chart":
            raise DataError(f"{source.path}: generated sources have format 'synthetic_chart', "
                            f"not {source.format!r}.")
        return generated_tasks(source.path)
    path = data_path(source.path)
    if not os.path.isfile(path):
        raise DataError(f"{path}: no such file. Fix: put the JSONL file in the data folder "
                        f"{data_folder()} (or set ${DATA_DIR_VARIABLE} to the folder that holds "
                        f"it), or give an absolute path.")
    form = FORMATS[source.format]
    tasks = []
    with open(path, encoding="utf-8") as f:
        for lineno, line in enumerate(f, 1):
            if not line.strip():
                continue
            where = f"{path}:{lineno}"
            try:
                rec = json.loads(line)
            except json.JSONDecodeError as e:
                raise DataError(f"{where}: not valid JSON ({e.msg} at column {e.colno}). "
                                f"Fix: one JSON object per line.") from None
            if not isinstance(rec, dict):
                raise DataError(f"{where}: expected a JSON object, got {type(rec).__name__}.")
            tasks.append(task_from_record(rec, form, str(rec.get("id", lineno)), where))
    if not tasks:
        raise DataError(f"{path}: no records. Fix: the file must hold at least one line.")
    return tasks


@dataclasses.dataclass
class DataState:
    """Where the mixture is: how many prompts were drawn in total and from each source."""

    drawn: int = 0
    per_source: list[int] = dataclasses.field(default_factory=list)

    def to_json(self) -> dict[str, Any]:
        return {"drawn": self.drawn, "per_source": list(self.per_source)}

    @classmethod
    def from_json(cls, d: dict[str, Any]) -> "DataState":
        return cls(drawn=int(d["drawn"]), per_source=[int(x) for x in d["per_source"]])


class TaskMixture:
    """Draws tasks from several sources by weight; each source is walked in per-epoch shuffles.

    Which source prompt k comes from depends only on (seed, k); which item, only on
    (seed, source, epoch, position). So a DataState fully determines the future stream.
    """

    def __init__(self, sources: Sequence[Source], seed: int):
        if not sources:
            raise DataError("no data sources configured. Fix: set config.data.sources.")
        weights = np.array([s.weight for s in sources], dtype=np.float64)
        if (weights < 0).any() or weights.sum() <= 0:
            raise DataError(f"data source weights must be >= 0 with a positive sum, got "
                            f"{weights.tolist()}. Fix: config.data.sources[i].weight.")
        self.sources = list(sources)
        self.tasks = [load_tasks(s) for s in sources]
        self.probs = weights / weights.sum()
        self.seed = int(seed)
        self.state = DataState(per_source=[0] * len(sources))

    def _item(self, src: int, position: int) -> Task:
        n = len(self.tasks[src])
        epoch, offset = divmod(position, n)
        return self.tasks[src][self._order(src, epoch, n)[offset]]

    @functools.lru_cache(maxsize=8)
    def _order(self, src: int, epoch: int, n: int) -> np.ndarray:
        """Source `src`'s shuffle in `epoch` (kept: drawing a batch reuses it)."""
        return np.random.default_rng([self.seed, src, epoch]).permutation(n)

    def next_batch(self, num_prompts: int) -> list[Task]:
        """The next num_prompts tasks; advances the state."""
        batch = []
        for _ in range(num_prompts):
            u = np.random.default_rng([self.seed, 1_000_003, self.state.drawn]).random()
            src = int(min(np.searchsorted(np.cumsum(self.probs), u, side="right"),
                          len(self.probs) - 1))
            batch.append(self._item(src, self.state.per_source[src]))
            self.state.per_source[src] += 1
            self.state.drawn += 1
        return batch

    def __iter__(self) -> Iterator[Task]:
        while True:
            yield from self.next_batch(1)
