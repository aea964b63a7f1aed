"""Whole-dataset checks for the web environment (slow: tens of minutes on 2 cores).

    pytest -m slow tests/envs/web/test_web_full.py
"""

import pytest

from envs.web import design2code
from envs.eval.axe_agreement import run as axe_run
from envs.web.browser import Browser, PageError
from envs.eval.web_inject import KINDS
from envs.eval.injection import evaluate_html, format_table, judges

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def rows(benchmark_rows):
    return benchmark_rows("design2code_testset.jsonl")


@pytest.mark.timeout(7200)  # 756 page loads: ~20 min on 2 quiet cores, far more under load
def test_all_design2code_pages_render_and_self_score_perfectly(rows):
    failures = []
    with Browser() as browser:
        for row in rows:
            try:
                captures = []
                for _ in range(2):
                    with browser.open(row["html"], 1280, 720) as page:
                        captures.append(design2code.capture(page))
            except PageError as err:
                failures.append(f"{row['id']}: render failed: {err}")
                continue
            scores = design2code.score(*captures)
            bad = {k: v for k, v in scores.items() if abs(v - 1.0) > 1e-9}
            if bad:
                failures.append(f"{row['id']}: {bad}")
    assert not failures, f"{len(failures)} of {len(rows)} pages: " + "; ".join(failures[:10])


@pytest.mark.timeout(7200)
def test_low_contrast_agrees_with_axe_core(rows):
    agreement, failed = axe_run(rows, progress=False)
    assert not failed, failed[:5]
    assert agreement.rate >= 0.95, (
        f"agreement {agreement.rate:.4f} over {agreement.both} elements; causes {dict(agreement.causes)}")


def test_injection_recall_and_tracing_on_design2code(rows):
    env, judge = judges("web")
    try:
        stats = evaluate_html(rows[:60], judge, KINDS, seed=0, progress=False)
    finally:
        env.close()
    print(format_table(stats, KINDS))
    for kind, row in stats.table(KINDS).items():
        assert row["injected"] >= 10, f"{kind}: only {row['injected']} injections"
        assert row["recall"] >= 0.9, f"{kind}: recall {row['recall']:.3f}; misses {stats.misses[:5]}"
        assert row["trace_rate"] >= 0.9, f"{kind}: trace rate {row['trace_rate']:.3f}"


def test_person_written_recipes_are_found_and_traced(rows):
    """envs.eval.person_recipes on 40 artifacts spread over the file (issue 15's bar)."""
    from envs.eval.injection import run_person, shortfalls
    stats, recipes, _ = run_person('web', rows, 40, progress=False)
    print(format_table(stats, recipes))
    assert not shortfalls(stats, recipes), (shortfalls(stats, recipes), stats.misses[:5])
