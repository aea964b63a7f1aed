"""Two CPU processes joined by jax.distributed build the same global train inputs as one process
from their own rows, train like one process on the same global batch (each renders and builds
only its own rows), and a checkpoint saved by either restores in the other to the same train
state."""
import os
import shutil
import socket
import subprocess
import sys

import numpy as np
import pytest

HERE = os.path.dirname(os.path.abspath(__file__))
TRAIN = os.path.join(HERE, "multiprocess_train.py")
LAYOUT = os.path.join(HERE, "multiprocess_layout.py")
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


def _one(*args, script: str = TRAIN, devices: int = 2) -> None:
    """The script alone: one process with `devices` devices (two processes' worth)."""
    run = subprocess.run([sys.executable, script, *map(str, args)], env=_env(devices),
                         capture_output=True, text=True, timeout=TIMEOUT_S)
    assert run.returncode == 0, run.stderr[-3000:]


def _two(*args, script: str = TRAIN, devices: int = 1) -> None:
    """The script as two processes of `devices` devices each."""
    port = str(_free_port())
    procs = [subprocess.Popen([sys.executable, script, *map(str, args), str(i), "2", port],
                              env=_env(devices), stdout=subprocess.PIPE,
                              stderr=subprocess.PIPE, text=True)
             for i in range(2)]
    outs = [p.communicate(timeout=TIMEOUT_S) for p in procs]
    for p, (_, err) in zip(procs, outs):
        assert p.returncode == 0, err[-3000:]


def _state(path) -> list[np.ndarray]:
    with np.load(path) as f:
        return [f[name] for name in f.files]


def test_two_hosts_build_the_global_inputs_of_one_from_their_own_rows(tmp_path):
    """Rows with images of different sizes (some without a render): each of two processes (two
    devices each) packs its own rows into its own slots; every row gets the same tokens and every
    visual token the same pixels as when one process packs the whole batch."""
    _one(tmp_path / "one.npz", script=LAYOUT, devices=4)
    _two(tmp_path / "two.npz", script=LAYOUT, devices=2)
    one, two = np.load(tmp_path / "one.npz"), np.load(tmp_path / "two.npz")
    assert one["taken"].shape[0] > 0
    for name in one.files:
        np.testing.assert_array_equal(one[name], two[name], err_msg=name)


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
