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


def contrast_findings(feedback) -> list:
    return [d for d in feedback.defects + feedback.notes if d.kind == "low_contrast"]


def test_small_chart_numbers_need_the_apca_contrast_of_their_size(chart_env):
    """White numbers on a light-blue bar (WCAG 2.4:1, APCA Lc -53): at 10 pt (a 7.6-px x-height
    at 100 dpi) APCA's lookup asks Lc 67 even for spot reading, and the by-eye audit could not
    read them (ChartMimic bar_68, bar_39); at 16 pt the same colours need Lc 46 and read."""
    def bars(size: int):
        return judge(chart_env, "fig, ax = plt.subplots()\n"
                                "ax.bar(range(4), [5, 6, 7, 8], color=(107 / 255, 174 / 255, 214 / 255), width=0.9)\n"
                                "for i in range(4):\n"
                                f"    ax.text(i, 2, str(10 + i), color='white', ha='center', fontsize={size})\n"
                                "plt.savefig('o.pdf')\n")
    small = [d for d in contrast_findings(bars(10)) if d.message.startswith("text '1")]
    assert len(small) == 4 and not any(d.advisory for d in small), small
    assert all("hard to read" in d.message for d in small)
    large = [d for d in contrast_findings(bars(16)) if d.message.startswith("text '1")]
    assert len(large) == 4 and all(d.advisory for d in large), large


def test_a_faint_title_under_a_legend_is_judged_against_the_legend_face_it_shows_through(chart_env):
    """A legend anchored above the axes (ChartMimic bar_5) is drawn over the title's spot: the
    title's box then holds the legend's entries and handles. A near-white title there is pale
    on white to the eye; it was measured against the legend's entries (3.4:1, a note)."""
    fb = judge(chart_env, "plt.figure(figsize=(8, 3))\n"
                          "for k, c in enumerate(['#ffffbd', '#97ccfb', '#ea8777']):\n"
                          "    plt.bar([i + 0.25 * k for i in range(3)], [5, 4, 3], width=0.25, color=c,\n"
                          "            edgecolor='black', label=f'series {k}')\n"
                          "plt.legend(loc='upper center', bbox_to_anchor=(0.5, 1.15), ncol=3)\n"
                          "plt.title('Summary of the measured results', color=(0.97, 0.97, 0.97), fontsize=13)\n"
                          "plt.tight_layout()\nplt.savefig('o.pdf', bbox_inches='tight')\n")
    title = [d for d in contrast_findings(fb) if d.message.startswith("title")]
    assert title and not title[0].advisory and "hard to read" in title[0].message, title
    assert float(title[0].message.split("contrast ")[1].split(":")[0]) < 1.2
    assert any(d.kind == "overlap" and "legend" in d.message and "title" in d.message
               for d in fb.defects), "the legend on the title is its own defect"
