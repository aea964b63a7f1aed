"""Whole-dataset checks for the slide environments (slow: minutes on 2 cores).

    pytest -m slow tests/envs/slide/test_slide_full.py
"""

import pytest

from envs.eval import pptx_samples
from envs.slide.aeslides import MEASURES
from envs.slide.html_slide import HtmlSlideEnv
from envs.task import Task
from envs.eval.web_inject import KINDS as HTML_KINDS
from envs.eval.injection import evaluate_html, evaluate_pptx, format_table, judges

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def rows(benchmark_rows):
    return benchmark_rows("aeslides_examples.jsonl")


def test_all_aeslides_examples_get_all_four_measures(rows):
    env = HtmlSlideEnv()
    try:
        for row in rows:
            fb = env.step(Task(domain="slide_html", task_id=row["id"], instruction="", width=1280,
                               height=720), row["html"])
            assert fb.ok, f"{row['id']}: {fb.error}"
            for measure in MEASURES:
                assert 0.0 <= fb.reward_parts[f"{measure}_reward"] <= 1.0, (row["id"], measure)
    finally:
        env.close()


def test_injection_recall_and_tracing_on_html_slides(rows):
    env, judge = judges("slide_html")
    try:
        stats = evaluate_html(rows, judge, HTML_KINDS, seed=0, viewport_only=True, progress=False)
    finally:
        env.close()
    print(format_table(stats, HTML_KINDS))
    for kind, row in stats.table(HTML_KINDS).items():
        if row["injected"] < 10:
            continue  # e.g. few aligned peers: reported, not judged on a handful
        assert row["recall"] >= 0.9, f"{kind}: recall {row['recall']:.3f}; misses {stats.misses[:5]}"
        assert row["trace_rate"] >= 0.9, f"{kind}: trace rate {row['trace_rate']:.3f}"


def test_injection_recall_and_tracing_on_pptx_programs():
    stats = evaluate_pptx(20)
    print(format_table(stats, pptx_samples.KINDS))
    assert stats.clean_items == 20, stats.misses
    for kind, row in stats.table(pptx_samples.KINDS).items():
        assert row["recall"] >= 0.9 and row["trace_rate"] >= 0.9, (kind, row, stats.misses[:5])
        assert row["clean_fp_rate"] == 0.0, (kind, row)


def test_person_written_recipes_are_found_and_traced(rows):
    """envs.eval.person_recipes on 36 artifacts spread over the file (issue 15's bar)."""
    from envs.eval.injection import run_person, shortfalls
    stats, recipes, _ = run_person('slide_html', rows, 36, progress=False)
    print(format_table(stats, recipes))
    assert not shortfalls(stats, recipes), (shortfalls(stats, recipes), stats.misses[:5])
