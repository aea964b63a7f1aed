"""The chart env on real programs: ChartMimic programs run and score 1.0 against themselves,
elements and defects are traced to the statements that made them, renders have the right size."""
from __future__ import annotations

import dataclasses
import io

import numpy as np
import pytest
from PIL import Image

from envs.task import Task

TRACED = '''import matplotlib.pyplot as plt

def draw_bars(ax, values):
    return ax.bar(range(len(values)), values,
                  color="tab:blue")

fig, ax = plt.subplots(figsize=(6, 4))
bars = draw_bars(ax, [3, 5, 2])
ax.set_title("Traced title")
ax.set_xlabel("x label")
label = ax.text(1, 4, "note")
label.set_color("#ee1111")
plt.savefig("chart.png")
ax.set_title("never runs: the program ends at savefig")
'''


def task(**kwargs) -> Task:
    return Task(domain="chart", task_id=kwargs.pop("task_id", "t"), instruction="", **kwargs)


def elements_by_text(feedback):
    return {e.text: e for e in feedback.elements if e.kind == "text"}


def test_chartmimic_programs_run_and_score_one_against_themselves(chart_env, spread_sample):
    failures = []
    for program in spread_sample(8):
        feedback = chart_env.step(task(task_id=program["id"], target=program["code"]), program["code"])
        if not feedback.ok:
            failures.append(f"{program['id']}: {feedback.error}")
            continue
        parts = feedback.reward_parts
        views = {k: parts[k] for k in ("text", "layout", "type", "color", "fidelity")}
        if views != dict.fromkeys(views, 1.0):
            failures.append(f"{program['id']} scored {views} against itself")
        assert Image.open(io.BytesIO(feedback.render_png)).size == tuple(feedback.render_size)
    assert not failures, "\n".join(failures)


def test_elements_are_traced_to_the_statements_that_made_and_changed_them(chart_env):
    feedback = chart_env.step(task(), TRACED)
    assert feedback.ok, feedback.error
    texts = elements_by_text(feedback)
    assert texts["Traced title"].lines == ((7, 7), (9, 9)), "title: axes creation + set_title"
    assert (10, 10) in texts["x label"].lines
    assert texts["note"].lines == ((11, 11), (12, 12)), "text: created on 11, recoloured on 12"
    assert texts["note"].color == "#ee1111"
    patches = [e for e in feedback.elements if e.kind == "patch"]
    assert len(patches) == 3 and all((4, 5) in e.lines for e in patches), \
        "bars must trace to the whole multi-line ax.bar statement inside the helper"
    assert "never runs" not in " ".join(texts), "the program must stop at its first savefig"
    assert feedback.render_size == (600, 400), "figsize (6, 4) at the task's 100 dpi"


def test_an_error_names_the_models_line(chart_env):
    feedback = chart_env.step(task(), "import matplotlib.pyplot as plt\nfig, ax = plt.subplots()\n"
                                      "ax.plot([1, 2], [1, 2, 3])\n")
    assert not feedback.ok and feedback.error.type == "ValueError" and feedback.error.line == 3
    assert feedback.reward == 0.0 and feedback.reward_parts == {"exec": 0.0}


def test_every_open_figure_is_rendered_and_stacked(chart_env):
    code = ("import matplotlib.pyplot as plt\nplt.figure(figsize=(4, 3)).gca().plot([1, 2])\n"
            "plt.figure(figsize=(5, 2)).gca().bar([1, 2], [3, 4])\n"
            "closed = plt.figure(figsize=(9, 9))\nplt.close(closed)\n")
    feedback = chart_env.step(task(), code)
    assert feedback.ok, feedback.error
    assert feedback.render_size == (500, 500), "two figures stacked: max width, summed heights"
    without_pyplot = ("from matplotlib.figure import Figure\nfig = Figure(figsize=(3, 2))\n"
                      "fig.subplots().bar([1, 2], [3, 4])\nfig.savefig('out.png')\n")
    feedback = chart_env.step(task(), without_pyplot)
    assert feedback.ok and feedback.render_size == (300, 200), feedback.error


def test_text_outside_the_figure_is_cut_unless_the_tight_save_is_honoured(chart_env):
    code = ("import matplotlib.pyplot as plt\nfig, ax = plt.subplots(figsize=(5, 4))\n"
            "ax.plot([1, 2], label='a series with a long name')\n"
            "ax.legend(loc='upper left', bbox_to_anchor=(1.02, 1.0))\n"
            "plt.savefig('out.pdf', bbox_inches='tight')\n")
    config = chart_env.config
    assert config.tight_bbox, "honoured by default, as the benchmark's renders do"
    tight = chart_env.step(task(), code)
    chart_env.config = dataclasses.replace(config, tight_bbox=False)
    try:
        plain = chart_env.step(task(), code)
    finally:
        chart_env.config = config
    assert {d.kind for d in plain.defects} >= {"clipped_text", "overflow"}
    assert any((4, 4) in d.lines for d in plain.defects if d.kind == "overflow"), "legend line"
    assert tight.ok, tight.error
    assert not [d for d in tight.defects if d.kind in ("clipped_text", "overflow")]
    assert tight.render_size[0] > 500, "the tight box grows to hold the legend"


@pytest.mark.parametrize("weights, expected", [({}, (0.2 + 0.5 + 0.3) / 1.0),
                                               ({"exec": 1.0, "fidelity": 0.0, "cleanliness": 0.0}, 1.0)])
def test_reward_weights_come_from_the_config(weights, expected):
    from envs.chart.env import ChartEnv, ChartEnvConfig, Target
    from envs.chart.verify import Verification
    from envs.feedback import Feedback
    env = ChartEnv.__new__(ChartEnv)  # reward arithmetic only: no sandbox needed
    env.config = ChartEnvConfig.from_dict({"reward": weights})
    feedback = Feedback(ok=True)
    recording = {"text": ["a"], "layout": [], "types": {"Axes.plot": 1}, "colors": ["line--#1F77B4"]}
    image = np.zeros((48, 64, 3), dtype=np.uint8)
    image[10:20, 5:50] = 200
    honest = Verification(visible=1.0, explained=1.0, ink=0.2, substance=True)
    env._reward(feedback, honest, image, recording, Target(recording, image), has_target=True)
    assert feedback.reward == pytest.approx(expected)
    assert feedback.reward_parts["fidelity"] == 1.0 and feedback.reward_parts["cleanliness"] == 1.0


def test_config_errors_name_the_bad_key():
    from envs.chart.env import ChartEnvConfig
    with pytest.raises(ValueError, match="limts"):
        ChartEnvConfig.from_dict({"limts": {}})
    with pytest.raises(ValueError, match="fidelty"):
        ChartEnvConfig.from_dict({"reward": {"fidelty": 1.0}})
    with pytest.raises(ValueError, match="overlapp"):
        ChartEnvConfig.from_dict({"detectors": {"kinds": ["overlapp"]}})


def test_a_colour_given_to_an_axis_label_is_traced_to_its_statement(chart_env):
    """Creating an axes calls dozens of setters on its labels; the program's own later colour
    change must still be recorded, not dropped for lack of room in the label's trace."""
    feedback = chart_env.step(task(), 'import matplotlib.pyplot as plt\nfig, ax = plt.subplots()\n'
                                      'ax.bar([0, 1], [3, 4])\nax.set_ylabel("Units", color="#f5b7b1")\n'
                                      'plt.savefig("chart.png")\n')
    faint = [d for d in feedback.defects if d.kind == "low_contrast"]
    assert faint and (4, 4) in faint[0].lines, f"the pale label must trace to line 4: {faint}"
