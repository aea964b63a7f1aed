"""python-pptx programs through the sandbox and a warm LibreOffice (one office for the module)."""
import json
import pathlib
import random
import subprocess
import sys
import time

import psutil
import pytest

from envs.eval import pptx_samples
from envs.slide.pptx_env import PptxEnvConfig, PptxSlideEnv
from envs.sandbox import SandboxLimits
from envs.task import Task
from envs.eval.injection import new_defects


@pytest.fixture(scope="module")
def env():
    slide_env = PptxSlideEnv(PptxEnvConfig(limits=SandboxLimits(wall_seconds=6.0, cpu_seconds=5.0)))
    yield slide_env
    slide_env.close()


def task():
    return Task(domain="slide_pptx", task_id="p", instruction="", width=1280, height=720)


def test_clean_program_renders_without_defects_and_traces_shapes(env):
    program = pptx_samples.clean_program(0)
    fb = env.step(task(), program.code)
    assert fb.ok, fb.error
    assert fb.render_size == (1280, 720) and fb.render_png.startswith(b"\x89PNG")
    assert fb.defects == [], [d.message for d in fb.defects]
    textboxes = {b.create_line for b in program.boxes}
    traced = {span[0] for e in fb.elements if e.kind == "text" for span in e.lines}
    assert textboxes <= traced, f"every add_textbox line must be traced; missing {textboxes - traced}"
    assert min(traced) > 8, "no text shape is traced to the imports or the presentation setup"
    for measure in ("aspect_ratio_reward", "whitespace_reward", "imbalance_reward", "collision_reward"):
        assert 0.0 <= fb.reward_parts[measure] <= 1.0


@pytest.mark.parametrize("kind", pptx_samples.KINDS)
def test_injected_defect_is_detected_and_traced_to_the_edited_line(env, kind):
    program = pptx_samples.clean_program(1)
    clean = env.step(task(), program.code)
    assert clean.ok and not clean.defects, [d.message for d in clean.defects]
    code, line = pptx_samples.inject(program, kind, random.Random(7))
    fb = env.step(task(), code)
    assert fb.ok, fb.error
    found = new_defects(clean.defects, fb.defects, kind)
    assert found, f"{kind} injected at line {line} not detected; got {[d.message for d in fb.defects]}"
    assert any(a <= line <= b for d in found for a, b in d.lines), (
        f"{kind} not traced to line {line}: {[d.lines for d in found]}")


HOSTILE = {
    "never ends": "while True:\n    pass\n",
    "network": "import urllib.request\nurllib.request.urlopen('http://example.com')\n",
    "spawns a shell": "import os\nos.system('echo hi')\n",
    "memory bomb": "x = bytearray(10 ** 11)\n",
    "no deck": "print('hello')\n",
    "syntax error": "from pptx import Presentation\nprs = Presentation(\n",
}


@pytest.mark.parametrize("name", sorted(HOSTILE))
def test_hostile_programs_fail_in_time_and_the_worker_keeps_serving(env, name):
    t0 = time.monotonic()
    fb = env.step(task(), HOSTILE[name])
    assert not fb.ok and fb.error is not None and fb.reward == 0.0, name
    assert time.monotonic() - t0 < 12, f"{name} took too long"
    assert env.step(task(), pptx_samples.clean_program(2).code).ok, f"worker broken after {name}"


def test_crashed_or_hung_libreoffice_is_restarted(env):
    program = pptx_samples.clean_program(3).code
    assert env.step(task(), program).ok
    office = [p for p in psutil.Process(env.office._bridge.pid).children(recursive=True)
              if p.name().startswith("soffice")]
    assert office, "LibreOffice runs under the office sandbox"
    for proc in office:
        proc.kill()  # LibreOffice dies between items
    assert env.step(task(), program).ok, "a dead LibreOffice must be restarted transparently"
    restarts = env.office.restarts
    env.office.convert_timeout_s = 0.001  # the next conversion "hangs"
    try:
        fb = env.step(task(), program)
    finally:
        env.office.convert_timeout_s = 30.0
    assert not fb.ok and fb.error.type == "OfficeError" and env.office.restarts == restarts + 1
    assert env.step(task(), program).ok, "the worker serves again after the restart"


def test_check_cli_judges_a_pptx_program(tmp_path):
    program = tmp_path / "deck.py"
    code, line = pptx_samples.inject(pptx_samples.clean_program(5), "overflow", random.Random(0))
    program.write_text(code)
    out = subprocess.run([sys.executable, "-m", "envs.check", "--domain", "slide_pptx", str(program)],
                         capture_output=True, text=True, timeout=300,
                         cwd=pathlib.Path(__file__).resolve().parents[3])
    assert out.returncode == 0, out.stderr[-2000:]
    report = json.loads(out.stdout)
    assert report["ok"], report["error"]
    overflow = [d for d in report["defects"] if d["kind"] == "overflow"]
    assert overflow and any(a <= line <= b for d in overflow for a, b in d["lines"]), report["defects"]
