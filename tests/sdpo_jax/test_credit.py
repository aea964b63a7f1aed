"""Credit weights on replies of real code, tokenised by the real Qwen3 tokenizer and read once
into a Reply (sdpo_jax.replies): the traced statements, and only they, are amplified."""
from __future__ import annotations

import ast
import dataclasses
import sys
import traceback

import numpy as np
import pytest

from envs.code_extract import line_of, line_starts
from envs.feedback import Defect, Element, ExecError, Feedback
from envs.geometry import iou
from envs.program import statements
from models.qwen3_vl.tokenizer import Qwen3Tokenizer
from sdpo_jax.credit import CreditConfig, credit_weights
from sdpo_jax.replies import Reply, read_replies


def credit(alpha: float, normalise: str = "none") -> CreditConfig:
    return CreditConfig(alpha=alpha, normalise=normalise, error_severity=1.0,
                        dependency_severity=0.5)


PLAIN = credit(3.0)


@pytest.fixture(scope="module")
def tokenizer():
    return Qwen3Tokenizer.load()


def _reply(tokenizer, text, language="python") -> Reply:
    ids, offsets = tokenizer.encode_with_offsets(text)
    reply = Reply.read(tokenizer, ids, 0, language)
    assert reply.text == text and list(reply.token_spans) == offsets, \
        "sampled-id spans disagree with the tokenizer's offsets"
    return reply


def _credited(reply: Reply, weights, value):
    return [reply.text[a:b] for (a, b), w in zip(reply.token_spans, weights)
            if np.isclose(w, value)]


def _expected_by_line(reply: Reply, code_lines):
    """Token texts whose first non-blank character lies on one of `code_lines` of the program
    (an independent re-derivation of Reply.token_lines)."""
    code, offset = reply.program.code, reply.program.offset
    starts = line_starts(code)
    out = []
    for a, b in reply.token_spans:
        text = reply.text[a:b]
        anchor = a + (len(text) - len(text.lstrip())) if text.strip() else a
        position = anchor - offset
        if 0 <= position < len(code) and line_of(starts, position) in code_lines:
            out.append(text)
    return out


CRLF_REPLY = ("Here is the chart:\r\n```python\r\nimport matplotlib.pyplot as plt\r\n"
              "fig, ax = plt.subplots()\r\nax.bar([1, 2], [3, 4])\r\nax.set_title('T',\r\n"
              "   fontsize=40)\r\nplt.savefig('out.png')\r\n```\r\nDone.")


def test_fenced_crlf_reply_credits_the_traced_statement_including_straddling_tokens(tokenizer):
    reply = _reply(tokenizer, CRLF_REPLY)
    title = Defect("clipped_text", 1.0, (0, 0, 100, 20), "title clipped", lines=((4, 5),))
    feedback = Feedback(ok=True, defects=[title], elements=[
        Element("text", (0, 0, 100, 20), lines=((4, 5),)),
        Element("patch", (10, 30, 50, 90), lines=((3, 3),))])
    weights = credit_weights(reply, feedback, PLAIN)
    credited = _credited(reply, weights, 3.0)
    assert "".join(credited) == "ax.set_title('T',\r\n   fontsize=40)\r\n", credited
    assert "',\r\n" in credited and ")\r\n" in credited, "tokens straddling CRLF lost their statement"
    assert np.allclose(weights[[CRLF_REPLY[a:b] not in credited for a, b in reply.token_spans]], 1.0)


def test_sampled_rows_become_replies_without_their_stop_token(tokenizer):
    ids = tokenizer.encode(CRLF_REPLY)
    stop = tokenizer.token_to_id("<|im_end|>")
    tokens = np.zeros((2, len(ids) + 3), np.int32)
    tokens[0, :len(ids) + 1] = ids + [stop]
    tokens[1, :len(ids)] = ids  # cut by the budget: no stop token
    replies = read_replies(tokenizer, tokens, np.array([len(ids) + 1, len(ids)]),
                           np.array([1, 0]), ["python", "html"])
    assert [r.prompt_index for r in replies] == [1, 0]
    assert all(r.text == CRLF_REPLY and len(r.token_ids) == len(ids) for r in replies)
    assert replies[0].program.code == CRLF_REPLY, "prompt 1 writes html: no python fence to find"
    assert replies[1].program.code.startswith("import matplotlib")
    feedback = Feedback(ok=True, defects=[Defect("overlap", 1.0, (0, 0, 9, 9), "m", lines=((3, 3),))])
    assert credit_weights(replies[1], feedback, PLAIN).shape == (len(ids),)


