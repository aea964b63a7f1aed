"""Target images: the render of a task's reference program or page, which an image-to-code
prompt shows the student ("reproduce this"). Rendered once per task by the env pool and cached;
on a pod every host renders its share and all receive all. Host-side only.
"""
from __future__ import annotations

from collections.abc import Sequence

from PIL import Image

from envs.pool import EnvPool
from envs.registry import spec as domain_spec
from envs.task import Task
from sdpo_jax.multihost import allgather_objects, process_rows
from sdpo_jax.teacher_context import png_image


class TargetImages:
    """`images(tasks)`: each task's reference render (None where its domain renders none, its
    reference failed to render, or `enabled` is off: config.data.target_images)."""

    def __init__(self, pool: EnvPool, enabled: bool):
        self.pool = pool
        self.enabled = enabled
        self._cache: dict[tuple[str, str], Image.Image | None] = {}

    def wanted(self, task: Task) -> bool:
        return self.enabled and task.target is not None and \
            domain_spec(task.domain).renders_reference

    def __call__(self, tasks: Sequence[Task]) -> list[Image.Image | None]:
        todo = list({(t.domain, t.task_id): t for t in tasks
                     if self.wanted(t) and (t.domain, t.task_id) not in self._cache}.items())
        mine = [todo[i] for i in process_rows(len(todo))]
        renders = self.pool.map([(task, task.target) for _, task in mine])
        for (key, _), png in zip(todo, allgather_objects(
                [f.render_png if f.ok else None for f in renders])):
            self._cache[key] = None if png is None else png_image(png)
        return [self._cache.get((t.domain, t.task_id)) for t in tasks]
