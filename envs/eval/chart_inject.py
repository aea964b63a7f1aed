"""Defect injection into real chart programs, and the detection report built on it.

Each `Injection` inserts one statement line (placed before the program's first top-level
savefig/show, i.e. after its own tight_layout, so the layout engine cannot undo it) that causes
one visual defect kind: long tick labels crowded at a large font, a note written over the
title or an axis label, a legend dropped on the data (centred on the middle data artist),
a title in nearly the background's colour, a title wider than the figure, a data label running
out of its axes, an axes partly outside the figure, a subplot nudged a few pixels off its row.
The statements are self-contained (they import what they use) and pick their target axes at
run time; an injected program that fails to run means the injection did not apply to that
program (e.g. no subplot grid to misalign) and is left out of recall.

`detection_report` runs clean and injected programs through a judge (an env's step, or a
worker pool) and measures, per kind: recall (a defect of the kind appears that the clean
program did not have, or one traced to the mutated line), trace accuracy (a detection of the
kind names the mutated line) and the clean programs' false-positive rate. Never imports jax.
"""
from __future__ import annotations

import ast
import collections
import dataclasses
from collections.abc import Callable, Sequence

from envs.feedback import Feedback
from envs.pixels import decode_png, visibly_changed
from envs.task import Task

_PICK_AXES = ("import matplotlib.pyplot as _plt, numpy as _np; "
              "_ax = [a for a in _plt.gcf().axes if a.axison and a.name == 'rectilinear'][0]; ")


@dataclasses.dataclass(frozen=True)
class Injection:
    name: str
    kind: str  # the defect kind the statement must cause
    statement: str  # one line of Python
    drop_tight_save: bool = False  # also remove bbox_inches="tight" from the savefig call


INJECTIONS: tuple[Injection, ...] = (
    Injection("crowded_ticks", "overlap", _PICK_AXES +
              "_ax.tick_params(axis='x', labelbottom=True); "
              "_ax.set_xticks(_np.linspace(*_ax.get_xlim(), 24)); "
              "_ax.set_xticklabels([f'category label {i}' for i in range(24)], fontsize=15)"),
    Injection("note_on_label", "overlap", _PICK_AXES +
              "_t = [t for t in (_ax.title, _ax.xaxis.label, _ax.yaxis.label) if t.get_text()][0]; "
              "_ax.annotate('Note: values are preliminary', xy=(0.2, 0.5), xycoords=_t, ha='left', "
              "va='center', fontsize=14)"),
    Injection("legend_on_data", "legend_over_data", _PICK_AXES +
              "import matplotlib.collections as _mcol, matplotlib.patches as _mp; _ax.get_xlim(); "
              "_arts = [a for a in _ax.get_lines() + _ax.patches + _ax.collections if a.get_visible()]; "
              "_a = _arts[len(_arts) // 2]; "
              "_xy = (_a.get_transform().transform(_a.get_xydata()) if hasattr(_a, 'get_xydata') else "
              "_a.get_verts() if isinstance(_a, _mp.Patch) else "
              "_a.get_offset_transform().transform(_a.get_offsets()) if isinstance(_a, _mcol.PathCollection) "
              "else _np.concatenate([_a.get_transform().transform(p.vertices) for p in _a.get_paths()])); "
              "_xy = _xy[_np.isfinite(_xy).all(1)]; "
              "_c = _np.clip(_ax.transAxes.inverted().transform(_xy[len(_xy) // 2]), 0.15, 0.85); "
              "_ax.legend(_arts[:4], [f'series {i + 1}' for i in range(len(_arts[:4]))], loc='center', "
              "bbox_to_anchor=tuple(_c), fontsize=16, framealpha=1.0)"),
    Injection("faint_title", "low_contrast",
              "import matplotlib.pyplot as _plt, matplotlib.colors as _mc; _fig = _plt.gcf(); "
              "_c = [0.94 * v + 0.03 for v in _mc.to_rgb(_fig.get_facecolor())]; "
              "_fig.axes[0].set_title('Summary of the measured results', color=_c, fontsize=13)"),
    Injection("wide_title", "clipped_text",
              "import matplotlib.pyplot as _plt; _plt.gcf().suptitle('A comprehensive overview of every "
              "measured quantity across all experimental conditions and datasets', fontsize=26)",
              drop_tight_save=True),
    Injection("label_past_axes", "clipped_text", _PICK_AXES +
              "_x0, _x1 = _ax.get_xlim(); _y0, _y1 = _ax.get_ylim(); "
              "_ax.text(_x0 + 0.9 * (_x1 - _x0), (_y0 + _y1) / 2, 'peak value reached here', "
              "clip_on=True, fontsize=14)"),
    Injection("axes_outside", "overflow",
              "import matplotlib.pyplot as _plt; _plt.gcf().axes[0].set_position([0.55, 0.3, 0.6, 0.55])",
              drop_tight_save=True),
    Injection("nudged_subplot", "misalignment",
              "import matplotlib.pyplot as _plt; _fig = _plt.gcf(); "
              "_spec = lambda a: a.get_subplotspec(); "
              "_ax = next(a for a in _fig.axes[1:] if _spec(a) is not None and any("
              "b is not a and _spec(b) is not None and _spec(b).get_gridspec() is _spec(a).get_gridspec() "
              "and (_spec(b).rowspan == _spec(a).rowspan or _spec(b).colspan == _spec(a).colspan) "
              "for b in _fig.axes)); _p = _ax.get_position(original=True); "
              "_ax.set_position([_p.x0 + 0.005, _p.y0 - 0.006, _p.width, _p.height])"),
)
KINDS = tuple(dict.fromkeys(i.kind for i in INJECTIONS))


