"""The envs.check CLI: one JSON object on stdout, the overlay on disk, clear argument errors."""
from __future__ import annotations

import json
import pathlib
import subprocess
import sys

from PIL import Image


ROOT = pathlib.Path(__file__).resolve().parents[2]


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
