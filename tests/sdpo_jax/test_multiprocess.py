"""Two CPU processes joined by jax.distributed train like one process on the same global batch
(each renders and builds only its own rows), and a checkpoint saved by either restores in the
other to the same train state."""
import os
import shutil
import socket
import subprocess
import sys

import numpy as np
import pytest

SCRIPT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "multiprocess_train.py")
TIMEOUT_S = 1800


def _env(devices: int) -> dict:
    env = dict(os.environ, JAX_PLATFORMS="cpu",
               XLA_FLAGS=f"--xla_force_host_platform_device_count={devices}")
    env.pop("JAX_COORDINATOR_ADDRESS", None)
    return env


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _one(workdir, out) -> None:
    """The script alone: one process with two devices (the same mesh size as two processes)."""
    run = subprocess.run([sys.executable, SCRIPT, str(workdir), str(out)], env=_env(2),
                         capture_output=True, text=True, timeout=TIMEOUT_S)
    assert run.returncode == 0, run.stderr[-3000:]


def _two(workdir, out) -> None:
    """The script as two processes of one device each."""
    port = str(_free_port())
    procs = [subprocess.Popen([sys.executable, SCRIPT, str(workdir), str(out), str(i), "2", port],
                              env=_env(1), stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                              text=True)
             for i in range(2)]
    outs = [p.communicate(timeout=TIMEOUT_S) for p in procs]
    for p, (_, err) in zip(procs, outs):
        assert p.returncode == 0, err[-3000:]


def _state(path) -> list[np.ndarray]:
    with np.load(path) as f:
        return [f[name] for name in f.files]


@pytest.mark.slow
def test_two_processes_equal_one_and_their_checkpoints_restore_in_either(tmp_path):
    _one(tmp_path / "one", tmp_path / "one.npz")
    _two(tmp_path / "two", tmp_path / "two.npz")
    one, two = _state(tmp_path / "one.npz"), _state(tmp_path / "two.npz")
    assert len(one) == len(two) > 0
    for i, (a, b) in enumerate(zip(one, two)):
        np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-6,
                                   err_msg=f"train state leaf {i} differs after two steps")
    assert any(not np.array_equal(a, np.zeros_like(a)) for a in one if a.ndim)

    # Finished workdirs only restore: saved by two, restored in two and in one; and the reverse.
    for saved, runner, state in ((tmp_path / "two", _two, two), (tmp_path / "two", _one, two),
                                 (tmp_path / "one", _two, one)):
        copy = tmp_path / f"{saved.name}_restored_by_{runner.__name__[1:]}"
        shutil.copytree(saved, copy)
        runner(copy, tmp_path / "restored.npz")
        restored = _state(tmp_path / "restored.npz")
        assert len(restored) == len(state)
        for i, (a, b) in enumerate(zip(state, restored)):
            np.testing.assert_array_equal(a, b, err_msg=f"{copy.name}: train state leaf {i}")
