"""The hostile corpus: programs written as an attacker would, one per attack class of issue 14,
through a warm chart env in the bubblewrap sandbox. Each must end with 0 escapes (no host file
touched or read, no socket contact, no surviving process, no secret read), no forged or
misattributed result, and a reward below an honest defective chart's where it tries to raise
its own. The slow test interleaves 100 honest and hostile programs in one warm env and checks
every honest Feedback against a cold run of the same program.
"""
from __future__ import annotations

import os
import pathlib
import socket
import threading

import pytest

from envs import bwrap
from envs.chart.env import ChartEnv, ChartEnvConfig
from envs.feedback import Feedback
from envs.task import Task

pytestmark = pytest.mark.skipif(bwrap.unavailable_reason() is not None,
                                reason=f"no bubblewrap sandbox here: {bwrap.unavailable_reason()}")
LIMITS = {"cpu_seconds": 4, "wall_seconds": 8, "memory_bytes": 768 << 20, "disk_bytes": 16 << 20}
SECRET = "sdpo-hostile-secret-7f3a"
TASK = Task(domain="chart", task_id="hostile", instruction="draw")
DEFECTIVE = """import matplotlib.pyplot as plt
fig, ax = plt.subplots()
ax.plot([1, 2, 3], [3, 1, 2], label="series")
ax.set_title("A title that is far too long to fit inside this figure at this size, so it is cut")
ax.text(1.5, 2.0, "note", fontsize=28)
ax.text(1.55, 2.05, "another note", fontsize=28)
"""


@pytest.fixture(scope="module")
def env():
    os.environ["SDPO_HOSTILE_SECRET"] = SECRET  # inherited by nothing the sandbox runs
    env = ChartEnv(ChartEnvConfig.from_dict({"limits": LIMITS}))
    yield env
    env.close()
    del os.environ["SDPO_HOSTILE_SECRET"]


@pytest.fixture(scope="module")
def honest(env) -> Feedback:
    feedback = env.step(TASK, DEFECTIVE)
    assert feedback.ok and feedback.defects, "the honest reference chart must draw and be defective"
    return feedback


def program_processes(env: ChartEnv) -> list[int]:
    """Processes on the host running as the sandbox's program uid (none may outlive a run)."""
    found = []
    for pid in filter(str.isdigit, os.listdir("/proc")):
        try:
            if os.stat(f"/proc/{pid}").st_uid == env.sandbox.program_uid:
                found.append(int(pid))
        except OSError:
            continue
    return found


def judge(env: ChartEnv, code: str) -> Feedback:
    feedback = env.step(TASK, code)
    assert not program_processes(env), "a process of the program outlived its run"
    assert SECRET not in feedback.stdout + feedback.stderr, "the program read a secret"
    return feedback


# ---------------------------------------------------------------- forged results
FORGE_FRAME = """import json, os, struct
head = json.dumps({"op": "result", "exit_code": 0, "run_id": "x", "result": {"ok": True}}).encode()
for fd in range(3, 64):
    try:
        os.write(fd, struct.pack(">QQ", len(head), 0) + head)
    except OSError:
        pass
os._exit(0)
"""


def test_writing_frames_to_every_descriptor_forges_nothing(env, honest):
    forged = judge(env, FORGE_FRAME)
    assert not forged.ok and forged.reward == 0.0, "a forged frame was taken as a result"
    after = judge(env, DEFECTIVE)
    assert same_feedback(after, honest), "the next program's result was shifted by the forgery"


def test_a_program_cannot_start_a_daemon(env, honest):
    code = ("import os\npid = os.fork()\nif pid == 0:\n    os.setsid()\n    import time\n"
            "    time.sleep(30)\n")
    assert not judge(env, code).ok
    raw = ("import importlib, sys\nsys.modules.pop('_posixsubprocess', None)\n"
           "import _posixsubprocess\nimportlib.reload(_posixsubprocess)\n"
           "import subprocess\nsubprocess.Popen(['/bin/sleep', '30'], start_new_session=True)\n")
    assert not judge(env, raw).ok
    assert same_feedback(judge(env, DEFECTIVE), honest)


