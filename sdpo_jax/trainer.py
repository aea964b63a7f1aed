"""The training loop of both modes of a run (config.mode):

    sdpo: tasks -> rollouts -> env feedback -> credit + teacher -> Visual-SDPO update;
    sft:  tasks -> careless and revision examples (sdpo_jax.sft) -> cross-entropy update.

    trainer = Trainer(config, workdir)     # validates the config, builds model/mesh/pool/data
    trainer.run()                          # resumes from the latest checkpoint in workdir

Both share the checkpoints, metrics (JSONL + TensorBoard), plots, periodic evaluation on a fixed
held-out set (config.eval, sdpo_jax.evaluation) and the final export of the policy to
workdir/model, which the next run's config.model.checkpoint can name.

Overlap: with `rollout.max_off_policy_lag = 1`, batch k+1 is sampled on the device while the env
workers render batch k, so batch k+1 comes from the parameters one update older than the ones
it trains (the lag is logged as `rollout/policy_lag`). With 0 the loop is strictly on-policy.
Exact resume: the checkpoint after step k holds the parameters, optimizer and teacher state,
the data position, and the already-sampled rollouts of batch k+1 (when lagging), so a resumed
run reproduces an uninterrupted one bit for bit on CPU.
Pods: every host samples the same global batch (one SPMD program); a host renders, credits and
builds teacher prompts only for the rows its devices hold, which are whole prompt groups
(`_own_rows`), and the step's inputs are assembled from each host's rows
(train_step.InputLayout). Only small per-row numbers cross hosts, for the logged metrics.
"""
from __future__ import annotations

import dataclasses
import logging
import os
import shutil
import time
from collections import Counter
from typing import Any

import jax
import numpy as np
from flax import nnx
from jax.sharding import NamedSharding, PartitionSpec
from PIL import Image

from envs.pool import EnvPool
from envs.registry import spec as domain_spec
from envs.task import Task
from models.qwen3_vl.convert import save_flax_checkpoint
from models.sharding import make_mesh
from models.tokenizers.base import Tokenizer
from sdpo_jax.checkpoint import TrainCheckpointer, abstract_like
from sdpo_jax.data import DataState, TaskMixture, load_tasks
from sdpo_jax.evaluation import Evaluator
from sdpo_jax.metrics import MetricsWriter, plot_metrics
from sdpo_jax.model_loading import build_model, build_processor
from sdpo_jax.multihost import allgather_objects, to_host
from sdpo_jax.replies import read_replies
from sdpo_jax.rollout_batch import Rows, abstract_train_inputs, build_train_batch
from sdpo_jax.run_config import RunConfig, image_patches
from sdpo_jax.sampler import Prompt, Sampler
from sdpo_jax.sft import PendingExamples, SupervisedExamples, pack_supervised
from sdpo_jax.targets import TargetImages
from sdpo_jax.teacher_context import student_messages
from sdpo_jax.train_step import (InputLayout, init_train_state, make_supervised_step,
                                 make_train_step, shardings_of)

MODEL_DIR = "model"  # workdir/model: the exported policy

log = logging.getLogger("sdpo_jax")


@dataclasses.dataclass
class Batch:
    """One prompt batch and its sampled rows, as the loop carries it from sampling to training."""

    data_before: dict[str, Any]  # data position before these tasks were drawn (for resume)
    tasks: list[Task]
    images: list[Image.Image | None]
    chats: list[Any]
    sampled: dict[str, np.ndarray]  # every row's tokens, logprobs, lengths, prompt_index
    rows: Rows  # this host's rows, with their replies
    policy_version: int
    sample_s: float = 0.0


