"""Credit weighting is the same whichever tokenizer segments the reply: on careless synthetic
programs judged by the real chart env, the Qwen3 BPE and the sentencepiece model put the same
weight on every statement, and the lever's own statement gets the most."""
from __future__ import annotations

import dataclasses

import pytest

from configs import default
from envs.pool import EnvPool
from models.tokenizers.load import load_tokenizer
from sdpo_jax.credit import CreditConfig, credit_weights
from sdpo_jax.replies import Reply
from sdpo_jax.synthetic.levers import LEVERS
from sdpo_jax.synthetic.program import write_program
from sdpo_jax.synthetic.spec import ChartSpec
from sdpo_jax.synthetic.tasks import synthetic_task

# the default config's credit, unnormalised so that weights compare across segmentations
CONFIG = CreditConfig(**{**default.get_config().credit.to_dict(), "normalise": "none"})


def statement_weights(tokenizer, text: str, feedback) -> dict[int, float]:
    """Program line -> the largest weight of a token with visible text judged by that line
    (blank tokens differ between segmentations: two newlines are one Qwen3 token, two here)."""
    reply = Reply.read(tokenizer, tokenizer.encode(text), prompt_index=0, language="python")
    assert reply.text == text
    weights = credit_weights(reply, feedback, CONFIG)
    per_line: dict[int, float] = {}
    for line, (start, end), weight in zip(reply.token_lines.tolist(), reply.token_spans, weights):
        if line and text[start:end].strip():
            per_line[line] = max(per_line.get(line, 0.0), round(float(weight), 5))
    return per_line


@pytest.fixture(scope="module")
def judged():
    """One careless program per lever kind, on the first tasks where that lever is defective."""
    picked, index = {}, 0
    while len(picked) < len(LEVERS):
        task = dataclasses.replace(synthetic_task("validation", index), target=None)
        spec = ChartSpec.from_json(task.meta["spec"])
        for name, lever in LEVERS.items():
            if name not in picked and lever.defective(spec):
                picked[name] = (task, write_program(spec, {name}))
        index += 1
    with EnvPool(2, warm=("chart",)) as pool:
        feedbacks = pool.map([(task, program.code) for task, program in picked.values()])
    return [(name, program, feedback)
            for (name, (_, program)), feedback in zip(picked.items(), feedbacks)]


def test_both_tokenizers_credit_the_same_statements(judged):
    qwen, small = load_tokenizer("qwen3"), load_tokenizer("synthetic_charts")
    for name, program, feedback in judged:
        text = f"Here is the program:\n```python\n{program.code}```\nDone."
        by_qwen = statement_weights(qwen, text, feedback)
        by_small = statement_weights(small, text, feedback)
        assert by_qwen == by_small, f"{name}: Qwen3 {by_qwen} vs sentencepiece {by_small}"
        lever_line = program.spans[name][0]
        assert by_small[lever_line] == max(by_small.values()) > 1.0, \
            f"{name}: its statement (line {lever_line}) must get the most credit: {by_small}"