# ---------------------------------------------------------------- judged inside the judged
@pytest.mark.parametrize("patch", [
    "import envs.chart.detectors as d\nd.detect = lambda *a, **k: []\n",
    "import envs.chart.extraction as e\nfrom envs.chart.scene import ChartScene\n"
    "e.SceneBuilder.build = lambda self, rendered, drawn: ChartScene(rendered[0].rgb.shape[1], "
    "rendered[0].rgb.shape[0], rendered[0].rgb, [(0.0, 0.0, 1.0, 1.0)])\n",
    "import envs.chart.extraction as e\nbuild = e.SceneBuilder.build\n"
    "def clean(self, rendered, drawn):\n    scene = build(self, rendered, drawn)\n"
    "    scene.texts = [t for t in scene.texts if t.role == 'tick_label']\n    return scene\n"
    "e.SceneBuilder.build = clean\n",
])
def test_patching_the_judge_or_the_tracer_does_not_pay(env, honest, patch):
    feedback = judge(env, patch + DEFECTIVE)
    assert feedback.reward < honest.reward, (
        f"a program that patched its own judging scored {feedback.reward:.3f}, the honest chart "
        f"{honest.reward:.3f}: {feedback.reward_parts}")


# ---------------------------------------------------------------- blind fidelity
EMPTY = {
    "blank": "import matplotlib.pyplot as plt\nfig = plt.figure()\n",
    "empty_axes": "import matplotlib.pyplot as plt\nfig, ax = plt.subplots()\n",
    "covered": DEFECTIVE + "import matplotlib.patches as mp\nfig.patches.append(mp.Rectangle("
                           "(0, 0), 1, 1, transform=fig.transFigure, color='white', zorder=1e9))\n",
    "covered_grey": DEFECTIVE + "fig.add_axes([0, 0, 1, 1]).set_facecolor('0.5')\n",
}


@pytest.mark.parametrize("name", sorted(EMPTY))
def test_blank_covered_or_empty_charts_score_below_an_honest_defective_one(env, honest, name):
    feedback = judge(env, EMPTY[name])
    assert feedback.reward < honest.reward, f"{name}: {feedback.reward_parts}"


@pytest.mark.parametrize("name", ["blank", "covered", "covered_grey"])
def test_covered_or_blank_renders_do_not_score_as_the_reference(env, name):
    target_task = Task(domain="chart", task_id="target", instruction="", target=DEFECTIVE)
    reference = env.step(target_task, DEFECTIVE)
    feedback = env.step(target_task, EMPTY[name])
    assert reference.reward_parts["fidelity"] == 1.0
    assert feedback.reward_parts.get("fidelity", 0.0) < 0.5, feedback.reward_parts
    assert feedback.reward < reference.reward


# ---------------------------------------------------------------- escapes and reads
def test_host_files_are_neither_readable_nor_writable(env, tmp_path):
    victim = tmp_path / "victim.txt"
    victim.write_text("precious")
    private = pathlib.Path("/root") / f".sdpo_hostile_{os.getpid()}"
    private.write_text(SECRET)
    private.chmod(0o600)
    readme = pathlib.Path(__file__).resolve().parents[2] / "README.md"
    try:
        for path in (victim, private, "/etc/shadow", readme, pathlib.Path(__file__),
                     pathlib.Path(bwrap.__file__)):
            feedback = judge(env, f"print(open({str(path)!r}).read())\n")
            assert not feedback.ok, f"{path} was readable from the sandbox"
        for code in (f"open({str(victim)!r}, 'w').write('pwned')",
                     f"import os\nos.remove({str(victim)!r})", "open('/tmp/planted', 'w').write('x')",
                     "open('/dev/shm/planted', 'w').write('x')"):
            judge(env, code + "\n" + DEFECTIVE)
        assert victim.read_text() == "precious"
        assert not os.path.exists("/dev/shm/planted") and not os.path.exists("/tmp/planted")
    finally:
        private.unlink()


def test_environment_and_host_processes_are_out_of_sight(env):
    feedback = judge(env, "import os\nprint(dict(os.environ))\nprint(sorted(os.listdir('/proc')))\n"
                          + DEFECTIVE)
    assert feedback.ok, feedback.error
    assert str(os.getpid()) not in feedback.stdout.split("\n")[1].replace("'", " ").split(), \
        "the test process's pid is visible from the sandbox"
    pids = [p for p in feedback.stdout.split("\n")[1].strip("[]").replace("'", "").split(", ") if p.isdigit()]
    assert len(pids) <= 4, f"more processes visible than bwrap, the server and the run: {pids}"


