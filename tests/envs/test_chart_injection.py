"""Detection of injected defects on real ChartMimic programs: a sample in the default run, all
397 programs (and their self-scores) in the slow run. Recall and trace accuracy >= 90%."""
from __future__ import annotations

import pytest

from envs.eval.chart_inject import INJECTIONS, detection_report, format_report, inject
from envs.eval.chart_validation import self_scores
from envs.pool import EnvPool


def test_injected_program_keeps_the_program_and_marks_the_new_line():
    code = "import matplotlib.pyplot as plt\nplt.plot([1, 2])\nplt.tight_layout()\nplt.savefig('a.pdf', bbox_inches='tight')\n"
    wide_title = next(i for i in INJECTIONS if i.name == "wide_title")
    injected = inject("p", code, wide_title)
    lines = injected.code.splitlines()
    assert injected.lines == (4, 5) and lines[3] == wide_title.statement
    assert lines[4] == "plt.savefig('a.pdf')" and lines[:3] == code.splitlines()[:3]


def test_a_sample_of_injections_is_detected_and_traced_to_the_mutated_line(chart_env, spread_sample):
    programs = spread_sample(20)
    failures, detected, applicable, traced = [], 0, 0, 0
    for i, program in enumerate(programs):
        injection = INJECTIONS[i % len(INJECTIONS)]
        report = detection_report([(program["id"], program["code"])],
                                  lambda items: [chart_env.step(t, c) for t, c in items], [injection])
        row = report["injections"].get(injection.name)
        if not row or not row["injected"]:
            continue
        applicable += 1
        if row["recall"] == 1.0:
            detected += 1
            traced += row["trace_accuracy"] == 1.0
        else:
            failures.append(f"{injection.name} on {program['id']}")
    assert applicable >= 15, f"only {applicable} of 20 injections applied"
    assert detected / applicable >= 0.9, f"missed: {failures}"
    assert traced / detected >= 0.9


@pytest.mark.slow
def test_all_chartmimic_programs_run_score_themselves_and_injections_are_found(chartmimic):
    programs = [(p["id"], p["code"]) for p in chartmimic]
    with EnvPool(2, {"chart": {}}, warm=["chart"]) as pool:
        scores = self_scores(programs, pool.map)
        report = detection_report(programs, pool.map)
    print(format_report(report))
    assert scores["exec_rate"] >= 0.99, scores["failures"]
    assert scores["self_fidelity_perfect"] == 1.0, scores["imperfect"]
    for kind, row in report["kinds"].items():
        assert row["recall"] >= 0.9, f"{kind}: recall {row['recall']:.1%}"
        assert row["trace_accuracy"] >= 0.9, f"{kind}: traced {row['trace_accuracy']:.1%}"


@pytest.mark.slow
def test_person_written_recipes_are_found_and_traced_on_real_programs(chartmimic):
    """envs.eval.person_recipes (written apart from chart_inject): caption across the tick
    labels, a subplot moved off its grid, pale text on its own box; valid injections only."""
    from envs.eval.person_recipes import CHART_RECIPES
    programs = [(p["id"], p["code"]) for p in chartmimic[::4]]
    with EnvPool(2, {"chart": {}}, warm=["chart"]) as pool:
        report = detection_report(programs, pool.map, injections=CHART_RECIPES)
    print(format_report(report))
    for name, row in report["injections"].items():
        assert row["injected"] >= 10, f"{name}: only {row['injected']} valid injections"
        assert row["recall"] >= 0.9, f"{name}: recall {row['recall']:.1%}"
        assert row["trace_accuracy"] >= 0.9, f"{name}: traced {row['trace_accuracy']:.1%}"
