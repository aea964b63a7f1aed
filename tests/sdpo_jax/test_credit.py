"""Credit weights on real code tokenised by the real Qwen3 tokenizer, and the code extraction rule."""
from __future__ import annotations

import ast
import os
import sys
import traceback

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from envs.code_extract import extract_code, line_of, line_starts
from envs.feedback import Defect, Element, ExecError, Feedback
from envs.geometry import iou
from models.qwen3_vl.tokenizer import Qwen3Tokenizer
from envs.program import statements
from sdpo_jax.credit import CreditConfig, credit_weights, rollout_credit, token_char_spans

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
PLAIN = CreditConfig(alpha=3.0, normalise="none")


@pytest.fixture(scope="module")
def tokenizer():
    return Qwen3Tokenizer.load()


def _tokens(tokenizer, reply):
    ids, spans = tokenizer.encode_with_offsets(reply)
    text, exact = token_char_spans(tokenizer, ids)
    assert text == reply and exact == spans, "sampled-id spans disagree with the tokenizer's offsets"
    return spans


def _credited(reply, spans, weights, value):
    return [reply[a:b] for (a, b), w in zip(spans, weights) if np.isclose(w, value)]


def _expected_by_line(reply, spans, code_lines, fence_offset, code):
    """Token texts whose first non-blank character lies on one of `code_lines` of the program."""
    starts = line_starts(code)
    out = []
    for a, b in spans:
        text = reply[a:b]
        anchor = a + (len(text) - len(text.lstrip())) if text.strip() else a
        position = anchor - fence_offset
        if 0 <= position < len(code) and line_of(starts, position) in code_lines:
            out.append(text)
    return out


CRLF_REPLY = ("Here is the chart:\r\n```python\r\nimport matplotlib.pyplot as plt\r\n"
              "fig, ax = plt.subplots()\r\nax.bar([1, 2], [3, 4])\r\nax.set_title('T',\r\n"
              "   fontsize=40)\r\nplt.savefig('out.png')\r\n```\r\nDone.")


def test_fenced_crlf_reply_credits_the_traced_statement_including_straddling_tokens(tokenizer):
    spans = _tokens(tokenizer, CRLF_REPLY)
    title = Defect("clipped_text", 1.0, (0, 0, 100, 20), "title clipped", lines=((4, 5),))
    feedback = Feedback(ok=True, defects=[title], elements=[
        Element("text", (0, 0, 100, 20), lines=((4, 5),)),
        Element("patch", (10, 30, 50, 90), lines=((3, 3),))])
    weights = credit_weights(CRLF_REPLY, spans, feedback, PLAIN)
    credited = _credited(CRLF_REPLY, spans, weights, 3.0)
    assert "".join(credited) == "ax.set_title('T',\r\n   fontsize=40)\r\n", credited
    assert "',\r\n" in credited and ")\r\n" in credited, "tokens straddling CRLF lost their statement"
    assert np.allclose(weights[[CRLF_REPLY[a:b] not in credited for a, b in spans]], 1.0)


def test_rollout_credit_from_sampled_ids_with_end_of_turn_token(tokenizer):
    ids = tokenizer.encode(CRLF_REPLY) + [tokenizer.token_to_id("<|im_end|>")]
    feedback = Feedback(ok=True, defects=[Defect("overlap", 1.0, (0, 0, 9, 9), "m", lines=((3, 3),))])
    weights = rollout_credit(tokenizer, ids, feedback, CreditConfig(alpha=3.0, normalise="none"))
    assert weights.shape == (len(ids),) and weights[-1] == 1.0
    spans = _tokens(tokenizer, CRLF_REPLY)
    np.testing.assert_array_equal(weights[:-1], credit_weights(
        CRLF_REPLY, spans, feedback, CreditConfig(alpha=3.0, normalise="none")))


