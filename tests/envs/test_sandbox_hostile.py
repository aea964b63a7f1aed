"""Hostile programs through the chart env: each comes back as an ok=False Feedback within its
time limit + 2 s, leaves no process behind and changes nothing outside its working dir.

Runs in every isolation mode this machine offers ('bwrap' needs root and bubblewrap; the
'process' fallback always).
"""
from __future__ import annotations

import os
import socket
import threading
import time

import pytest

from envs.chart.env import ChartEnv, ChartEnvConfig
from envs import bwrap
from envs.sandbox import Sandbox
from envs.task import Task

LIMITS = {"cpu_seconds": 2, "wall_seconds": 4, "memory_bytes": 512 << 20, "output_bytes": 4096}
MODES = (["bwrap"] if bwrap.unavailable_reason() is None else []) + ["process"]
TASK = Task(domain="chart", task_id="hostile", instruction="draw")
CHART = "import matplotlib.pyplot as plt\nfig, ax = plt.subplots()\nax.plot([1, 2, 3])\n"


@pytest.fixture(scope="module", params=MODES)
def env(request):
    env = ChartEnv(ChartEnvConfig.from_dict({"isolation": request.param, "limits": LIMITS}))
    assert env.sandbox.isolation == request.param
    yield env
    env.close()


@pytest.fixture
def victim(tmp_path):
    """A file and a directory outside the sandbox that hostile programs try to touch."""
    target = tmp_path / "victim.txt"
    target.write_text("precious")
    folder = tmp_path / "victim_dir"
    folder.mkdir()
    (folder / "inner.txt").write_text("precious too")
    return tmp_path


def survivors(sandbox: Sandbox) -> list[int]:
    """Processes started by this sandbox other than its server (none may outlive a run)."""
    marker = f"SDPO_SANDBOX_ID={sandbox.sandbox_id}".encode()
    server = set(sandbox.server_pids)
    found = []
    for pid in filter(str.isdigit, os.listdir("/proc")):
        try:
            with open(f"/proc/{pid}/environ", "rb") as f:
                if marker in f.read().split(b"\0") and int(pid) not in server:
                    found.append(int(pid))
        except OSError:
            continue
    return found


def judge(env: ChartEnv, code: str):
    start = time.monotonic()
    feedback = env.step(TASK, code)
    elapsed = time.monotonic() - start
    assert elapsed <= LIMITS["wall_seconds"] + 2, f"took {elapsed:.1f} s, over the limit + 2 s"
    assert not survivors(env.sandbox), "a process started by the program outlived its run"
    return feedback


HOSTILE = {
    "infinite_loop": ("while True:\n    pass\n", "Timeout"),
    "sleep_forever": ("import time\ntime.sleep(1000)\n", "Timeout"),
    "fork_bomb": ("import os\nwhile True:\n    os.fork()\n", "PermissionError"),
    "memory_hog": ("hog = []\nwhile True:\n    hog.append(bytearray(50_000_000))\n", "MemoryError"),
    "huge_output": ("while True:\n    print('x' * 100_000)\n", "Timeout"),
    "os_system": ("import os\nos.system('echo hi > /tmp/sdpo_hostile_system')\n", "PermissionError"),
    "subprocess": ("import subprocess\nsubprocess.run(['true'])\n", "PermissionError"),
    "raw_fork_exec": ("import _posixsubprocess\n_posixsubprocess.fork_exec()\n", "PermissionError"),
    "kill_parent": ("import os\nos.kill(os.getppid(), 9)\n", "PermissionError"),
    "ctypes_fork": ("import ctypes\nctypes.CDLL(None).fork()\n", "PermissionError"),
    "sys_exit": (CHART + "import sys\nsys.exit(0)\n", "SystemExit"),
    "os_exit": (CHART + "import os\nos._exit(0)\n", "Exit"),
    "segfault": ("import faulthandler\nfaulthandler._sigsegv()\n", "Crash"),
    "show_without_figure": ("import matplotlib.pyplot as plt\nplt.show()\n", "NoFigure"),
    "lone_surrogates": ("x = '\udcff\udcfe'\n", "UnicodeEncodeError"),
    "null_byte": ("x = 1\x00\n", "SyntaxError"),
    "non_utf8_output": ("import sys\nsys.stdout.buffer.write(b'\\xff\\xfe\\x80')\n", "NoFigure"),
    "recursion": ("def f():\n    f()\nf()\n", "RecursionError"),
}


