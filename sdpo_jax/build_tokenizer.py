"""Build the sentencepiece tokenizer of toy-scale runs from synthetic chart tasks.

    python -m sdpo_jax.build_tokenizer [--tasks 4000] [--vocab-size 2048] OUT.model

The committed models/tokenizers/synthetic_charts.model is this command with its defaults
(minutes: it judges programs in a 2-worker chart env pool); the same code, matplotlib and fonts
rebuild it byte for byte. The corpus (`tokenizer_corpus`), for each train task: its instruction,
alone and as a chat prompt (with an image placeholder, as the teacher's render arrives), its
reference program bare and fenced as a reply, and one careless variant from the careless prior.
Every JUDGED_EVERY-th careless variant is judged by the chart env, and the teacher's text for that
real Feedback (the defect table with its lines, or the error) joins the corpus. Training is
`models.tokenizers.sentencepiece_tokenizer.train_sentencepiece` (deterministic).
"""
from __future__ import annotations

import argparse
import dataclasses
import sys

import numpy as np

from envs.pool import EnvPool
from models.qwen3_vl.chat_template import render_chat
from models.tokenizers.sentencepiece_tokenizer import train_sentencepiece
from sdpo_jax.synthetic.levers import sample_careless
from sdpo_jax.synthetic.program import write_program
from sdpo_jax.synthetic.spec import ChartSpec
from sdpo_jax.synthetic.tasks import synthetic_task
from sdpo_jax.teacher_context import feedback_text

JUDGED_EVERY = 4
CARELESS_PROBABILITY = 0.5


def fenced(code: str) -> str:
    return f"```python\n{code}```"


def tokenizer_corpus(num_tasks: int, workers: int = 2) -> list[str]:
    """The corpus texts of train tasks 0 .. num_tasks - 1 (see the module docstring)."""
    texts: list[str] = []
    judged = []
    for index in range(num_tasks):
        task = synthetic_task("train", index)
        spec = ChartSpec.from_json(task.meta["spec"])
        careless = write_program(spec, sample_careless(spec, CARELESS_PROBABILITY,
                                                       np.random.default_rng([index, 7])))
        prompt = render_chat([{"role": "user", "content": [
            {"type": "image", "image": None}, {"type": "text", "text": task.instruction}]}],
            add_generation_prompt=True).text
        texts += [task.instruction, task.target, careless.code,
                  prompt + fenced(task.target) + "<|im_end|>\n"]
        if index % JUDGED_EVERY == 0:
            judged.append((dataclasses.replace(task, target=None), careless.code))  # defects only
    with EnvPool(workers, warm=("chart",)) as pool:
        texts += [feedback_text(feedback) for feedback in pool.map(judged)]
    return texts


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m sdpo_jax.build_tokenizer",
                                     description=__doc__.split("\n")[0])
    parser.add_argument("--tasks", type=int, default=4000, help="train tasks in the corpus")
    parser.add_argument("--vocab-size", type=int, default=2048)
    parser.add_argument("out", help="the .model file to write")
    args = parser.parse_args(argv)
    texts = tokenizer_corpus(args.tasks)
    with open(args.out, "wb") as f:
        f.write(train_sentencepiece(texts, args.vocab_size))
    print(f"trained a {args.vocab_size}-token sentencepiece model on {len(texts)} texts "
          f"({sum(map(len, texts))} characters) into {args.out}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
