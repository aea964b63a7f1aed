"""EnvPool: a stream of Feedback as items finish; workers killed with SIGKILL mid-batch are
replaced, their items retried once, and no item is lost or duplicated."""
from __future__ import annotations

import os
import pathlib
import random
import signal
import subprocess
import sys
import time

import pytest

from envs.pool import EnvPool, EnvSetupError
from envs.task import Task


def items(n: int) -> list[tuple[Task, str]]:
    """Chart programs whose render names their index (so a mixed-up result is caught)."""
    return [(Task(domain="chart", task_id=f"item{i}", instruction=""),
             f"import matplotlib.pyplot as plt\nfig, ax = plt.subplots(figsize=(3, 2))\n"
             f"ax.plot([0, {i % 7 + 1}])\nax.set_title('item {i}')\n") for i in range(n)]


def title_of(feedback) -> list[str]:
    return [e.text for e in feedback.elements if e.attrs.get("role") == "title"]


def run_with_kills(n_items: int, n_kills: int, workers: int = 2) -> None:
    rng = random.Random(n_items)
    kill_after = sorted(rng.sample(range(2, n_items - 2), n_kills))
    got: dict[int, list] = {}
    with EnvPool(workers, {"chart": {}}, warm=["chart"], item_timeout_s=120) as pool:
        for index, feedback in pool.stream(items(n_items)):
            got.setdefault(index, []).append(feedback)
            while kill_after and len(got) >= kill_after[0]:
                kill_after.pop(0)
                os.kill(rng.choice(pool.worker_pids), signal.SIGKILL)
        restarts = pool.restarts
    assert sorted(got) == list(range(n_items)), "an item was lost"
    assert all(len(v) == 1 for v in got.values()), "an item was reported twice"
    crashed = [i for i, (fb,) in got.items() if not fb.ok]
    assert all(got[i][0].error.type == "WorkerCrash" for i in crashed), \
        [got[i][0].error for i in crashed]
    assert len(crashed) <= n_kills // 2, "an item hit by one kill must be retried, not failed"
    wrong = [i for i, (fb,) in got.items() if fb.ok and title_of(fb) != [f"item {i}"]]
    assert not wrong, f"feedback delivered for the wrong item: {wrong}"
    assert restarts >= n_kills


def test_stream_survives_sigkilled_workers():
    run_with_kills(n_items=24, n_kills=2)


@pytest.mark.slow
def test_stream_survives_sigkilled_workers_over_200_items():
    run_with_kills(n_items=200, n_kills=8)


def test_ordered_stream_submit_poll_and_a_hung_worker():
    with EnvPool(1, {"chart": {"limits": {"wall_seconds": 60, "cpu_seconds": 60}}},
                 warm=["chart"], item_timeout_s=8, max_attempts=1) as pool:
        batch = items(4)
        assert [index for index, _ in pool.stream(batch, ordered=True)] == [0, 1, 2, 3]
        hang = pool.submit(Task(domain="chart", task_id="hang", instruction=""), "import time\ntime.sleep(600)\n")
        start = time.monotonic()
        [(item_id, feedback)] = pool.poll(timeout=60)
        assert item_id == hang and time.monotonic() - start < 8 + 10
        assert feedback.error.type == "WorkerCrash" and "longer than 8 s" in feedback.error.message
        assert pool.restarts == 1 and pool.poll(timeout=0) == []


@pytest.mark.slow
def test_a_hung_item_is_retried_once_then_failed_and_the_next_item_still_runs():
    with EnvPool(1, {"chart": {"limits": {"wall_seconds": 60, "cpu_seconds": 60}}},
                 warm=["chart"], item_timeout_s=10, max_attempts=2) as pool:
        hang = pool.submit(Task(domain="chart", task_id="hang", instruction=""), "import time\ntime.sleep(600)\n")
        fine = pool.submit(*items(1)[0])
        done = dict(pool.results([hang, fine]))
        assert done[hang].error.type == "WorkerCrash" and "2 attempts" in done[hang].error.message
        assert done[fine].ok and pool.restarts == 2


def running(pids: list[int]) -> list[int]:
    alive = []
    for pid in pids:
        try:
            with open(f"/proc/{pid}/stat") as f:
                if f.read().rsplit(")", 1)[1].split()[0] != "Z":
                    alive.append(pid)
        except OSError:
            pass
    return alive


def test_no_worker_outlives_the_pool():
    pool = EnvPool(2, {})
    pids = pool.worker_pids
    pool.close()
    time.sleep(0.5)
    assert not running(pids), f"workers still running after close(): {running(pids)}"


@pytest.mark.parametrize("ending", ["exit", "sigkill"])
def test_no_worker_outlives_its_owner_process(ending):
    """At interpreter exit without close() (atexit), or when the owner is SIGKILLed (the
    workers' parent-death signal), every worker goes too."""
    script = ("import sys, time\nfrom envs.pool import EnvPool\npool = EnvPool(2, {})\n"
              "print(*pool.worker_pids, flush=True)\n" + ("time.sleep(600)\n" if ending == "sigkill" else ""))
    owner = subprocess.Popen([sys.executable, "-c", script], stdout=subprocess.PIPE, text=True,
                             cwd=pathlib.Path(__file__).resolve().parents[2])
    pids = [int(p) for p in owner.stdout.readline().split()]
    assert len(pids) == 2
    if ending == "sigkill":
        owner.kill()
    owner.wait(timeout=60)
    deadline = time.monotonic() + 10
    while running(pids) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert not running(pids), f"orphaned workers: {running(pids)}"


def test_an_env_that_fails_on_every_item_stops_the_caller_with_the_reason():
    """A setup problem (here a config key the chart env does not have; on a bare machine, no
    sandbox) must stop a run, not turn every rollout into a silent failed execution."""
    with EnvPool(1, {"chart": {"no_such_setting": 1}}, max_env_errors_in_a_row=3) as pool:
        with pytest.raises(EnvSetupError, match="no_such_setting"):
            pool.map(items(4))


def test_env_errors_between_working_items_are_reported_per_item():
    broken = (Task(domain="web", task_id="x", instruction=""), "<p>hi</p>")
    mixed = [pair for good in items(4) for pair in (broken, good)]
    with EnvPool(1, {"chart": {}, "web": {"no_such_setting": 1}},
                 max_env_errors_in_a_row=2) as pool:
        feedbacks = pool.map(mixed)
    assert [fb.error.type for fb in feedbacks[::2]] == ["EnvError"] * 4
    assert all(fb.ok for fb in feedbacks[1::2])