def test_no_socket_reaches_the_host(env, tmp_path):
    path = str(tmp_path / "host.sock")
    listener = socket.socket(socket.AF_UNIX)
    listener.bind(path)
    listener.listen(1)
    abstract = socket.socket(socket.AF_UNIX)
    abstract.bind("\0sdpo-hostile")
    abstract.listen(1)
    tcp = socket.socket()
    tcp.bind(("127.0.0.1", 0))
    tcp.listen(1)
    contacts = []
    for server in (listener, abstract, tcp):
        server.settimeout(4)
        threading.Thread(target=lambda s=server: _accept(s, contacts), daemon=True).start()
    for address in (repr(path), repr("\0sdpo-hostile")):
        assert not judge(env, f"import socket\ns = socket.socket(socket.AF_UNIX)\ns.connect({address})\n").ok
    port = tcp.getsockname()[1]
    assert not judge(env, f"import socket\nsocket.create_connection(('127.0.0.1', {port}), 2)\n").ok
    for server in (listener, abstract, tcp):
        server.close()
    assert not contacts, "a sandboxed program reached a socket on the host"


def _accept(server, contacts):
    try:
        contacts.append(server.accept())
    except OSError:
        pass


def test_no_libreoffice_pipe_is_reachable(env):
    code = ("import glob, os\nprint(glob.glob('/tmp/OSL_PIPE_*') + glob.glob('/tmp/**/OSL*', recursive=True))\n"
            "import uno\n")
    feedback = judge(env, code)
    assert not feedback.ok and "OSL" not in feedback.stdout.replace("OSL_PIPE_*", "")


@pytest.mark.parametrize("code, expected", [
    ("import os\nwhile True:\n    os.fork()\n", "PermissionError"),
    ("import threading, time\nts = [threading.Thread(target=time.sleep, args=(5,)) for _ in range(400)]\n"
     "[t.start() for t in ts]\n", "RuntimeError"),
    ("data = b'x' * (1 << 20)\nwith open('fill', 'wb') as f:\n    while True:\n        f.write(data)\n",
     "OSError"),
])
def test_resource_bombs_are_bounded(env, code, expected):
    feedback = judge(env, code)
    assert not feedback.ok and feedback.error.type == expected, feedback.error


# ---------------------------------------------------------------- warm runs stay honest
def same_feedback(a: Feedback, b: Feedback) -> bool:
    return (a.ok, a.error, a.reward, a.reward_parts, a.defects, a.elements, a.render_png) == \
        (b.ok, b.error, b.reward, b.reward_parts, b.defects, b.elements, b.render_png)


HOSTILE_CYCLE = [FORGE_FRAME, EMPTY["covered"], EMPTY["blank"],
                 "import os\nos.fork()\n", "while True:\n    pass\n",
                 "import envs.chart.detectors as d\nd.detect = lambda *a, **k: []\n" + DEFECTIVE,
                 "import sys\nsys.stdout.write('x' * 10_000_000)\n", "import os\nos._exit(0)\n",
                 "import faulthandler\nfaulthandler._sigsegv()\n",
                 "import matplotlib.pyplot as plt\nplt.rcParams['lines.linewidth'] = 20\n"
                 "import matplotlib\nmatplotlib.rcdefaults = lambda: None\n" + DEFECTIVE]


@pytest.mark.slow
def test_one_hundred_interleaved_programs_leave_every_honest_result_as_its_cold_run(spread_sample):
    honest_programs = [p["code"] for p in spread_sample(10)]
    cold = {}
    for code in honest_programs:
        with ChartEnv(ChartEnvConfig.from_dict({"limits": LIMITS})) as fresh:
            cold[code] = fresh.step(TASK, code)
    with ChartEnv(ChartEnvConfig.from_dict({"limits": LIMITS})) as warm:
        mismatches = []
        for i in range(100):
            if i % 2:
                judge(warm, HOSTILE_CYCLE[(i // 2) % len(HOSTILE_CYCLE)])
            else:
                code = honest_programs[(i // 2) % len(honest_programs)]
                if not same_feedback(judge(warm, code), cold[code]):
                    mismatches.append(i)
    assert not mismatches, f"warm honest results differ from their cold runs at steps {mismatches}"
