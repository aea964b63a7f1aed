"""The chart environment: a matplotlib program -> sandboxed render -> judged here -> Feedback.

    env = ChartEnv(ChartEnvConfig.from_dict({"reward": {"fidelity": 0.6}}))
    feedback = env.step(task, program)   # never raises for what the program does

Every line span is in the program's own line numbers (the trainer extracts the program from the
model's reply once, by envs.code_extract). The program runs in a `Sandbox` with the chart
runner (`envs.chart.runner`), which returns artifacts only: the render (PNG), the scene its
tracer gathered and, with a target, the ChartMimic recording. This process, which never runs
model code, is the judge: it decodes the PNG itself, parses the scene and the recording as
checked data (`envs.chart.scene`, `envs.chart.metrics.parse_recording`; anything malformed is a
ProtocolError failure), checks the scene against the pixels (`envs.chart.verify`), runs the
detectors and scores. With a target program (ChartMimic Direct Mimic) the target is rendered
and recorded once and cached.

Reward (weights from the config's "reward" dict; defaults exec 0.2, fidelity 0.5,
cleanliness 0.3), for a program that ran and drew:
    reward = (w_exec + w_fidelity * fidelity + w_cleanliness * cleanliness * verified)
             / sum(weights used)
with cleanliness = 1 / (1 + sum of defect severities) (the web env's form); verified (in [0, 1],
`envs.chart.verify`) is 0 for a blank, covered or data-less render and falls when the scene
claims elements the pixels do not show, or leaves ink unaccounted for, so an empty or forged
chart cannot reach the maximum. With a target, fidelity = ChartMimic's low-level score (mean of
the text, layout, type and colour F1s) scaled by the pixel similarity to the target's render
(`envs.pixels.similarity`, full credit from PIXEL_FULL_CREDIT), so a blank, covered or pasted
render cannot score as the reference; `chartmimic_<view>` and `chartmimic_fidelity` are the same
F1s under ChartMimic's own empty-view rule, unscaled (the benchmark's Low column). A failed
program gets reward 0. One instance per worker; not thread-safe. Never imports jax.
"""
from __future__ import annotations

import collections
import dataclasses
import hashlib
import time
import warnings
from typing import Any

import numpy as np

from envs import pixels
from envs.chart import detectors, metrics
from envs.chart.detectors import ChartDetectorConfig
from envs.chart.scene import scene_elements, scene_from_json
from envs.chart.verify import Verification, verify
from envs.config_dict import checked
from envs.feedback import ExecError, Feedback, split_advisories
from envs.outcome import domain_result, feedback_from_run, protocol_failure
from envs.reward import cleanliness
from envs.sandbox import Sandbox, SandboxLimits, SandboxResult
from envs.task import Task

RUNNER = "envs.chart.runner"
DEFAULT_REWARD_WEIGHTS = {"exec": 0.2, "fidelity": 0.5, "cleanliness": 0.3}
PIXEL_FULL_CREDIT = 0.5  # pixel similarity from which fidelity is not scaled down


@dataclasses.dataclass(frozen=True)
class Target:
    """A task's reference, rendered once: its ChartMimic recording and its pixels."""

    recording: dict[str, Any]
    image: np.ndarray


@dataclasses.dataclass(frozen=True)
class ChartEnvConfig:
    """Everything the chart env can be told; `from_dict` validates a plain config dict."""

    limits: SandboxLimits = SandboxLimits(cpu_seconds=20.0, wall_seconds=30.0)
    isolation: str = "bwrap"  # or "process", the explicit fallback (envs.sandbox)
    detectors: ChartDetectorConfig = ChartDetectorConfig()
    reward: dict[str, float] = dataclasses.field(default_factory=lambda: dict(DEFAULT_REWARD_WEIGHTS))
    detect: bool = True
    # Honour the program's savefig(bbox_inches="tight") as ChartMimic's own renders do: what
    # the saved image keeps is not clipped (envs.chart.runner). False renders the plain canvas.
    tight_bbox: bool = True
    max_code_chars: int = 100_000
    max_figures: int = 4
    max_pixels: int = 16_000_000
    max_elements: int = 2000
    target_cache_size: int = 512

    def __post_init__(self):
        unknown = sorted(set(self.reward) - set(DEFAULT_REWARD_WEIGHTS))
        if unknown:
            raise ValueError(f"unknown chart reward weight(s) {unknown}; valid: {sorted(DEFAULT_REWARD_WEIGHTS)}")
        if any(not isinstance(w, (int, float)) or w < 0 for w in self.reward.values()):
            raise ValueError(f"chart reward weights must be non-negative numbers, got {self.reward}")
        for name in ("max_code_chars", "max_figures", "max_pixels", "max_elements", "target_cache_size"):
            if getattr(self, name) <= 0:
                raise ValueError(f"ChartEnvConfig.{name} must be positive, got {getattr(self, name)}")

    @classmethod
    def from_dict(cls, values: dict[str, Any] | None) -> "ChartEnvConfig":
        values = checked(cls, values, "chart env")
        if "limits" in values:
            values["limits"] = SandboxLimits.from_dict({**dataclasses.asdict(cls.limits), **values["limits"]})
        if "detectors" in values:
            values["detectors"] = ChartDetectorConfig.from_dict(values["detectors"])
        if "reward" in values:
            values["reward"] = {**DEFAULT_REWARD_WEIGHTS, **values["reward"]}
        return cls(**values)


