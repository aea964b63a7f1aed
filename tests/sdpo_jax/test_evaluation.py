"""The evaluator: a fixed program set gives a known table; files per attempt; the with-feedback
path revises exactly the flawed attempts and reports the uplift it measured."""
import json

import numpy as np
import pytest
from flax import nnx

from envs.pool import EnvPool
from envs.task import Task
from models.qwen3_vl.model import Qwen3VL
from models.qwen3_vl.processor import Qwen3VLProcessor
from sdpo_jax.evaluation import EvalConfig, EvalReport, Evaluator
from sdpo_jax.model_loading import size_config
from sdpo_jax.replies import Reply

HEAD = "import matplotlib.pyplot as plt\nfig, ax = plt.subplots(figsize=(4, 3))\n"
PROGRAMS = {
    "clean_bar": HEAD + "ax.bar(['a', 'b', 'c'], [3, 1, 2])\nax.set_title('Sales')\n",
    "pale_title": HEAD + "ax.bar(['a', 'b'], [3, 4])\nax.set_title('Sales', color='#f6f6f6')\n",
    "crash": HEAD + "ax.bar(labels, [1, 2])\n",
    "clean_line": HEAD + "ax.plot([1, 2, 3], [2, 4, 3])\nax.set_title('Trend')\n",
}


@pytest.fixture(scope="module")
def world(default_run):
    config = size_config("tiny")
    processor = Qwen3VLProcessor(config)
    pool = EnvPool(2, {})
    evaluator = Evaluator(processor, pool, EvalConfig(
        samples=1, temperature=0.0, max_new_tokens=8, max_prompt_tokens=128, prompts_per_call=4,
        with_feedback=True), context=default_run.context)
    yield dict(config=config, processor=processor, evaluator=evaluator)
    pool.close()


def _tasks():
    return [Task(domain="chart", task_id=name, instruction=f"Draw {name}.", width=400, height=300)
            for name in PROGRAMS]


def test_a_fixed_program_set_gives_a_known_table(world, tmp_path):
    tok = world["processor"].tokenizer
    replies = [Reply.read(tok, tok.encode(f"```python\n{code}```"), i, "python")
               for i, code in enumerate(PROGRAMS.values())]
    report = world["evaluator"].judge(_tasks(), replies)
    summary = report.summary
    assert summary["attempts"] == 4
    assert summary["exec_rate"] == 0.75 and summary["defect_free_rate"] == 0.5
    assert summary["defect_rate/low_contrast"] == 0.25
    assert [k for k in summary if k.startswith("defect_rate/")] == ["defect_rate/low_contrast"]
    assert "teacher_uplift" not in summary, "no revisions, no uplift"
    assert "| defect_free_rate | 0.500 |" in report.table()
    report.write(str(tmp_path))
    written = json.loads((tmp_path / "summary.json").read_text())
    assert written["summary"]["exec_rate"] == 0.75 and len(written["items"]) == 4
    assert {i["task_id"]: i["defect_kinds"] for i in written["items"]}["pale_title"] == \
        ["low_contrast"]
    item = tmp_path / "items" / "pale_title" / "0"
    assert {p.name for p in item.iterdir()} == {"program.py", "feedback.json", "render.png",
                                                "defects.png", "scores.json"}
    assert not (tmp_path / "items" / "crash" / "0" / "render.png").exists()


def test_uplift_counts_flawed_attempts_fixed_by_their_revision(world):
    tok = world["processor"].tokenizer
    tasks = _tasks()
    first = world["evaluator"].judge(tasks, [
        Reply.read(tok, tok.encode(f"```python\n{code}```"), i, "python")
        for i, code in enumerate(PROGRAMS.values())]).attempts
    fixes = world["evaluator"].judge(tasks, [
        Reply.read(tok, tok.encode(PROGRAMS["clean_bar"]), i, "python") for i in (1, 2)]).attempts
    revisions = {(a.task_id, 0): a for a in fixes}
    summary = EvalReport(first, revisions).summary
    assert summary["defect_free_rate_with_feedback"] == 1.0
    assert summary["teacher_uplift"] == 0.5 and summary["revision_defect_free_rate"] == 1.0


@pytest.mark.slow
def test_a_model_is_sampled_and_its_flawed_attempts_revised_with_their_feedback(world):
    model = Qwen3VL(world["config"], rngs=nnx.Rngs(0))
    tasks = _tasks()[:2]
    report = world["evaluator"](model, tasks, [None, None])
    assert [a.task_id for a in report.attempts] == ["clean_bar", "pale_title"]
    flawed = {(a.task_id, a.sample) for a in report.attempts if not a.defect_free}
    assert set(report.revisions) == flawed, "exactly the flawed attempts are revised"
    summary = report.summary
    assert np.isclose(summary["teacher_uplift"],
                      summary["defect_free_rate_with_feedback"] - summary["defect_free_rate"])
    assert all(len(a.reply.token_ids) <= 8 for a in report.attempts)
