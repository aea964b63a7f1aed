"""The teacher's context: the deterministic feedback text, demonstrations, and prompts cut to fit
with the distill decision taken from what was kept."""
from __future__ import annotations

import dataclasses
import io
import json

import numpy as np
import pytest
from PIL import Image

from envs.feedback import Defect, ExecError, Feedback
from sdpo_jax.teacher_context import feedback_text


def rendered() -> Feedback:
    return Feedback(ok=True, render_size=(600, 400), defects=[
        Defect("low_contrast", 0.4, (10, 10, 80, 30), "title 'x' has contrast 1.2:1", ((7, 7),)),
        Defect("overlap", 0.9, (300, 350, 590, 390), "5 of 9 x-tick labels overlap", ((4, 4), (9, 11))),
        Defect("overflow", 0.4, (500, 100, 700, 300), "axes 0 is 30% outside the figure", ())])


def test_defect_table_is_ordered_by_severity_and_names_where_and_lines():
    text = feedback_text(rendered())
    rows = [line for line in text.splitlines() if line.startswith("| ") and line[2].isdigit()]
    assert [r.split("|")[2].strip() for r in rows] == ["overlap", "low_contrast", "overflow"]
    assert "bottom-right (300,350)-(590,390) | 4, 9-11 |" in rows[0]
    assert "top-left (10,10)-(80,30) | 7 |" in rows[1]


def test_context_is_deterministic_and_capped():
    feedback = rendered()
    shuffled = Feedback(ok=True, render_size=(600, 400), defects=list(reversed(feedback.defects)))
    assert feedback_text(feedback) == feedback_text(shuffled)
    assert feedback_text(feedback, style="json") == feedback_text(shuffled, style="json")
    capped = feedback_text(feedback, max_defects=1)
    assert "(2 more defects not shown)" in capped and "low_contrast" not in capped
    as_json = json.loads(feedback_text(feedback, style="json", max_defects=2))
    assert [d["kind"] for d in as_json["defects"]] == ["overlap", "low_contrast"] and as_json["more_defects"] == 1


def test_failed_run_gives_the_error_and_the_end_of_its_log():
    feedback = Feedback.failure(ExecError("ValueError", "x and y must have same first dimension", 12),
                                stderr="Traceback...\n" + "noise\n" * 500 + "ValueError: x and y")
    text = feedback_text(feedback, max_log_chars=100)
    assert "Error (line 12): ValueError: x and y must have same first dimension" in text
    assert text.endswith("ValueError: x and y") and len(text) < 400


def test_clean_render_says_so():
    assert "no visual defects" in feedback_text(Feedback(ok=True, render_size=(10, 10)))




# ------------------------------------------------------------------ prompts, cutting, distilling
@pytest.fixture(scope="module")
def processor():
    from models.qwen3_vl.processor import Qwen3VLProcessor
    from sdpo_jax.model_loading import size_config
    return Qwen3VLProcessor(size_config("tiny"))


def _task():
    from envs.task import Task
    return Task(domain="chart", task_id="t", instruction="Plot the sales of 2024 as bars.")


def _rows(processor, replies):
    from sdpo_jax.replies import read_replies
    from sdpo_jax.rollout_batch import Rows
    tok = processor.tokenizer
    ids = [tok.encode(reply) for reply in replies]
    tokens = np.zeros((len(ids), max(map(len, ids))), np.int32)
    for row, row_ids in enumerate(ids):
        tokens[row, :len(row_ids)] = row_ids
    lengths = np.array(list(map(len, ids)))
    return Rows(tokens, np.zeros(tokens.shape, np.float32), lengths,
                read_replies(tok, tokens, lengths, np.zeros(len(ids), np.int32), ["python"]))