def test_real_chartmimic_programs_credit_exactly_the_traced_statements(tokenizer, benchmark_rows):
    """Real programs in a fenced reply: each defect's statement, and nothing else, is amplified."""
    checked = 0
    for code in [row["code"] for row in benchmark_rows("chartmimic_direct_v1.jsonl")[:25]]:
        reply = _reply(tokenizer, f"Sure! Here is the code.\n\n```python\n{code}```\nIt draws it.")
        program = [s for s in statements(code, "python")
                   if s.node is not None and not isinstance(s.node, (ast.Import, ast.ImportFrom))]
        target = program[len(program) // 2]
        feedback = Feedback(ok=True, defects=[Defect("overlap", 1.0, (5, 5, 50, 50), "m",
                                                     lines=((target.first, target.last),))])
        weights = credit_weights(reply, feedback, PLAIN)
        assert _credited(reply, weights, 3.0) == _expected_by_line(
            reply, set(range(target.first, target.last + 1)))
        normalised = credit_weights(reply, feedback, credit(3.0, "mean"))
        np.testing.assert_allclose(normalised.mean(), 1.0, rtol=1e-5)
        assert normalised.max() > normalised.min()
        checked += 1
    assert checked == 25


def test_element_regions_credit_statements_by_iou_times_severity(tokenizer):
    code = "a = 1\nb = 2\nc = 3\n"
    reply = _reply(tokenizer, code)
    defect = Defect("overlap", 0.8, (0, 0, 10, 10), "m")  # traced to no line: IoU only
    feedback = Feedback(ok=True, defects=[defect], elements=[
        Element("text", (0, 0, 10, 10), lines=((1, 1),)),
        Element("text", (5, 0, 15, 10), lines=((2, 2),)),
        Element("text", (50, 50, 60, 60), lines=((2, 2),)),   # a second part of statement 2
        Element("text", (100, 100, 110, 110), lines=((3, 3),))])
    weights = credit_weights(reply, feedback, credit(2.0))
    by_line = {code[a:b].strip(): w for (a, b), w in zip(reply.token_spans, weights)}
    part_iou = iou((0, 0, 10, 10), (5, 0, 15, 10))
    assert by_line["a"] == pytest.approx(1.0 + 0.8)
    assert by_line["b"] == pytest.approx(1.0 + 0.8 * part_iou)  # the best part, not the union
    assert by_line["c"] == pytest.approx(1.0)


def _run_and_fail(code: str) -> ExecError:
    """Execute a (failing) program as the envs do, under '<gen>', and report the model's line."""
    import matplotlib
    matplotlib.use("Agg")
    try:
        exec(compile(code, "<gen>", "exec"), {"__name__": "__main__"})
    except Exception as err:  # noqa: BLE001 - the point is to catch what the program raised
        line = [f.lineno for f in traceback.extract_tb(sys.exc_info()[2]) if f.filename == "<gen>"][-1]
        return ExecError(type(err).__name__, str(err), line)
    finally:
        import matplotlib.pyplot as plt
        plt.close("all")
    raise AssertionError("the program was meant to fail")


def test_execution_error_credits_the_failing_statement_and_what_built_its_inputs(tokenizer):
    code = ("import matplotlib.pyplot as plt\n"
            "data = [1, 2, 3]\n"
            "labels = ['a', 'b']\n"
            "fig, ax = plt.subplots()\n"
            "ax.set_title('x')\n"
            "ax.bar(labels,\n"
            "       data)\n"
            "plt.savefig('never.png')\n")
    error = _run_and_fail(code)
    assert error.line in (6, 7)
    reply = _reply(tokenizer, f"```python\n{code}```")
    weights = credit_weights(reply, Feedback.failure(error), PLAIN)
    assert _credited(reply, weights, 3.0) == _expected_by_line(reply, {6, 7})
    assert _credited(reply, weights, 2.0) == _expected_by_line(reply, {2, 3, 4, 5})
    assert set(np.unique(weights)) <= {1.0, 2.0, 3.0}, "import, savefig and fences keep weight 1"


def test_syntax_error_credits_its_line_without_an_ast(tokenizer):
    reply = _reply(tokenizer, "x = [1, 2\ny = 3\nprint(x)\n")
    feedback = Feedback.failure(ExecError("SyntaxError", "'[' was never closed", 1))
    weights = credit_weights(reply, feedback, PLAIN)
    assert "".join(_credited(reply, weights, 3.0)) == "x = [1, 2\n"


def test_html_reply_credits_lines(tokenizer):
    page = "<html>\n<body>\n<h1 style=\"color:#eee\">Title</h1>\n<p>text</p>\n</body>\n</html>\n"
    reply = _reply(tokenizer, f"Page:\n```html\n{page}```", language="html")
    feedback = Feedback(ok=True, defects=[Defect("low_contrast", 1.0, (0, 0, 200, 40), "m",
                                                 lines=((3, 3),))])
    weights = credit_weights(reply, feedback, PLAIN)
    assert "".join(_credited(reply, weights, 3.0)).strip() == '<h1 style="color:#eee">Title</h1>'


def test_alpha_one_is_uniform_and_no_defects_is_uniform(tokenizer):
    reply = _reply(tokenizer, CRLF_REPLY)
    feedback = Feedback(ok=True, defects=[Defect("overlap", 1.0, (0, 0, 5, 5), "m", lines=((3, 4),))])
    assert np.all(credit_weights(reply, feedback, credit(1.0, "mean")) == 1.0)
    assert np.all(credit_weights(reply, Feedback(ok=True), credit(5.0, "mean")) == 1.0)


@pytest.mark.parametrize("changes,field", [(dict(alpha=-1.0), "alpha"), (dict(normalise="sum"), "normalise"),
                                           (dict(error_severity=2.0), "error_severity")])
def test_credit_config_errors_name_the_field(changes, field):
    with pytest.raises(ValueError, match=rf"CreditConfig\.{field} "):
        CreditConfig(**{**dataclasses.asdict(PLAIN), **changes})


@pytest.mark.slow
def test_real_chart_env_feedback_amplifies_the_injected_defect_statement(tokenizer, benchmark_rows):
    """End to end on real components: ChartMimic program + injected defect -> ChartEnv -> weights."""
    from envs.chart.env import ChartEnv
    from envs.eval.chart_inject import INJECTIONS, inject
    from envs.task import Task

    rows = benchmark_rows("chartmimic_direct_v1.jsonl")
    row = next(r for r in rows if r["chart_type"] == "bar")
    injected = inject(row["id"], row["code"], next(i for i in INJECTIONS if i.name == "note_on_label"))
    reply = _reply(tokenizer, "Here is the code:\r\n```python\r\n"
                   + injected.code.replace("\n", "\r\n") + "```\r\nDone.")
    env = ChartEnv()
    try:
        feedback = env.step(Task(domain="chart", task_id=row["id"], instruction=""),
                            reply.program.code)
    finally:
        env.close()
    assert feedback.ok, feedback.error
    line = injected.lines[0]
    traced = [d for d in feedback.defects if any(a <= line <= b for a, b in d.lines)]
    assert traced, f"the chart env traced no defect to the injected line {line}: {feedback.defects}"
    weights = credit_weights(reply, feedback, PLAIN)
    on_line = np.flatnonzero(reply.token_lines == line)
    assert on_line.size and np.allclose(weights[on_line], 1 + 2 * max(d.severity for d in traced))
    assert weights.max() <= 1 + 2 * max(d.severity for d in feedback.defects) + 1e-6
    assert np.all(weights[reply.token_lines == 0] == 1.0), "prose and fences keep weight 1"