class Trainer:
    def __init__(self, config: Any, workdir: str):
        self.run_config = RunConfig.from_config(config)
        rc = self.run_config
        self.data = TaskMixture(rc.data.sources, seed=rc.seed)  # bad data files stop us here
        self.workdir = workdir
        self.is_main = jax.process_index() == 0
        self.mesh = make_mesh(**dataclasses.asdict(rc.mesh))
        self.model_config, model = build_model(rc, self.mesh)
        self.processor = build_processor(rc, self.model_config)
        self.suppress = unsampleable_ids(self.model_config, self.processor.tokenizer)
        teacher_weights = rc.teacher.weights if rc.mode == "sdpo" else "live"
        self.graphdef, self.state = init_train_state(model, rc.optim, teacher_weights)
        self.state_shardings = shardings_of(self.state)
        del model
        rules = self.model_config.sharding_rules
        if rc.mode == "sdpo":
            self.shapes = rc.shapes(self.model_config)
            self.inputs = InputLayout.on_mesh(self.mesh, rules, *abstract_train_inputs(
                self.model_config, rc.rollout.rows, self.shapes, rc.teacher.distill))
            self.own_rows = self._own_rows()
            self.train_step = make_train_step(self.graphdef, rc.step, rc.optim,
                                              self.state_shardings, self.mesh, rules)
            self.sampler = Sampler(dataclasses.replace(
                rc.sampler_for(self.model_config), suppress_token_ids=self.suppress),
                self.processor.tokenizer, mesh=self.mesh)
        else:
            self.train_step = make_supervised_step(self.graphdef, rc.sft.chunk_size, rc.optim,
                                                   self.state_shardings, self.mesh, rules)
        self.pool = EnvPool(rc.env.num_workers, rc.env.domains, item_timeout_s=rc.env.timeout_s)
        if rc.mode == "sft":
            self.examples = SupervisedExamples(self.processor, self.pool, rc.sft, rc.context,
                                               rc.seed)
        self.evaluator, self.eval_tasks = self._evaluation()
        self.checkpointer = TrainCheckpointer(os.path.join(workdir, "checkpoints"),
                                              max_to_keep=rc.train.keep_checkpoints)
        self.metrics = MetricsWriter(workdir, enabled=self.is_main)
        self.target_images = TargetImages(self.pool, rc.shows_targets)
        self.skipped_targets = 0

    def _own_rows(self) -> slice:
        """The rows this host builds: those its devices hold in the step's inputs. They must be
        whole prompt groups, so a group's demonstration and its GRPO statistics need no other
        host (the loss computes the statistics on device over the global batch anyway), and
        every host must own an equal, disjoint share."""
        rows, group = self.inputs.rows, self.run_config.rollout.group_size
        share = self.run_config.rollout.rows // jax.process_count()
        if rows.start % group or rows.stop % group or rows.stop - rows.start != share:
            raise ValueError(
                f"process {jax.process_index()} holds rows {rows.start}:{rows.stop} of "
                f"{self.run_config.rollout.rows}: hosts must own {share} rows each, in whole "
                f"groups of config.rollout.group_size={group}. Fix: make "
                f"config.rollout.prompts_per_step a multiple of the process count and of the "
                f"mesh's batch shards, with the batch axes (config.mesh.data x fsdp) spanning "
                f"every process.")
        return rows

    def _evaluation(self) -> tuple[Evaluator | None, list[Task]]:
        """The periodic evaluation (config.eval; every 0: none) and its fixed task list."""
        e = self.run_config.eval
        if not e.every:
            return None, []
        tasks = list(load_tasks(e.source)[:e.count])
        return Evaluator(self.processor, self.pool, e, self.run_config.context, self.suppress,
                         self.mesh), tasks

    # ------------------------------------------------------------------ prompts and rollouts
    def _draw_tasks(self, count: int) -> tuple[list[Task], list[Image.Image | None]]:
        """`count` tasks whose reference renders (where they need one) succeeded."""
        tasks, images = [], []
        while len(tasks) < count:
            drawn = self.data.next_batch(count - len(tasks))
            for task, image in zip(drawn, self.target_images(drawn)):
                if image is None and self.target_images.wanted(task):
                    self.skipped_targets += 1
                    log.warning("skipping task %s: its reference did not render", task.task_id)
                    continue
                tasks.append(task)
                images.append(image)
        return tasks, images

    def _prompts(self, tasks, images):
        return [self.processor(student_messages(t, im)) for t, im in zip(tasks, images)]

    def _sample(self, index: int, policy_version: int) -> Batch:
        """Draw and sample batch `index` with the current parameters (`policy_version` updates)."""
        before = self.data.state.to_json()
        tasks, images = self._draw_tasks(self.run_config.rollout.prompts_per_step)
        chats = self._prompts(tasks, images)
        start = time.perf_counter()
        prompts = [Prompt.from_chat(i, chat) for i, chat in enumerate(chats)]
        model = nnx.merge(self.graphdef, self.state.params)
        key = jax.random.fold_in(jax.random.key(self.run_config.seed), index)
        rollouts = self.sampler(model, prompts, key)
        r = self.shapes.response_length
        tokens = np.zeros((len(rollouts.lengths), r), np.int32)
        logprobs = np.zeros((len(rollouts.lengths), r), np.float32)
        width = min(r, rollouts.tokens.shape[1])
        tokens[:, :width] = rollouts.tokens[:, :width]
        logprobs[:, :width] = rollouts.tempered_logprobs[:, :width]
        sampled = dict(tokens=tokens, logprobs=logprobs,
                       lengths=np.minimum(rollouts.lengths, r).astype(np.int32),
                       prompt_index=rollouts.prompt_ids.astype(np.int32))
        return Batch(before, tasks, images, chats, sampled, self._rows(tasks, sampled),
                     policy_version=policy_version, sample_s=time.perf_counter() - start)

    def _rows(self, tasks: list[Task], sampled: dict[str, np.ndarray]) -> Rows:
        """This host's sampled rows with their replies, read once here (sdpo_jax.replies)."""
        own = {name: value[self.own_rows] for name, value in sampled.items()}
        languages = [domain_spec(task.domain).language for task in tasks]
        return Rows(own["tokens"], own["logprobs"], own["lengths"], read_replies(
            self.processor.tokenizer, own["tokens"], own["lengths"], own["prompt_index"],
            languages))

    # ------------------------------------------------------------------ the loop
    def run(self, until: int | None = None) -> dict[str, float]:
        """Train to config.train.num_steps (or stop after step `until`, checkpointed, as a
        preempted job would), resuming from the workdir's latest checkpoint; at the last step
        the policy is exported to workdir/model (a checkpoint folder any config can start
        from, or `python -m sdpo_jax.evaluate` can read)."""
        rc = self.run_config
        num_steps = rc.train.num_steps
        stop = num_steps if until is None else min(until, num_steps)
        start_step, pending = self._restore()
        if start_step >= num_steps:
            log.info("workdir %s already holds step %d; nothing to do", self.workdir, start_step)
            self.close()
            return {}
        if start_step == 0 and self.evaluator is not None:
            self.metrics.write(0, self._evaluate(0))
        last: dict[str, float] = {}
        progress = _progress(start_step, num_steps, self.is_main)
        for step in range(start_step, stop):
            if rc.mode == "sdpo":
                last, pending = self._sdpo_step(step, pending)
            else:
                last, pending = self._supervised_step(step, pending)
            if self.evaluator is not None and ((step + 1) % rc.eval.every == 0
                                               or step + 1 == num_steps):
                last.update(self._evaluate(step + 1))
            self.metrics.write(step + 1, last)
            progress.update(1)
            progress.set_postfix(loss=f"{last['loss/total']:.4f}")
            if (step + 1) % rc.train.checkpoint_every == 0 or step + 1 == stop:
                self._save(step + 1, pending)
            if self.is_main and ((step + 1) % rc.train.plot_every == 0 or step + 1 == stop):
                plot_metrics(self.metrics.jsonl_path, os.path.join(self.workdir, "plots.png"))
        progress.close()
        if stop == num_steps:
            self.export(os.path.join(self.workdir, MODEL_DIR))
        self.close()
        return last

    def _sdpo_step(self, step: int, batch: Batch | None) -> tuple[dict[str, float], Batch | None]:
        """Render batch `step`'s rollouts, build credit and teacher prompts, update; with
        off-policy lag 1, the next batch is sampled while the envs work."""
        rc, num_steps = self.run_config, self.run_config.train.num_steps
        step_start = time.perf_counter()
        batch = batch or self._sample(step, policy_version=step)
        ids = [self.pool.submit(batch.tasks[reply.prompt_index], reply.program.code)
               for reply in batch.rows.replies]  # this host renders only its own rows
        lagging = rc.rollout.max_off_policy_lag >= 1 and step + 1 < num_steps
        next_batch = self._sample(step + 1, policy_version=step) if lagging else None
        wait_start = time.perf_counter()
        done = dict(self.pool.results(ids))
        env_wait = time.perf_counter() - wait_start
        feedbacks = [done[i] for i in ids]
        train_start = time.perf_counter()
        shapes, slot_offsets = self.inputs.local_shapes(self.shapes)
        train = build_train_batch(
            self.processor, batch.tasks, batch.images, batch.chats, batch.rows, feedbacks,
            shapes=shapes, credit=rc.credit, context=rc.context, distill=rc.teacher.distill,
            failed_exec_path=rc.teacher.failed_exec_path, slot_offsets=slot_offsets)
        self.state, device_metrics = self.train_step(
            self.state, *self.inputs.place(train.student, train.teacher, train.loss))
        device_metrics = jax.tree.map(to_host, device_metrics)
        train_s = time.perf_counter() - train_start
        step_s = time.perf_counter() - step_start
        metrics = self._step_metrics(step, batch, feedbacks, train.row_stats, device_metrics,
                                     env_wait=env_wait, train_s=train_s, step_s=step_s)
        return metrics, next_batch

    def _supervised_step(self, step: int, pending: PendingExamples | None
                         ) -> tuple[dict[str, float], PendingExamples | None]:
        """One warm-start step: build the plain and revision examples of `pending` (the step's
        tasks, their careless attempts judged by the envs), submit the next step's attempts so
        they render while the device trains this one, update by cross-entropy."""
        rc = self.run_config
        start = time.perf_counter()
        pending = pending or self._submit_examples(step)
        plain, revisions = self.examples.collect(pending)
        examples = plain + revisions
        batch, placed = pack_supervised(self.model_config, examples, config=rc.sft,
                                        context=rc.context, target_images=rc.shows_targets,
                                        slot_patches=image_patches(rc.data.image_max_pixels,
                                                                   self.model_config))
        examples_s = time.perf_counter() - start
        next_pending = self._submit_examples(step + 1) if step + 1 < rc.train.num_steps else None
        self.state, device_metrics = self.train_step(self.state, batch)
        metrics = {k: float(np.asarray(to_host(v))) for k, v in device_metrics.items()}
        step_s = time.perf_counter() - start
        metrics.update({"time/examples_s": examples_s, "time/step_s": step_s,
                        "throughput/tokens_per_s": float(batch.mask.sum()) / step_s,
                        "sft/careless_levers": float(np.mean([len(e.careless)
                                                              for e, kept in zip(examples, placed)
                                                              if kept] or [0.0])),
                        "sft/dropped_examples": float(len(placed) - sum(placed)),
                        "sft/row_fill": float(np.asarray(batch.sequences.mask).mean())})
        return metrics, next_pending

    def _submit_examples(self, step: int) -> PendingExamples:
        before = self.data.state.to_json()
        tasks, images = self._draw_tasks(self.run_config.sft.examples_per_step)
        return self.examples.submit(step, tasks, images, data_before=before)

    def _evaluate(self, step: int) -> dict[str, float]:
        """The current policy on the fixed evaluation tasks, as eval/* metrics."""
        start = time.perf_counter()
        model = nnx.merge(self.graphdef, self.state.params)
        report = self.evaluator(model, self.eval_tasks, self.target_images(self.eval_tasks),
                                seed=self.run_config.seed)
        if self.is_main:
            report.write(os.path.join(self.workdir, "eval", f"step_{step:06d}"))
        metrics = {f"eval/{k}": float(v) for k, v in report.summary.items() if v is not None}
        metrics["time/eval_s"] = time.perf_counter() - start
        return metrics

    def export(self, folder: str) -> None:
        """The current policy as a checkpoint folder: params, config.json and the tokenizer."""
        if self.is_main and os.path.isdir(folder):
            shutil.rmtree(folder)  # a finished run exported again after a resume
        save_flax_checkpoint(nnx.merge(self.graphdef, self.state.params), folder)
        if self.is_main:
            self.processor.tokenizer.save(folder)
        log.info("exported the policy to %s", folder)

    def _step_metrics(self, step, batch: Batch, feedbacks, row_stats, device_metrics, *,
                      env_wait: float, train_s: float, step_s: float) -> dict[str, float]:
        """The step's metrics over every host's rows: each host contributes a few numbers per
        row (reward, exec, reward parts, defect counts, its row_stats), never its Feedback."""
        local = [dict({name: float(values[row]) for name, values in row_stats.items()},
                      reward=float(f.reward), ok=float(f.ok), parts=dict(f.reward_parts),
                      kinds=Counter(d.kind for d in f.defects))
                 for row, f in enumerate(feedbacks)]
        rows = allgather_objects(local)
        rewards = np.array([row["reward"] for row in rows])
        parts, kinds = Counter(), Counter()
        for row in rows:
            parts.update(row["parts"])
            kinds.update(row["kinds"])
        n = len(rows)
        lengths = batch.sampled["lengths"]
        tokens = float(lengths.sum())
        out = {k: float(np.asarray(v)) for k, v in device_metrics.items()}
        out.update({name: float(np.mean([row[name] for row in rows])) for name in row_stats})
        out.update({
            "reward/mean": float(rewards.mean()), "reward/std": float(rewards.std()),
            "env/exec_rate": float(np.mean([row["ok"] for row in rows])),
            "env/defects_per_rollout": sum(kinds.values()) / n,
            "rollout/policy_lag": float(step - batch.policy_version),
            "rollout/length_mean": float(lengths.mean()),
            "data/skipped_targets": float(self.skipped_targets),
            "time/sample_s": batch.sample_s, "time/env_wait_s": env_wait,
            "time/train_s": train_s, "time/step_s": step_s,
            "time/env_wait_share": env_wait / max(step_s, 1e-9),
            "throughput/response_tokens_per_s": tokens / max(step_s, 1e-9),
        })
        out.update({f"reward/{k}": v / n for k, v in parts.items()})
        out.update({f"defects/{k}": v / n for k, v in kinds.items()})
        return out

    # ------------------------------------------------------------------ checkpoints
    def _save(self, step: int, pending: Batch | PendingExamples | None) -> None:
        arrays = {"state": self.state}
        host: dict[str, Any] = {"step": step, "data": self.data.state.to_json(), "pending": None,
                                "skipped_targets": self.skipped_targets}
        if isinstance(pending, PendingExamples):  # sft: rewind; the resumed run redraws them
            host["data"] = pending.data_before
        elif pending is not None:  # sdpo with lag: the next batch's rollouts are already sampled
            arrays["pending"] = dict(pending.sampled)
            host["pending"] = {"data_before": pending.data_before,
                               "policy_version": pending.policy_version}
        self.checkpointer.save(step, arrays, host)

    def _restore(self) -> tuple[int, Batch | None]:
        step = self.checkpointer.latest_step()
        if step is None:
            return 0, None
        host = self.checkpointer.restore_host(step)
        target = {"state": abstract_like(self.state)}
        if host["pending"] is not None:
            rows = self.run_config.rollout.rows
            r = self.shapes.response_length
            everywhere = NamedSharding(self.mesh, PartitionSpec())
            target["pending"] = {
                "tokens": jax.ShapeDtypeStruct((rows, r), np.int32, sharding=everywhere),
                "logprobs": jax.ShapeDtypeStruct((rows, r), np.float32, sharding=everywhere),
                "lengths": jax.ShapeDtypeStruct((rows,), np.int32, sharding=everywhere),
                "prompt_index": jax.ShapeDtypeStruct((rows,), np.int32, sharding=everywhere)}
        arrays, host = self.checkpointer.restore(step, target)
        self.state = arrays["state"]
        self.skipped_targets = host["skipped_targets"]
        self.metrics.truncate_after(step)
        pending = None
        if host["pending"] is not None:
            meta = host["pending"]
            self.data.state = DataState.from_json(meta["data_before"])
            tasks, images = self._draw_tasks(self.run_config.rollout.prompts_per_step)
            p = {k: np.asarray(v) for k, v in jax.tree.map(to_host, arrays["pending"]).items()}
            pending = Batch(meta["data_before"], tasks, images, self._prompts(tasks, images), p,
                            self._rows(tasks, p), policy_version=meta["policy_version"])
        self.data.state = DataState.from_json(host["data"])
        log.info("resumed from %s at step %d", self.checkpointer.directory, step)
        return step, pending

    def close(self) -> None:
        self.checkpointer.close()
        self.pool.close()
        self.metrics.close()


def unsampleable_ids(config, tokenizer: Tokenizer) -> tuple[int, ...]:
    """Ids the policy must never write: image/video placeholders (a teacher-forced pass would
    swap them for image features), a sentencepiece model's <unk>, and the embedding's padding
    rows past the tokenizer."""
    unknown = () if tokenizer.unknown_id is None else (tokenizer.unknown_id,)
    return (config.image_token_id, config.video_token_id, *unknown,
            *range(len(tokenizer), config.text.vocab_size))


class _NoProgress:
    def update(self, n):
        pass

    def set_postfix(self, **kw):
        pass

    def close(self):
        pass


def _progress(start: int, total: int, enabled: bool):
    if not enabled:
        return _NoProgress()
    from tqdm import tqdm
    return tqdm(total=total, initial=start, desc="train", unit="step", dynamic_ncols=True)
