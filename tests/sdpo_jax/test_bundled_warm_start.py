"""The bundled warm start (models/checkpoints/toy_warm_start) is what the main job starts from: it
must still load with the current code and tokenizer, and still predict the programs it learned."""
import numpy as np

from configs.default import WARM_START, get_config
from sdpo_jax.data import generated_tasks
from sdpo_jax.model_loading import build_processor, load_model
from sdpo_jax.run_config import RunConfig
from sdpo_jax.sft import reply_text, spec_of
from sdpo_jax.synthetic.program import write_program
from sdpo_jax.teacher_context import student_messages


def test_the_default_starts_from_the_bundled_warm_start():
    assert get_config().model.checkpoint == WARM_START


def test_the_bundled_warm_start_predicts_held_out_reference_programs():
    """Teacher-forced on clean programs of unseen tasks, the warm start's next-token guesses are
    right ~86% of the time (the template nearly always, the copied data less); random weights, or
    weights read against a changed tokenizer or layout, score near 0."""
    run = RunConfig.from_config(get_config())
    config, model = load_model(WARM_START)
    processor = build_processor(run, config)
    right = total = 0
    tasks = generated_tasks("synthetic:validation:4")
    for index in range(4):
        task = tasks[index]
        chat = processor(student_messages(task, None))
        response = processor.tokenizer.encode(reply_text(write_program(spec_of(task)).code))
        p, r = len(chat.input_ids), len(response)
        ids = np.concatenate([chat.input_ids, response])[None]
        positions = np.concatenate(
            [chat.position_ids, np.tile(p + chat.rope_delta + np.arange(r), (3, 1))], axis=1)
        logits = model(ids, positions[:, None], None, None)[0, p - 1:p + r - 1]
        right += int((np.asarray(logits.argmax(-1)) == np.asarray(response)).sum())
        total += r
    assert right / total > 0.75, f"next-token accuracy {right / total:.3f} on reference programs"