class ChartEnv:
    """matplotlib charts in a sandbox; see the module docstring."""

    domain = "chart"

    def __init__(self, config: ChartEnvConfig | None = None):
        self.config = config or ChartEnvConfig()
        self.sandbox = Sandbox(RUNNER, self.config.limits, isolation=self.config.isolation)
        self.isolation = self.sandbox.isolation  # waits for the warm server: first steps are not slow
        self._targets: collections.OrderedDict[str, Target | None] = collections.OrderedDict()

    def close(self) -> None:
        self.sandbox.close()

    def __enter__(self) -> "ChartEnv":
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def request(self, task: Task, fidelity: bool) -> dict[str, Any]:
        config = self.config
        return {"width": task.width, "height": task.height, "dpi": task.dpi, "fidelity": fidelity,
                "tight_bbox": config.tight_bbox, "max_figures": config.max_figures,
                "max_pixels": config.max_pixels}

    def step(self, task: Task, program: str) -> Feedback:
        """Judge one program; see the module docstring. Raises only for a non-chart task."""
        if task.domain != self.domain:
            raise ValueError(f"ChartEnv got a {task.domain!r} task ({task.task_id}); route it to its own env")
        start = time.perf_counter()
        if not isinstance(program, str):
            return Feedback.failure(ExecError("InvalidProgram", f"the program must be text, got "
                                              f"{type(program).__name__}"),
                                    reward_parts={"exec": 0.0})
        if not program.strip():
            return Feedback.failure(ExecError("EmptyProgram", "the answer holds no program; write a "
                                              "matplotlib script"), reward_parts={"exec": 0.0})
        if len(program) > self.config.max_code_chars:
            return Feedback.failure(ExecError("ProgramTooLarge", f"the program is {len(program)} "
                                              f"characters, over the limit of {self.config.max_code_chars}; "
                                              "write a shorter program"), reward_parts={"exec": 0.0})
        target = self.target(task) if task.target else None
        target_s = time.perf_counter() - start
        run = self.sandbox.run(program, self.request(task, fidelity=task.target is not None))
        feedback = feedback_from_run(run)
        feedback.timings["target_s"] = target_s
        if feedback.ok:
            feedback = self._judge(feedback, run, target, has_target=task.target is not None)
        feedback.timings["total_s"] = time.perf_counter() - start
        return feedback

    def _judge(self, feedback: Feedback, run: SandboxResult, target: Target | None,
               has_target: bool) -> Feedback:
        """The judge's part: the run's artifacts parsed as data, checked against the pixels,
        detected, traced and scored here, never in the process that ran the program."""
        t = time.perf_counter()
        streams = {"stdout": feedback.stdout, "stderr": feedback.stderr}
        try:
            image = pixels.decode_png(run.artifacts.get("render.png"), self.config.max_pixels)
            scene = scene_from_json(domain_result(run, "scene"), image)
            recording = (metrics.parse_recording(domain_result(run, "fidelity"))
                         if has_target else None)
        except ValueError as err:
            return protocol_failure(f"the run's artifacts cannot be judged: {err}",
                                    feedback.timings, **streams)
        check = verify(scene)
        feedback.timings["verify_s"] = time.perf_counter() - t
        t = time.perf_counter()
        feedback.defects, feedback.notes = split_advisories(
            detectors.detect(scene, self.config.detectors) if self.config.detect else [])
        feedback.timings["detect_s"] = time.perf_counter() - t
        feedback.elements = scene_elements(scene)[:self.config.max_elements]
        feedback.render_png = run.artifacts["render.png"]
        feedback.render_size = (scene.width, scene.height)
        self._reward(feedback, check, image, recording, target, has_target)
        return feedback

    def _reward(self, feedback: Feedback, check: Verification, image, recording: dict | None,
                target: Target | None, has_target: bool) -> None:
        weights = self.config.reward
        parts = {"exec": 1.0, "cleanliness": cleanliness(feedback.defects), "verified": check.score,
                 "visible": check.visible, "explained": check.explained, "ink": check.ink}
        used = ["exec", "cleanliness"]
        if has_target:
            used.append("fidelity")
            if target is None or recording is None:
                parts.update(fidelity=0.0, target_error=1.0)
            else:
                project, official = metrics.project_and_official_scores(recording,
                                                                        target.recording)
                parts.update(project)
                parts.update({f"chartmimic_{view}": value for view, value in official.items()})
                parts["pixel"] = pixels.similarity(image, target.image)
                parts["fidelity"] *= min(1.0, parts["pixel"] / PIXEL_FULL_CREDIT)
        terms = {**parts, "cleanliness": parts["cleanliness"] * check.score}
        total = sum(weights[k] for k in used)
        feedback.reward = sum(weights[k] * terms[k] for k in used) / total if total > 0 else 0.0
        feedback.reward_parts = parts

    def target(self, task: Task) -> Target | None:
        """The task's target program rendered and recorded once (cached); None if it cannot run."""
        key = hashlib.sha1(f"{task.width}x{task.height}@{task.dpi}\0{task.target}".encode(
            "utf-8", "surrogatepass")).hexdigest()
        if key in self._targets:
            self._targets.move_to_end(key)
            return self._targets[key]
        run = self.sandbox.run(task.target, self.request(task, fidelity=True))
        try:
            if not run.ok or not (run.result or {}).get("ok"):
                raise ValueError(str(run.error or (run.result or {}).get("error")))
            recording = metrics.parse_recording(domain_result(run, "fidelity"))
            image = pixels.decode_png(run.artifacts.get("render.png"), self.config.max_pixels)
            target = Target(recording, image)
        except ValueError as err:
            warnings.warn(f"chart task {task.task_id}: its target program does not render ({err}); "
                          f"fidelity is scored 0 for this task. Fix the task's target code.")
            target = None
        self._targets[key] = target
        if len(self._targets) > self.config.target_cache_size:
            self._targets.popitem(last=False)
        return target