TIMEOUTS = {"infinite_loop", "sleep_forever", "huge_output"}


@pytest.mark.parametrize("name", sorted(HOSTILE))
def test_hostile_program_fails_cleanly(env, name):
    if name in TIMEOUTS and env.sandbox.isolation != MODES[0]:
        pytest.skip("time-outs take the same path in every isolation mode (checked in the first)")
    code, expected = HOSTILE[name]
    feedback = judge(env, code)
    assert not feedback.ok, f"{name}: a hostile program must not count as a chart"
    assert feedback.reward == 0.0 and feedback.render_png is None
    assert feedback.error is not None and feedback.error.type == expected, \
        f"{name}: expected {expected}, got {feedback.error}"
    assert len(feedback.stdout.encode()) <= LIMITS["output_bytes"]


def test_huge_output_is_capped_and_a_chart_after_it_still_counts(env):
    feedback = judge(env, "print('y' * 5_000_000)\n" + CHART)
    assert feedback.ok, feedback.error
    assert 0 < len(feedback.stdout.encode()) <= LIMITS["output_bytes"]


def test_writes_and_deletes_outside_the_working_dir_change_nothing(env, victim):
    attempts = [f"open({str(victim / 'new.txt')!r}, 'w').write('pwned')",
                f"open({str(victim / 'victim.txt')!r}, 'a').write('pwned')",
                f"import os\nos.remove({str(victim / 'victim.txt')!r})",
                f"import shutil\nshutil.rmtree({str(victim / 'victim_dir')!r})",
                f"import os\nos.rename({str(victim / 'victim.txt')!r}, 'stolen.txt')",
                f"import os\nos.chmod({str(victim / 'victim.txt')!r}, 0)",
                f"import os\nos.symlink({str(victim / 'victim.txt')!r}, 'link')\nopen('link', 'w').write('x')"]
    before = {p: (p.stat().st_mode, p.read_bytes() if p.is_file() else None) for p in victim.rglob("*")}
    for code in attempts:
        feedback = judge(env, code + "\n" + CHART)
        assert not feedback.ok, f"this write outside the sandbox was not refused:\n{code}"
    after = {p: (p.stat().st_mode, p.read_bytes() if p.is_file() else None) for p in victim.rglob("*")}
    assert after == before, "a program changed files outside its working directory"


def test_writing_inside_the_working_dir_is_fine(env):
    feedback = judge(env, "open('data.csv', 'w').write('1,2')\nimport os\nos.makedirs('out')\n" + CHART)
    assert feedback.ok, feedback.error


def test_socket_connect_fails(env):
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(1)
    listener.settimeout(6)
    port = listener.getsockname()[1]
    accepted = []
    thread = threading.Thread(target=lambda: _accept(listener, accepted), daemon=True)
    thread.start()
    code = (f"import socket\ns = socket.create_connection(('127.0.0.1', {port}), timeout=2)\n"
            "s.sendall(b'leak')\n" + CHART)
    feedback = judge(env, code)
    listener.close()
    thread.join(7)
    assert not feedback.ok and feedback.error.type in ("PermissionError", "OSError", "ConnectionRefusedError"), \
        feedback.error
    assert not accepted, "the sandboxed program reached a socket on the host"
    external = judge(env, "import urllib.request\nurllib.request.urlopen('http://1.1.1.1', timeout=2)\n" + CHART)
    assert not external.ok


def _accept(listener, accepted):
    try:
        accepted.append(listener.accept())
    except OSError:
        pass


def test_one_megabyte_program(env):
    big = "x = 1\n" * 175_000  # ~1 MB
    assert len(big) > 1_000_000
    too_big = judge(env, big + CHART)
    assert not too_big.ok and too_big.error.type == "ProgramTooLarge"
    start = time.monotonic()
    run = env.sandbox.run(big, env.request(TASK, fidelity=False))  # past the env's size check
    assert time.monotonic() - start <= LIMITS["wall_seconds"] + 2
    outcome = run.result["error"]["type"] if run.ok else run.error.type
    assert outcome in ("NoFigure", "Timeout"), "compiles and runs to no figure (or, on a loaded " \
        f"machine, past its 2 CPU seconds): got {outcome}"


def test_a_normal_chart_still_works_after_the_hostile_corpus(env):
    feedback = judge(env, CHART)
    assert feedback.ok and feedback.render_png.startswith(b"\x89PNG")