@dataclasses.dataclass(frozen=True)
class InjectedProgram:
    program_id: str
    injection: Injection
    code: str
    lines: tuple[int, ...]  # 1-based lines that were inserted or changed


def inject(program_id: str, code: str, injection: Injection) -> InjectedProgram | None:
    """The program with the injection's statement inserted; None when the code does not parse."""
    try:
        tree = ast.parse(code)
    except (SyntaxError, ValueError):
        return None
    source = code.splitlines()
    save_at = next((node.lineno for node in tree.body if _saves_or_shows(node)), None)
    insert_at = (save_at or len(source) + 1) - 1  # 0-based index of the new line
    source.insert(insert_at, injection.statement)
    changed = [insert_at + 1]
    if injection.drop_tight_save and save_at is not None:
        index = save_at  # the savefig statement moved down by one line
        stripped = source[index].replace('bbox_inches="tight"', "").replace("bbox_inches='tight'", "")
        if stripped != source[index]:
            source[index] = stripped.replace(", )", ")").replace("(, ", "(").replace(", ,", ",")
            changed.append(index + 1)
    return InjectedProgram(program_id, injection, "\n".join(source) + "\n", tuple(changed))


def _saves_or_shows(node: ast.stmt) -> bool:
    for sub in ast.walk(node):
        if isinstance(sub, ast.Call) and isinstance(sub.func, ast.Attribute) and \
                sub.func.attr in ("savefig", "show"):
            return True
    return False


def traced_to(feedback: Feedback, kind: str, line: int) -> bool:
    return any(d.kind == kind and any(a <= line <= b for a, b in d.lines) for d in feedback.defects)


def count(feedback: Feedback, kind: str) -> int:
    return sum(d.kind == kind for d in feedback.defects)


@dataclasses.dataclass
class KindReport:
    injected: int = 0  # injected programs that ran and visibly changed the render
    not_applicable: int = 0  # injected programs that failed to run
    invalid: int = 0  # injected programs whose render looks the same as the clean one
    detected: int = 0
    traced: int = 0
    clean_flagged: int = 0  # clean programs with a defect of this kind

    def as_dict(self, n_clean: int) -> dict[str, float]:
        return {"injected": self.injected, "not_applicable": self.not_applicable, "invalid": self.invalid,
                "recall": self.detected / self.injected if self.injected else float("nan"),
                "trace_accuracy": self.traced / self.detected if self.detected else float("nan"),
                "clean_fp_rate": self.clean_flagged / n_clean if n_clean else float("nan")}


