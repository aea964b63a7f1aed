"""The learning-signal sweep's bookkeeping: finished runs are kept, interrupted ones resumed in
place, failures stop the sweep without marking the run done, and the rollouts fraction reads
the curves it is given."""
from __future__ import annotations

import importlib.util
import json
import os
import sys

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
_spec = importlib.util.spec_from_file_location(
    "learning_signal", os.path.join(ROOT, "benchmarks", "learning_signal.py"))
signal = sys.modules["learning_signal"] = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(signal)


def test_a_finished_run_is_not_run_again(tmp_path, monkeypatch):
    run = signal.Run("sdpo", 0)
    workdir = tmp_path / run.name
    workdir.mkdir(parents=True)
    (workdir / "done.json").write_text("{}")
    monkeypatch.setattr(signal.subprocess, "call", lambda *a, **k: pytest.fail("re-ran"))
    assert signal.train(run, str(tmp_path), "warm", ()) == str(workdir)


def test_an_interrupted_run_resumes_in_its_workdir_and_is_then_marked_done(tmp_path, monkeypatch):
    calls = []
    monkeypatch.setattr(signal.subprocess, "call", lambda command, **k: calls.append(command) or 0)
    run = signal.Run("grpo", 1, ("--config.optim.learning_rate=0.001",))
    workdir = tmp_path / run.name
    workdir.mkdir(parents=True)
    (workdir / "metrics.jsonl").write_text('{"step": 3}\n')  # what an interrupted run leaves
    signal.train(run, str(tmp_path), "warm/model", ("--config.train.num_steps=6",))
    signal.train(run, str(tmp_path), "warm/model", ("--config.train.num_steps=6",))
    assert len(calls) == 1, "the second call finds the run finished"
    command = calls[0]
    assert f"--workdir={workdir}" in command and "--config=configs/toy_grpo.py" in command
    assert {"--config.seed=1", "--config.model.checkpoint=warm/model",
            "--config.train.num_steps=6", "--config.optim.learning_rate=0.001"} <= set(command)
    assert json.loads((workdir / "done.json").read_text())["command"] == command[2:]


def test_a_failed_run_stops_the_sweep_and_stays_unfinished(tmp_path, monkeypatch):
    monkeypatch.setattr(signal.subprocess, "call", lambda *a, **k: 1)
    run = signal.Run("opsd", 0)
    with pytest.raises(SystemExit, match="train.log"):
        signal.train(run, str(tmp_path), "warm", ())
    assert not (tmp_path / run.name / "done.json").exists()


def _record(curve: dict[int, float]) -> dict:
    return {"evals": [{"step": s, signal.HEADLINE: v} for s, v in curve.items()],
            "diagnostics": {}}


def test_rollouts_fraction_is_the_first_step_reaching_grpos_final_rate():
    grpo = [_record({0: 0.2, 20: 0.3, 40: 0.4, 60: 0.5}), _record({0: 0.2, 20: 0.3, 40: 0.4,
                                                                   60: 0.3})]
    sdpo = [_record({0: 0.2, 20: 0.35, 40: 0.6, 60: 0.7}), _record({0: 0.2, 20: 0.45, 40: 0.5,
                                                                    60: 0.7})]
    assert signal.mean_curve(sdpo)[1] == pytest.approx((20, 0.4, 0.35, 0.45))
    assert signal.rollouts_fraction(sdpo, grpo, grpo_steps=60) == pytest.approx(20 / 60)
    never = [_record({0: 0.1, 60: 0.2})]
    assert signal.rollouts_fraction(never, grpo, grpo_steps=60) is None
    flat = [_record({0: 0.2, 60: 0.2})]
    assert signal.rollouts_fraction(sdpo, flat, grpo_steps=60) is None, "GRPO never improved"
    assert signal.best_grpo_lr({1e-4: grpo[:1], 3e-4: grpo[1:]}) == 1e-4


def test_examples_are_the_first_flawed_tasks_before_and_the_same_tasks_after(tmp_path):
    run = tmp_path / "sdpo" / "seed_0"
    for step, flawed in (("step_000000", {"t1", "t3", "t4"}), ("step_000030", set())):
        folder = run / "eval" / step
        items = []
        for task in ("t0", "t1", "t2", "t3", "t4"):
            attempt = folder / "items" / task / "0"
            (attempt / "revision").mkdir(parents=True)
            (attempt / "program.py").write_text(f"# {task} at {step}\n")
            items.append({"task_id": task, "sample": 0, "defect_free": task not in flawed})
        (folder / "summary.json").write_text(json.dumps({"summary": {}, "items": items}))
    chosen = signal.export_examples(str(run), str(tmp_path / "examples"), count=2)
    assert chosen == ["t1", "t3"]
    for task in chosen:
        assert (tmp_path / "examples" / task / "before" / "program.py").read_text() == \
            f"# {task} at step_000000\n"
        assert (tmp_path / "examples" / task / "after" / "program.py").read_text() == \
            f"# {task} at step_000030\n"
        assert not (tmp_path / "examples" / task / "before" / "revision").exists()
