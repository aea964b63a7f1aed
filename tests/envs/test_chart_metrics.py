"""ChartMimic low-level metrics: F1 arithmetic, colour similarity (CIEDE2000), thinning, and the
documented both-empty rule that makes every program score 1.0 against itself."""
from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from envs.chart import metrics


def test_multiset_text_match_is_exact_and_case_sensitive():
    assert metrics.text_f1(["Title", "a", "a"], ["Title", "a", "a"]) == 1.0
    # one of three generated strings matches one of two gold: P = 1/3, R = 1/2
    assert metrics.text_f1(["Title", "x", "y"], ["title", "Title"]) == pytest.approx(2 * (1 / 3) * (1 / 2) / (1 / 3 + 1 / 2))
    assert metrics.text_f1(["Fig. 1"], ["Fig.1"]) == 0.0


def test_empty_views_both_sides_score_one_one_side_scores_zero():
    assert metrics.text_f1([], []) == 1.0 and metrics.layout_f1([], []) == 1.0
    assert metrics.text_f1(["a"], []) == 0.0 and metrics.type_f1({}, {"Axes.bar": 2}) == 0.0


def test_layout_and_type_f1():
    cell = {"nrows": 1, "ncols": 2, "row_start": 0, "row_end": 0, "col_start": 0, "col_end": 0}
    other = {**cell, "col_start": 1, "col_end": 1}
    assert metrics.layout_f1([cell, other], [other, cell]) == 1.0
    assert metrics.layout_f1([cell], [cell, other]) == pytest.approx(2 / 3)
    # n_correct = min(2, 1) + min(1, 1) = 2, P = 2/3, R = 2/2
    assert metrics.type_f1({"Axes.bar": 2, "Axes.plot": 1}, {"Axes.bar": 1, "Axes.plot": 1}) == pytest.approx(0.8)


def test_colour_similarity_follows_ciede2000():
    assert metrics.color_similarity("#1F77B4", "#1F77B4") == 1.0
    assert metrics.color_similarity("#000000", "#FFFFFF") == 0.0  # dE00 = 100
    near = metrics.color_similarity("#1F77B4", "#2077B4")
    assert 0.99 < near < 1.0
    assert metrics.color_similarity("viridis", "viridis") == 1.0
    assert metrics.color_similarity("viridis", "#440154") == 0.0


def test_colour_f1_assigns_within_chart_type_groups():
    gold = ["Axes.bar--#FF0000", "Axes.bar--#0000FF", "line--#00FF00"]
    assert metrics.color_f1(gold, gold) == 1.0
    swapped_group = ["Axes.scatter--#FF0000", "Axes.bar--#0000FF", "line--#00FF00"]
    assert metrics.color_f1(swapped_group, gold) == pytest.approx(2 / 3)


def test_more_than_ten_colours_are_thinned_greedily():
    blues = [f"Axes.bar--#0000{v:02X}" for v in range(200, 256, 4)]  # 14 near-identical blues
    thinned = metrics.thin_colors(blues + ["Axes.bar--#FF0000"])
    assert len(thinned) < 5 and "Axes.bar--#FF0000" in thinned


@settings(max_examples=60, deadline=None)
@given(st.lists(st.sampled_from(["#1F77B4", "#FF7F0E", "#2CA02C", "viridis", "#D62728"]), max_size=6),
       st.lists(st.sampled_from(["Axes.bar", "Axes.pie", "line"]), min_size=1, max_size=3))
def test_any_recording_scores_one_against_itself_and_at_most_one_otherwise(colours, groups):
    recording = {"text": colours, "layout": [], "types": {g: 1 for g in groups},
                 "colors": [f"{g}--{c}" for g in groups for c in colours]}
    assert metrics.score(recording, recording)["fidelity"] == 1.0
    other = {**recording, "colors": recording["colors"][1:], "text": recording["text"][:-1]}
    scores = metrics.score(other, recording)
    assert all(0.0 <= v <= 1.0 for v in scores.values())


def test_official_scores_views_empty_on_both_sides_zero_as_chartmimic_does():
    recording = {"text": [], "layout": [], "types": {"Axes.bar": 1}, "colors": ["Axes.bar--#FF0000"]}
    assert metrics.score(recording, recording)["fidelity"] == 1.0
    official = metrics.score(recording, recording, official=True)
    assert (official["text"], official["layout"], official["type"], official["color"]) == (0, 0, 1, 1)
    assert official["fidelity"] == 0.5


def test_circle_and_ellipse_are_one_chartmimic_type_and_colour_group():
    circle = {"types": {"Circle": 2}, "colors": ["Circle--#FF0000"]}
    ellipse = {"types": {"Ellipse": 2}, "colors": ["Ellipse--#FF0000"]}
    scores = metrics.score(circle, ellipse)
    assert scores["type"] == 1.0 and scores["color"] == 1.0


@pytest.fixture
def recorder():
    """The sandbox's ChartMimic recorder, armed in this process for one program (a fresh log)."""
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from envs.chart import fidelity
    fidelity.install()
    fidelity.LOG = fidelity.CallLog()

    def record(program):
        fidelity.arm()
        try:
            program(plt)
        finally:
            fidelity.disarm()
            plt.close("all")
        keys = fidelity.color_keys()
        fidelity.LOG = fidelity.CallLog()
        return keys
    return record


def test_colours_are_read_from_the_parts_chartmimic_reads(recorder):
    pie = recorder(lambda plt: plt.pie([1, 2], colors=["#FF0000", "#00FF00"], labels=["a", "b"],
                                       autopct="%1.0f%%", textprops={"color": "#0000FF"}))
    assert pie == ["Axes.pie--#00FF00", "Axes.pie--#FF0000"], "wedges only, not label texts"
    boxes = recorder(lambda plt: plt.boxplot([[1, 2, 3], [2, 3, 9]], patch_artist=True,
                                             boxprops={"facecolor": "#AA0000"},
                                             medianprops={"color": "#00AA00"}))
    assert boxes == ["Axes.boxplot--#AA0000"], "box faces only, not whiskers or medians"
    assert recorder(lambda plt: plt.boxplot([[1, 2, 3]])) == [], "line boxes are not read"
    violins = recorder(lambda plt: plt.violinplot([[1, 2, 3, 4], [2, 3, 3, 5]]))
    assert len(violins) == 1 and violins[0].startswith("Axes.violinplot--#"), violins


def test_scatter_gives_a_colormap_only_when_asked_for_one(recorder):
    mapped = recorder(lambda plt: plt.scatter([1, 2, 3], [1, 2, 3], c=[0.1, 0.5, 0.9]))
    assert len(mapped) == 1 and mapped[0].startswith("Axes.scatter--#"), mapped
    named = recorder(lambda plt: plt.scatter([1, 2], [1, 2], c=[1, 2], cmap="plasma"))
    assert named == ["Axes.scatter--plasma"]
    many = recorder(lambda plt: plt.scatter([1, 2], [1, 2], color=["#FF0000", "#0000FF"]))
    assert many == ["Axes.scatter--#FF0000"], "ChartMimic reads a scatter's first face colour"