Judge = Callable[[Sequence[tuple[Task, str]]], list[Feedback]]


def detection_report(programs: Sequence[tuple[str, str]], judge: Judge,
                     injections: Sequence[Injection] = INJECTIONS,
                     task: Task | None = None) -> dict:
    """Clean vs injected programs through `judge`; see the module docstring for the measures."""
    task = task or Task(domain="chart", task_id="injection", instruction="")
    jobs: list[tuple[str, str, InjectedProgram | None]] = []
    for program_id, code in programs:
        jobs.append((program_id, code, None))
        for injection in injections:
            injected = inject(program_id, code, injection)
            if injected is not None:
                jobs.append((program_id, injected.code, injected))
    feedbacks = judge([(task, code) for _, code, _ in jobs])
    clean: dict[str, Feedback] = {}
    for (program_id, _, injected), feedback in zip(jobs, feedbacks):
        if injected is None:
            clean[program_id] = feedback
    kinds = {i.kind for i in injections}
    reports = {k: KindReport() for k in sorted(kinds)}
    per_injection: dict[str, KindReport] = collections.defaultdict(KindReport)
    clean_ok = [fb for fb in clean.values() if fb.ok]
    for kind, rep in reports.items():
        rep.clean_flagged = sum(count(fb, kind) > 0 for fb in clean_ok)
    for (program_id, _, injected), feedback in zip(jobs, feedbacks):
        if injected is None or not clean[program_id].ok:
            continue
        kind = injected.injection.kind
        for rep in (reports[kind], per_injection[injected.injection.name]):
            if not feedback.ok:
                rep.not_applicable += 1
                continue
            if not _visibly_changed(clean[program_id], feedback):
                rep.invalid += 1
                continue
            rep.injected += 1
            traced = any(traced_to(feedback, kind, line) for line in injected.lines)
            if traced or count(feedback, kind) > count(clean[program_id], kind):
                rep.detected += 1
                rep.traced += traced
    n_clean = len(clean_ok)
    return {"programs": len(clean), "clean_ran": n_clean, "clean_feedback": clean_ok,
            "clean_ids": [pid for pid, fb in clean.items() if fb.ok],
            "clean_with_any_defect": sum(bool(fb.defects) for fb in clean_ok) / n_clean if n_clean else 0.0,
            "kinds": {k: r.as_dict(n_clean) for k, r in reports.items()},
            "injections": {k: r.as_dict(n_clean) for k, r in sorted(per_injection.items())}}


def _visibly_changed(clean: Feedback, injected: Feedback) -> bool:
    """An injection is valid only when its render differs visibly from the clean one."""
    if clean.render_png is None or injected.render_png is None:
        return True
    limit = 64_000_000
    return visibly_changed(decode_png(clean.render_png, limit), decode_png(injected.render_png, limit))


def format_report(report: dict) -> str:
    """The report as a fixed-width table."""
    head = f"{'kind / injection':28s} {'ran':>5s} {'n/a':>5s} {'recall':>7s} {'traced':>7s} {'clean FP':>9s}"
    rows = [f"{report['programs']} programs, {report['clean_ran']} clean ran; clean programs with any "
            f"defect: {report['clean_with_any_defect']:.1%}", head, "-" * len(head)]
    for section in ("kinds", "injections"):
        for name, r in report[section].items():
            fp = f"{r['clean_fp_rate']:.1%}" if section == "kinds" else ""
            rows.append(f"{name:28s} {r['injected']:5d} {r['not_applicable']:5d} {r['recall']:7.1%} "
                        f"{r['trace_accuracy']:7.1%} {fp:>9s}")
        rows.append("-" * len(head))
    return "\n".join(rows)