def test_real_chartmimic_programs_credit_exactly_the_traced_statements(tokenizer, benchmark_rows):
    """Real programs in a fenced reply: each defect's statement, and nothing else, is amplified."""
    checked = 0
    for code in [row["code"] for row in benchmark_rows("chartmimic_direct_v1.jsonl")[:25]]:
        reply = f"Sure! Here is the code.\n\n```python\n{code}```\nIt draws the chart."
        program = [s for s in statements(code, "python")
                   if s.node is not None and not isinstance(s.node, (ast.Import, ast.ImportFrom))]
        target = program[len(program) // 2]
        lines = set(range(target.first, target.last + 1))
        feedback = Feedback(ok=True, defects=[Defect("overlap", 1.0, (5, 5, 50, 50), "m",
                                                     lines=((target.first, target.last),))])
        spans = _tokens(tokenizer, reply)
        weights = credit_weights(reply, spans, feedback, PLAIN)
        offset = extract_code(reply, "python").offset
        assert _credited(reply, spans, weights, 3.0) == _expected_by_line(
            reply, spans, lines, offset, code)
        normalised = credit_weights(reply, spans, feedback, CreditConfig(alpha=3.0))
        np.testing.assert_allclose(normalised.mean(), 1.0, rtol=1e-5)
        assert normalised.max() > normalised.min()
        checked += 1
    assert checked == 25


def test_element_regions_credit_statements_by_iou_times_severity(tokenizer):
    code = "a = 1\nb = 2\nc = 3\n"
    spans = _tokens(tokenizer, code)
    defect = Defect("overlap", 0.8, (0, 0, 10, 10), "m")  # traced to no line: IoU only
    feedback = Feedback(ok=True, defects=[defect], elements=[
        Element("text", (0, 0, 10, 10), lines=((1, 1),)),
        Element("text", (5, 0, 15, 10), lines=((2, 2),)),
        Element("text", (50, 50, 60, 60), lines=((2, 2),)),   # a second part of statement 2
        Element("text", (100, 100, 110, 110), lines=((3, 3),))])
    weights = credit_weights(code, spans, feedback, CreditConfig(alpha=2.0, normalise="none"))
    by_line = {code[a:b].strip(): w for (a, b), w in zip(spans, weights)}
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
    reply = f"```python\n{code}```"
    spans = _tokens(tokenizer, reply)
    weights = credit_weights(reply, spans, Feedback.failure(error),
                             CreditConfig(alpha=3.0, normalise="none"))
    offset = extract_code(reply, "python").offset
    assert _credited(reply, spans, weights, 3.0) == _expected_by_line(reply, spans, {6, 7}, offset, code)
    assert _credited(reply, spans, weights, 2.0) == _expected_by_line(reply, spans, {2, 3, 4, 5},
                                                                      offset, code)
    assert set(np.unique(weights)) <= {1.0, 2.0, 3.0}, "import, savefig and fences keep weight 1"


def test_syntax_error_credits_its_line_without_an_ast(tokenizer):
    code = "x = [1, 2\ny = 3\nprint(x)\n"
    reply = code
    spans = _tokens(tokenizer, reply)
    feedback = Feedback.failure(ExecError("SyntaxError", "'[' was never closed", 1))
    weights = credit_weights(reply, spans, feedback, PLAIN)
    assert "".join(_credited(reply, spans, weights, 3.0)) == "x = [1, 2\n"


def test_html_reply_credits_lines(tokenizer):
    page = "<html>\n<body>\n<h1 style=\"color:#eee\">Title</h1>\n<p>text</p>\n</body>\n</html>\n"
    reply = f"Page:\n```html\n{page}```"
    spans = _tokens(tokenizer, reply)
    feedback = Feedback(ok=True, defects=[Defect("low_contrast", 1.0, (0, 0, 200, 40), "m",
                                                 lines=((3, 3),))])
    weights = credit_weights(reply, spans, feedback,
                             CreditConfig(alpha=3.0, normalise="none", language="html"))
    assert "".join(_credited(reply, spans, weights, 3.0)).strip() == '<h1 style="color:#eee">Title</h1>'


def test_alpha_one_is_uniform_and_no_defects_is_uniform(tokenizer):
    spans = _tokens(tokenizer, CRLF_REPLY)
    feedback = Feedback(ok=True, defects=[Defect("overlap", 1.0, (0, 0, 5, 5), "m", lines=((3, 4),))])
    assert np.all(credit_weights(CRLF_REPLY, spans, feedback, CreditConfig(alpha=1.0)) == 1.0)
    assert np.all(credit_weights(CRLF_REPLY, spans, Feedback(ok=True), CreditConfig(alpha=5.0)) == 1.0)


@settings(max_examples=30, deadline=None)
@given(ids=st.lists(st.integers(0, 151_668), min_size=1, max_size=40))
def test_token_char_spans_of_arbitrary_sampled_ids_match_decode(tokenizer, ids):
    text, spans = token_char_spans(tokenizer, ids)
    assert text == tokenizer.decode(ids)
    assert spans[0][0] == 0 and spans[-1][1] == len(text)
    assert all(a[1] == b[0] for a, b in zip(spans, spans[1:])), "spans must tile the text"


def test_non_canonical_segmentation_maps_to_the_right_characters(tokenizer):
    reply = "ax.plot(x)\n"
    ids = [tokenizer.encode(ch)[0] for ch in reply]  # one token per character: not canonical
    assert ids != tokenizer.encode(reply)
    text, spans = token_char_spans(tokenizer, ids)
    assert text == reply and spans == [(i, i + 1) for i in range(len(reply))]


@pytest.mark.parametrize("changes,field", [(dict(alpha=-1.0), "alpha"), (dict(normalise="sum"), "normalise"),
                                           (dict(language="js"), "language"),
                                           (dict(error_severity=2.0), "error_severity")])
def test_credit_config_errors_name_the_field(changes, field):
    with pytest.raises(ValueError, match=rf"CreditConfig\.{field} "):
        CreditConfig(**changes)
    with pytest.raises(ValueError, match="unknown credit config key"):
        CreditConfig.from_mapping({"alpah": 2.0})


@pytest.mark.slow
def test_real_chart_env_feedback_amplifies_the_injected_defect_statement(tokenizer, benchmark_rows):
    """End to end on real components: ChartMimic program + injected defect -> ChartEnv -> weights."""
    from envs.chart.env import ChartEnv
    from envs.eval.chart_inject import INJECTIONS, inject
    from envs.task import Task

    rows = benchmark_rows("chartmimic_direct_v1.jsonl")
    row = next(r for r in rows if r["chart_type"] == "bar")
    injected = inject(row["id"], row["code"], next(i for i in INJECTIONS if i.name == "note_on_label"))
    reply = "Here is the code:\r\n```python\r\n" + injected.code.replace("\n", "\r\n") + "```\r\nDone."
    env = ChartEnv()
    try:
        feedback = env.step(Task(domain="chart", task_id=row["id"], instruction=""),
                            extract_code(reply, "python").code)
    finally:
        env.close()
    assert feedback.ok, feedback.error
    line = injected.lines[0]
    traced = [d for d in feedback.defects if any(a <= line <= b for a, b in d.lines)]
    assert traced, f"the chart env traced no defect to the injected line {line}: {feedback.defects}"
    ids = tokenizer.encode(reply)
    weights = rollout_credit(tokenizer, ids, feedback, CreditConfig(alpha=3.0, normalise="none"))
    text, spans = token_char_spans(tokenizer, ids)
    offset = extract_code(reply, "python").offset
    code = extract_code(reply, "python").code
    on_line = [i for i, (a, b) in enumerate(spans)
               if text[a:b] in _expected_by_line(text, [(a, b)], {line}, offset, code)]
    assert on_line and np.allclose(weights[on_line], 1 + 2 * max(d.severity for d in traced))
    assert weights.max() <= 1 + 2 * max(d.severity for d in feedback.defects) + 1e-6
    outside = [i for i, (a, b) in enumerate(spans) if b <= offset or a >= offset + len(code)]
    assert outside and np.all(weights[outside] == 1.0)
