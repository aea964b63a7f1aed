"""The teacher's text context (deterministic table / JSON / error log) and the envs.check CLI."""
from __future__ import annotations

import json
import pathlib
import subprocess
import sys

from PIL import Image

from envs.feedback import Defect, ExecError, Feedback
from envs.teacher_context import teacher_context

ROOT = pathlib.Path(__file__).resolve().parents[2]


def rendered() -> Feedback:
    return Feedback(ok=True, render_size=(600, 400), defects=[
        Defect("low_contrast", 0.4, (10, 10, 80, 30), "title 'x' has contrast 1.2:1", ((7, 7),)),
        Defect("overlap", 0.9, (300, 350, 590, 390), "5 of 9 x-tick labels overlap", ((4, 4), (9, 11))),
        Defect("overflow", 0.4, (500, 100, 700, 300), "axes 0 is 30% outside the figure", ())])


def test_defect_table_is_ordered_by_severity_and_names_where_and_lines():
    text = teacher_context(rendered())
    rows = [line for line in text.splitlines() if line.startswith("| ") and line[2].isdigit()]
    assert [r.split("|")[2].strip() for r in rows] == ["overlap", "low_contrast", "overflow"]
    assert "bottom-right (300,350)-(590,390) | 4, 9-11 |" in rows[0]
    assert "top-left (10,10)-(80,30) | 7 |" in rows[1]


def test_context_is_deterministic_and_capped():
    feedback = rendered()
    shuffled = Feedback(ok=True, render_size=(600, 400), defects=list(reversed(feedback.defects)))
    assert teacher_context(feedback) == teacher_context(shuffled)
    assert teacher_context(feedback, style="json") == teacher_context(shuffled, style="json")
    capped = teacher_context(feedback, max_defects=1)
    assert "(2 more defects not shown)" in capped and "low_contrast" not in capped
    as_json = json.loads(teacher_context(feedback, style="json", max_defects=2))
    assert [d["kind"] for d in as_json["defects"]] == ["overlap", "low_contrast"] and as_json["more_defects"] == 1


def test_failed_run_gives_the_error_and_the_end_of_its_log():
    feedback = Feedback.failure(ExecError("ValueError", "x and y must have same first dimension", 12),
                                stderr="Traceback...\n" + "noise\n" * 500 + "ValueError: x and y")
    text = teacher_context(feedback, max_log_chars=100)
    assert "Error (line 12): ValueError: x and y must have same first dimension" in text
    assert text.endswith("ValueError: x and y") and len(text) < 400


def test_clean_render_says_so():
    assert "no visual defects" in teacher_context(Feedback(ok=True, render_size=(10, 10)))


def test_check_cli_prints_one_json_object_and_writes_the_overlay(tmp_path):
    code = tmp_path / "chart.py"
    code.write_text("import matplotlib.pyplot as plt\nfig, ax = plt.subplots(figsize=(4, 3))\n"
                    "ax.plot([1, 2, 3])\nax.set_title('x', color='#fdfdfd')\n")
    target = tmp_path / "target.py"
    target.write_text("import matplotlib.pyplot as plt\nfig, ax = plt.subplots(figsize=(4, 3))\n"
                      "ax.bar([1, 2], [3, 4])\nax.set_title('x')\n")
    out = tmp_path / "out"
    proc = subprocess.run([sys.executable, "-m", "envs.check", "--domain", "chart", str(code),
                           "--target", str(target), "--out", str(out)],
                          capture_output=True, text=True, cwd=ROOT, timeout=300)
    assert proc.returncode == 0, proc.stderr
    lines = proc.stdout.strip().splitlines()
    assert len(lines) == 1, "exactly one JSON object on stdout"
    result = json.loads(lines[0])
    assert set(result) >= {"ok", "error", "reward", "reward_parts", "defects", "timings"}
    assert result["ok"] and result["error"] is None
    assert 0 < result["reward_parts"]["fidelity"] < 1, "same title and layout, different chart type"
    [defect] = [d for d in result["defects"] if d["kind"] == "low_contrast"]
    assert defect["lines"] == [[2, 2], [4, 4]] and len(defect["region"]) == 4
    assert Image.open(out / "defects.png").size == Image.open(out / "render.png").size == (400, 300)
    assert "elements" in json.loads((out / "feedback.json").read_text())


def test_check_cli_rejects_a_missing_file_clearly(tmp_path):
    proc = subprocess.run([sys.executable, "-m", "envs.check", "--domain", "chart", str(tmp_path / "nope.py")],
                          capture_output=True, text=True, cwd=ROOT, timeout=60)
    assert proc.returncode == 2 and "nope.py" in proc.stderr and "does not exist" in proc.stderr