def test_a_prompt_cut_to_nothing_privileged_is_not_distilled(processor, default_run):
    """A failed row whose error text does not fit keeps no privileged context, so it carries no
    distillation signal (the decision is made on the prompt as kept, not as configured)."""
    from sdpo_jax.rollout_batch import build_train_batch
    from sdpo_jax.sequences import Shapes
    from sdpo_jax.teacher_context import student_messages, teacher_prompt
    failed = Feedback.failure(ExecError("NameError", "name 'sales' is not defined " * 40, 2),
                              stderr="Traceback (most recent call last):\n" * 60)
    context = default_run.context
    bare = teacher_prompt(processor, _task(), None, failed, None,
                          dataclasses.replace(context, show_error=False))
    assert not bare.privileged and not bare.cut
    tight = dataclasses.replace(context, max_prompt_tokens=len(bare.chat.input_ids))
    kept = teacher_prompt(processor, _task(), None, failed, None, tight)
    assert kept.cut and not kept.privileged
    np.testing.assert_array_equal(kept.chat.input_ids, bare.chat.input_ids)
    roomy = teacher_prompt(processor, _task(), None, failed, None, context)
    assert roomy.privileged and not roomy.cut

    rows = _rows(processor, ["```python\nprint(sales)\n```", "```python\nprint(2024)\n```"])
    chat = processor(student_messages(_task(), None))
    shapes = Shapes(response_length=int(rows.lengths.max()), student_prompt_length=64,
                    teacher_prompt_length=len(bare.chat.input_ids), slot_patches=0,
                    student_images=0, teacher_images=0)
    batch = build_train_batch(processor, [_task()], [None], [chat], rows, [failed, failed],
                              shapes=shapes, credit=default_run.credit, context=tight,
                              distill=True, failed_exec_path=True)
    assert batch.loss.distill_mask.tolist() == [0.0, 0.0]
    assert batch.row_stats["teacher/prompts_cut"].tolist() == [1.0, 1.0]


def test_demonstration_is_the_best_better_sibling_never_the_row_itself(processor):
    from sdpo_jax.teacher_context import demonstration
    rows = _rows(processor, ["```python\nbad()\n```", "```python\nok(1)\n```",
                             "```python\nok(2)\n```"])
    feedbacks = [Feedback.failure(ExecError("NameError", "bad", 1)),
                 Feedback(ok=True, reward=0.5), Feedback(ok=True, reward=0.9)]
    siblings = [0, 1, 2]
    assert demonstration(0, siblings, feedbacks, rows.replies, "python") == \
        "```python\nok(2)\n```"
    assert demonstration(2, siblings, feedbacks, rows.replies, "python") is None, "clean row"
    feedbacks[2] = Feedback(ok=True, reward=0.9, defects=[
        Defect("overlap", 0.5, (0, 0, 1, 1), "m")])
    assert demonstration(2, siblings, feedbacks, rows.replies, "python") is None, \
        "no sibling scored higher"
    feedbacks[1] = Feedback(ok=True, reward=0.5, defects=feedbacks[2].defects)
    assert "ok(2)" in demonstration(1, siblings, feedbacks, rows.replies, "python"), \
        "a defective row learns from a better sibling"


def test_opsd_teacher_sees_the_reference_program_and_no_feedback(processor, default_run):
    """The OPSD baseline (context.show_reference): the reference program replaces the render,
    the defect table and the demonstration; a task without a reference has nothing privileged."""
    from sdpo_jax.teacher_context import (FEEDBACK_HEADER, REFERENCE_HEADER, teacher_messages,
                                          teacher_prompt)
    render = Image.new("RGB", (32, 32), "white")
    buffer = io.BytesIO()
    render.save(buffer, format="PNG")
    feedback = dataclasses.replace(rendered(), render_png=buffer.getvalue())
    opsd = dataclasses.replace(default_run.context, show_reference=True)
    task = dataclasses.replace(_task(), target="import matplotlib.pyplot as plt\nplt.plot([3, 1])\n")
    demo = "```python\nx\n```"
    parts = teacher_messages(task, None, feedback, opsd, demo)[0]["content"]
    text = "".join(p["text"] for p in parts if p["type"] == "text")
    assert f"{REFERENCE_HEADER}\n```python\n{task.target.rstrip()}\n```" in text
    assert FEEDBACK_HEADER not in text and "overlap" not in text and "```python\nx" not in text
    assert not any(p["type"] == "image" for p in parts)
    assert teacher_prompt(processor, task, None, feedback, None, opsd).privileged
    no_reference = dataclasses.replace(task, target=None)
    bare = teacher_prompt(processor, no_reference, None, feedback, None, opsd)
    assert not bare.privileged
    assert FEEDBACK_HEADER not in processor.tokenizer.decode(bare.chat.input_ids), \
        "a prompt judged unprivileged must not show the feedback"
