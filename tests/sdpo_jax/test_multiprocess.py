"""Two CPU processes joined by jax.distributed train like one process on the same global batch."""
import os
import socket
import subprocess
import sys

import numpy as np
import pytest

SCRIPT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "multiprocess_train.py")


def _env(devices: int) -> dict:
    env = dict(os.environ, JAX_PLATFORMS="cpu",
               XLA_FLAGS=f"--xla_force_host_platform_device_count={devices}")
    env.pop("JAX_COORDINATOR_ADDRESS", None)
    return env


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.mark.slow
def test_two_processes_equal_one_process_on_the_same_global_batch(tmp_path, benchmark_file):
    benchmark_file("chartmimic_direct_v1.jsonl")  # the default config trains on it
    one = subprocess.run([sys.executable, SCRIPT, str(tmp_path / "one"), str(tmp_path / "one.npz")],
                         env=_env(2), capture_output=True, text=True, timeout=1800)
    assert one.returncode == 0, one.stderr[-3000:]
    port = str(_free_port())
    procs = [subprocess.Popen([sys.executable, SCRIPT, str(tmp_path / "two"),
                               str(tmp_path / "two.npz"), str(i), "2", port],
                              env=_env(1), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
             for i in range(2)]
    outs = [p.communicate(timeout=1800) for p in procs]
    for p, (_, err) in zip(procs, outs):
        assert p.returncode == 0, err[-3000:]
    a, b = np.load(tmp_path / "one.npz"), np.load(tmp_path / "two.npz")
    assert len(a.files) == len(b.files) > 0
    for name in a.files:
        np.testing.assert_allclose(a[name], b[name], rtol=1e-5, atol=1e-6,
                                   err_msg=f"parameter leaf {name} differs after two steps")
    assert not np.array_equal(a[a.files[0]], np.zeros_like(a[a.files[0]]))
