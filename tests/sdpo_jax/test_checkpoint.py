"""Checkpoints round-trip arrays bit for bit (incl. PRNG keys and bf16) plus host state."""
import jax
import jax.numpy as jnp
import numpy as np

from sdpo_jax.checkpoint import TrainCheckpointer, abstract_like


def test_async_save_then_restore_is_bitwise(tmp_path):
    key = jax.random.key_data(jax.random.key(3))
    arrays = {"params": {"w": jax.random.normal(jax.random.key(0), (4, 3)),
                         "b16": jnp.arange(6, dtype=jnp.bfloat16)},
              "opt": (jnp.zeros(3), jnp.int32(7)), "rng": key}
    host = {"data": {"drawn": 12, "per_source": [5, 7]}, "step": 3}
    ckpt = TrainCheckpointer(str(tmp_path / "ckpt"), max_to_keep=2)
    for step in (1, 2, 3):
        ckpt.save(step, arrays, {**host, "step": step})
    ckpt.wait()
    assert ckpt.latest_step() == 3
    restored, restored_host = ckpt.restore(3, abstract_like(arrays))
    ckpt.close()
    assert restored_host == host
    for a, b in zip(jax.tree.leaves(arrays), jax.tree.leaves(restored)):
        assert a.dtype == b.dtype and a.shape == b.shape
        np.testing.assert_array_equal(np.asarray(a), np.asarray(b))
    kept = sorted(p.name for p in (tmp_path / "ckpt").iterdir() if p.name.isdigit())
    assert kept == ["2", "3"], f"max_to_keep=2 should keep the last two steps, found {kept}"


def test_a_relative_run_directory_saves_and_restores(tmp_path, monkeypatch):
    """`--workdir=runs/tiny` (the README's command) is relative; orbax needs absolute paths."""
    monkeypatch.chdir(tmp_path)
    arrays = {"w": jnp.arange(4.0)}
    ckpt = TrainCheckpointer("runs/x/checkpoints")
    ckpt.save(1, arrays, {"step": 1})
    ckpt.wait()
    restored, host = ckpt.restore(1, abstract_like(arrays))
    ckpt.close()
    assert host == {"step": 1} and (tmp_path / "runs/x/checkpoints/1").is_dir()
    np.testing.assert_array_equal(np.asarray(restored["w"]), np.arange(4.0))
