"""Chart detectors agree with the eye (issue 15): what the saved image shows, not what the
canvas would; decorations drawn outside axes by design are not defects; a label drawn twice is
one label; a subplot moved off its grid is misaligned however far it moved."""
from __future__ import annotations

from envs.task import Task

HEAD = "import matplotlib.pyplot as plt, numpy as np\n"


def judge(chart_env, body: str):
    feedback = chart_env.step(Task(domain="chart", task_id="p", instruction=""), HEAD + body)
    assert feedback.ok, feedback.error
    return feedback


def kinds(feedback) -> set[str]:
    return {d.kind for d in feedback.defects}


def test_colorbar_extension_arrows_are_not_overflow(chart_env):
    fb = judge(chart_env, "fig, ax = plt.subplots(figsize=(6, 4))\n"
                          "im = ax.imshow(np.random.RandomState(0).rand(10, 10), vmin=0.2, vmax=0.8)\n"
                          "fig.colorbar(im, ax=ax, extend='both')\nplt.savefig('o.pdf')\n")
    assert "overflow" not in kinds(fb), fb.defects


def test_legend_below_the_axes_covers_no_data_but_one_inside_does(chart_env):
    lines = ("fig, ax = plt.subplots(figsize=(6, 4))\n"
             "for k in range(3):\n    ax.plot(range(10), [k * i for i in range(10)], lw=3, label=f's{k}')\n")
    below = judge(chart_env, lines + "ax.set_ylim(-1, 20)\n"
                  "ax.legend(loc='upper center', bbox_to_anchor=(0.5, -0.08), ncol=3)\n"
                  "plt.savefig('o.pdf', bbox_inches='tight')\n")
    assert "legend_over_data" not in kinds(below), below.defects
    inside = judge(chart_env, lines + "ax.legend(loc='center', fontsize=16)\nplt.savefig('o.pdf')\n")
    assert "legend_over_data" in kinds(inside)


def test_the_same_label_drawn_twice_on_one_spot_is_one_label(chart_env):
    text = "ax.text(3, 5, 'peak here', fontsize=12)\n"
    fb = judge(chart_env, "fig, ax = plt.subplots()\nax.plot(range(10))\n" + text + text +
               "plt.savefig('o.pdf')\n")
    assert "overlap" not in kinds(fb), fb.defects
    moved = judge(chart_env, "fig, ax = plt.subplots()\nax.plot(range(10))\n" + text +
                  "ax.text(3.4, 5.1, 'peak here', fontsize=12)\nplt.savefig('o.pdf')\n")
    assert "overlap" in kinds(moved)


def test_a_subplot_moved_off_its_grid_is_misaligned_and_traced_to_the_move(chart_env):
    grid = ("fig, axs = plt.subplots(2, 2, figsize=(8, 6))\n"
            "for a in axs.flat:\n    a.plot(range(5))\nplt.tight_layout()\n")
    moved = judge(chart_env, grid + "p = axs[1, 1].get_position()\n"
                  "axs[1, 1].set_position([p.x0 + 30 / 800, p.y0 - 14 / 600, p.width, p.height])\n"
                  "plt.savefig('o.pdf')\n")
    found = [d for d in moved.defects if d.kind == "misalignment"]
    assert found and all(any(a <= 7 <= b for a, b in d.lines) for d in found), found
    jitter = judge(chart_env, grid + "p = axs[1, 1].get_position()\n"
                   "axs[1, 1].set_position([p.x0 + 1 / 800, p.y0, p.width, p.height])\n"
                   "plt.savefig('o.pdf')\n")
    assert "misalignment" not in kinds(jitter), "1 px is invisible"
    clean = judge(chart_env, grid + "plt.savefig('o.pdf')\n")
    assert not clean.defects, clean.defects


def test_a_caption_across_the_tick_labels_is_an_overlap_traced_to_it(chart_env):
    fb = judge(chart_env, "fig, ax = plt.subplots(figsize=(6, 4))\n"
                          "ax.bar(['alpha', 'beta', 'gamma', 'delta'], [3, 5, 2, 4])\n"
                          "fig.text(0.5, 0.07, 'Source: internal accounting data, all regions', "
                          "ha='center', fontsize=11)\nplt.savefig('o.pdf')\n")
    found = [d for d in fb.defects if d.kind == "overlap"]
    assert found and any(any(a <= 4 <= b for a, b in d.lines) for d in found), fb.defects


def test_a_legend_the_tight_save_keeps_is_not_clipped(chart_env):
    fb = judge(chart_env, "fig, ax = plt.subplots(figsize=(5, 4))\n"
                          "ax.plot([1, 2], label='a series')\n"
                          "ax.legend(loc='lower center', bbox_to_anchor=(0.5, 1.02), ncol=2)\n"
                          "ax.set_title('Title above the legend', pad=30)\n"
                          "plt.savefig('o.pdf', bbox_inches='tight')\n")
    assert not kinds(fb) & {"clipped_text", "overflow"}, fb.defects


def test_a_figure_legend_below_the_figure_saved_tight_collides_with_nothing(chart_env):
    fb = judge(chart_env, "fig, axes = plt.subplots(2, 1, figsize=(6, 3), sharex=True)\n"
                          "for ax in axes:\n    ax.barh(['Effort'], [40], label='Neutral')\n"
                          "    ax.barh(['Effort'], [20], left=[40], label='High')\n"
                          "h, l = axes[1].get_legend_handles_labels()\n"
                          "fig.legend(h, l, loc='lower center', ncol=2, bbox_to_anchor=(0.5, -0.1))\n"
                          "plt.tight_layout()\nplt.savefig('o.pdf', bbox_inches='tight')\n")
    assert not fb.defects, "the legend drawn below the tick labels is measured where it is drawn"
