"""The fused SDPO + GRPO loss against the naive full-logits reference, and its properties.

Compile time dominates: every (config, shapes, pytree structure) compiles once and hypothesis
examples reuse it, so the cases below keep shapes in a few fixed buckets while hypothesis draws
masks, credit weights, rewards, groups, log-probs and the random hidden states.
"""
from __future__ import annotations

import dataclasses
import functools
import json
import os
import subprocess
import sys

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from sdpo_jax.losses import LossBatch, LossConfig, reference_loss, sdpo_loss
from sdpo_jax.losses.policy import group_advantages

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
TOL = 1e-5  # |fused - reference| <= TOL * (1 + |reference|), float32

# Every divergence and GRPO option, each with chunk sizes that do not divide the length and
# vocabulary tiles that do not divide the vocabulary. name -> (config, (B, T, H, V)).
CASES = {
    "sampled_token+grpo_token_std_refkl": (dict(
        distill_support="sampled_token", distill_alpha=1.0, beta=0.5, ref_kl_coef=0.1,
        chunk_size=4, vocab_chunk_size=16), (3, 11, 8, 37)),
    "full_forward_kl+grpo_sequence_mean": (dict(
        distill_support="full", distill_alpha=0.0, beta=0.3, advantage="mean",
        aggregation="sequence", chunk_size=5, vocab_chunk_size=10), (2, 9, 6, 41)),
    "full_reverse_kl+is_clip+given_advantages": (dict(
        distill_support="full", distill_alpha=1.0, distill_is_clip=1.5, beta=1.0,
        advantage="given", clip_low=0.1, clip_high=0.3, chunk_size=3, vocab_chunk_size=64),
        (4, 7, 5, 29)),
    "full_jsd+drop_flat_groups+temperature": (dict(
        distill_support="full", distill_alpha=0.3, beta=0.2, drop_flat_groups=True,
        temperature=0.7, chunk_size=64, vocab_chunk_size=7), (3, 10, 8, 50)),
    "topk_tail_jsd+is_clip": (dict(
        distill_support="topk", topk=6, distill_alpha=0.5, distill_is_clip=2.0, chunk_size=4,
        vocab_chunk_size=8), (2, 10, 7, 33)),
    "topk_renorm_reverse+grpo_sequence_refkl": (dict(
        distill_support="topk", topk=4, topk_tail=False, distill_alpha=1.0, beta=0.4,
        aggregation="sequence", ref_kl_coef=0.05, chunk_size=6, vocab_chunk_size=9),
        (3, 8, 4, 31)),
}
SHARED_METRICS = ("loss/total", "loss/distill", "loss/grpo", "distill/div_mean", "policy/entropy",
                  "grpo/clip_frac")


@functools.partial(jax.jit, static_argnames=("config", "impl"))
def _loss_and_grads(student_hidden, teacher_hidden, lm_head, batch, config, impl):
    loss_fn = sdpo_loss if impl == "fused" else reference_loss

    def loss(hidden, head):
        return loss_fn(hidden, teacher_hidden, head, batch, config)

    (value, metrics), grads = jax.value_and_grad(loss, argnums=(0, 1), has_aux=True)(
        student_hidden, lm_head)
    return value, metrics, grads


def _inputs(shape, seed, *, mask, credit, rewards, groups, distill_mask):
    """Random hidden states and head (scale ~2 logits) plus the drawn per-token data."""
    batch_size, length, hidden, vocab = shape
    rng = np.random.default_rng(seed)
    normal = lambda *s: jnp.asarray(rng.standard_normal(s), jnp.float32)
    student, teacher = normal(batch_size, length, hidden), normal(batch_size, length, hidden)
    head = normal(hidden, vocab) * (2.0 / np.sqrt(hidden))
    near = lambda: jnp.asarray(-np.log(vocab) + rng.uniform(-1.5, 1.5, (batch_size, length)),
                               jnp.float32)
    batch = LossBatch(
        tokens=jnp.asarray(rng.integers(0, vocab, (batch_size, length)), jnp.int32),
        mask=jnp.asarray(mask, jnp.float32), credit=jnp.asarray(credit, jnp.float32),
        old_logprobs=near(), ref_logprobs=near(),
        rewards=jnp.asarray(rewards, jnp.float32), group_ids=jnp.asarray(groups, jnp.int32),
        advantages=jnp.asarray(rng.standard_normal(batch_size), jnp.float32),
        distill_mask=jnp.asarray(distill_mask, jnp.float32))
    return student, teacher, head, batch


@st.composite
def _case_data(draw, shape):
    batch_size, length = shape[:2]
    bools = st.lists(st.booleans(), min_size=length, max_size=length)
    mask = [draw(bools) for _ in range(batch_size)]
    credit = [draw(st.lists(st.floats(0.25, 4.0), min_size=length, max_size=length))
              for _ in range(batch_size)]
    return dict(
        seed=draw(st.integers(0, 2**31 - 1)), mask=mask, credit=credit,
        rewards=draw(st.lists(st.sampled_from([0.0, 0.5, 1.0]), min_size=batch_size,
                              max_size=batch_size)),
        groups=draw(st.lists(st.integers(0, 2), min_size=batch_size, max_size=batch_size)),
        distill_mask=draw(st.lists(st.booleans(), min_size=batch_size, max_size=batch_size)))


def _assert_close(actual, expected, what):
    actual, expected = np.asarray(actual, np.float64), np.asarray(expected, np.float64)
    err = np.abs(actual - expected) / (1.0 + np.abs(expected))
    assert np.all(np.isfinite(actual)), f"{what}: fused result has non-finite entries"
    assert err.max() <= TOL, (f"{what}: fused differs from the full-logits reference by "
                              f"{err.max():.2e} (relative, tolerance {TOL}) at index "
                              f"{np.unravel_index(err.argmax(), err.shape)}")


@pytest.mark.parametrize("name", list(CASES))
def test_fused_matches_reference_values_and_gradients(name):
    raw, shape = CASES[name]
    config = LossConfig(**raw)

    @settings(max_examples=4, deadline=None, derandomize=True,
              suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
    @given(data=_case_data(shape))
    def check(data):
        student, teacher, head, batch = _inputs(shape, **data)
        fused = _loss_and_grads(student, teacher, head, batch, config, "fused")
        naive = _loss_and_grads(student, teacher, head, batch, config, "reference")
        _assert_close(fused[0], naive[0], f"{name} loss")
        _assert_close(fused[2][0], naive[2][0], f"{name} d/d student_hidden")
        _assert_close(fused[2][1], naive[2][1], f"{name} d/d lm_head")
        for key in SHARED_METRICS:
            if key in naive[1]:
                _assert_close(fused[1][key], naive[1][key], f"{name} metric {key}")

    check()


def _case(name, **changes):
    raw, shape = CASES[name]
    return LossConfig(**{**raw, **changes}), shape


def _fixed_inputs(shape, seed=0):
    batch_size, length = shape[:2]
    rng = np.random.default_rng(seed + 1)
    return _inputs(shape, seed, mask=rng.random((batch_size, length)) < 0.8,
                   credit=rng.uniform(0.5, 3.0, (batch_size, length)),
                   rewards=rng.choice([0.0, 1.0], batch_size),
                   groups=np.arange(batch_size) // 2, distill_mask=np.ones(batch_size))


@pytest.mark.parametrize("support,alpha", [("full", 0.0), ("full", 0.5), ("full", 1.0),
                                           ("topk", 0.5), ("sampled_token", 1.0)])
def test_divergence_and_its_gradient_vanish_when_teacher_equals_student(support, alpha):
    config = LossConfig(distill_support=support, distill_alpha=alpha, topk=5, chunk_size=4,
                        vocab_chunk_size=16)
    shape = (2, 9, 6, 37)
    student, _, head, batch = _fixed_inputs(shape)
    loss, metrics, (d_hidden, d_head) = _loss_and_grads(student, student, head, batch, config,
                                                        "fused")
    assert abs(float(loss)) < 1e-6, f"{support}(alpha={alpha}) of a model with itself is {loss}"
    assert float(metrics["distill/div_max"]) < 1e-6
    assert float(jnp.abs(d_hidden).max()) < 1e-6 and float(jnp.abs(d_head).max()) < 1e-6, (
        f"{support}: the gradient at teacher == student must be 0 (a minimum of the divergence)")


def test_credit_weights_scale_the_distillation_term_linearly():
    config, shape = _case("full_jsd+drop_flat_groups+temperature")
    student, teacher, head, batch = _fixed_inputs(shape)
    base = _loss_and_grads(student, teacher, head, batch, config, "fused")
    scaled = _loss_and_grads(student, teacher, head,
                             dataclasses.replace(batch, credit=batch.credit * 3.0), config, "fused")
    distill, grpo = float(base[1]["loss/distill"]), float(base[1]["loss/grpo"])
    np.testing.assert_allclose(float(scaled[1]["loss/distill"]), 3.0 * distill, rtol=1e-5)
    np.testing.assert_allclose(float(scaled[1]["loss/grpo"]), grpo, rtol=1e-6)
    np.testing.assert_allclose(float(scaled[0]), 3.0 * distill + config.beta * grpo, rtol=1e-5)


def test_uniform_weights_reduce_to_plain_sdpo():
    config, shape = _case("topk_tail_jsd+is_clip")
    student, teacher, head, batch = _fixed_inputs(shape)
    ones = _loss_and_grads(student, teacher, head,
                           dataclasses.replace(batch, credit=jnp.ones_like(batch.credit)),
                           config, "fused")
    plain = _loss_and_grads(student, teacher, head, dataclasses.replace(batch, credit=None),
                            config, "fused")
    for a, b in zip(jax.tree.leaves(ones[:1] + ones[2:]), jax.tree.leaves(plain[:1] + plain[2:])):
        np.testing.assert_allclose(np.asarray(a), np.asarray(b), rtol=1e-6, atol=1e-7)


def test_beta_zero_is_pure_distillation_and_needs_no_grpo_inputs():
    config, shape = _case("sampled_token+grpo_token_std_refkl")
    student, teacher, head, batch = _fixed_inputs(shape)
    mixed = _loss_and_grads(student, teacher, head, batch, config, "fused")
    pure_config = dataclasses.replace(config, beta=0.0)
    bare = LossBatch(tokens=batch.tokens, mask=batch.mask, credit=batch.credit)
    pure = _loss_and_grads(student, teacher, head, bare, pure_config, "fused")
    assert "loss/grpo" not in pure[1]
    np.testing.assert_allclose(float(pure[0]), float(mixed[1]["loss/distill"]), rtol=1e-6)
    reference = _loss_and_grads(student, teacher, head, bare, pure_config, "reference")
    _assert_close(pure[2][1], reference[2][1], "beta=0 d/d lm_head")


def test_teacher_hidden_and_head_get_no_gradient():
    config, shape = _case("full_reverse_kl+is_clip+given_advantages")
    student, teacher, head, batch = _fixed_inputs(shape)
    teacher_head = head + 0.1

    def loss(s, t, h, th):
        return sdpo_loss(s, t, h, batch, config, teacher_lm_head=th)[0]

    grads = jax.jit(jax.grad(loss, argnums=(0, 1, 2, 3)))(student, teacher, head, teacher_head)
    assert float(jnp.abs(grads[1]).max()) == 0.0, "teacher hidden states received a gradient"
    assert float(jnp.abs(grads[3]).max()) == 0.0, "the teacher's LM head received a gradient"
    assert float(jnp.abs(grads[0]).max()) > 0.0 and float(jnp.abs(grads[2]).max()) > 0.0
    # A shared head: its gradient only comes from the student's use of it.
    shared = _loss_and_grads(student, teacher, head, batch, config, "fused")[2][1]
    separate = jax.jit(jax.grad(loss, argnums=2))(student, teacher, head, head)
    np.testing.assert_array_equal(np.asarray(shared), np.asarray(separate))


def test_failed_rollout_keeps_distillation_and_gets_the_exec_reward_advantage():
    config, shape = _case("sampled_token+grpo_token_std_refkl")
    student, teacher, head, batch = _fixed_inputs(shape)
    # Rollout 1 failed to execute: reward 0 (no executability reward) in a group with successes.
    batch = dataclasses.replace(batch, rewards=jnp.array([1.0, 0.0, 1.0]),
                                group_ids=jnp.array([0, 0, 0]), mask=jnp.ones_like(batch.mask))
    advantages, flat = group_advantages(batch.rewards, batch.group_ids, normalise_std=True, eps=1e-6)
    assert float(advantages[1]) < 0 and not bool(flat.any())
    bare = LossBatch(tokens=batch.tokens, mask=batch.mask, credit=batch.credit)  # reuses a compile
    d_hidden = _loss_and_grads(student, teacher, head, bare,
                               dataclasses.replace(config, beta=0.0), "fused")[2][0]
    assert float(jnp.abs(d_hidden[1]).max()) > 0, "the failed rollout lost its distillation signal"


def test_flat_groups_have_zero_advantage_and_can_be_left_out():
    config, shape = _case("full_jsd+drop_flat_groups+temperature")
    student, teacher, head, batch = _fixed_inputs(shape)
    flat_batch = dataclasses.replace(batch, rewards=jnp.zeros(shape[0]),
                                     group_ids=jnp.zeros(shape[0], jnp.int32))
    loss, metrics, grads = _loss_and_grads(student, teacher, head, flat_batch, config, "fused")
    assert float(metrics["grpo/flat_group_frac"]) == 1.0
    assert float(metrics["loss/grpo"]) == 0.0
    assert all(bool(jnp.isfinite(g).all()) for g in grads)
    advantages, flat = group_advantages(jnp.array([0.3, 0.3, 1.0, 0.2]), jnp.array([5, 5, 9, 7]),
                                        normalise_std=True, eps=1e-6)
    np.testing.assert_array_equal(np.asarray(flat), [True, True, True, True])  # 7, 9: singletons
    np.testing.assert_array_equal(np.asarray(advantages), [0.0, 0.0, 0.0, 0.0])


def test_no_response_tokens_gives_zero_loss_and_finite_gradients():
    config, shape = _case("topk_renorm_reverse+grpo_sequence_refkl")
    student, teacher, head, batch = _fixed_inputs(shape)
    empty = dataclasses.replace(batch, mask=jnp.zeros_like(batch.mask))
    loss, _, grads = _loss_and_grads(student, teacher, head, empty, config, "fused")
    assert float(loss) == 0.0
    assert all(float(jnp.abs(g).max()) == 0.0 for g in grads)


@settings(max_examples=40, deadline=None)
@given(rewards=st.lists(st.sampled_from([0.0, 0.25, 1.0, 3.0]), min_size=6, max_size=6),
       groups=st.lists(st.integers(-3, 3), min_size=6, max_size=6),
       normalise_std=st.booleans())
def test_group_advantages_match_a_plain_numpy_loop(rewards, groups, normalise_std):
    rewards, groups = np.asarray(rewards, np.float32), np.asarray(groups)
    expected = np.zeros(6)
    for i in range(6):
        members = rewards[groups == groups[i]]
        if members.max() == members.min():
            continue
        expected[i] = rewards[i] - members.mean()
        if normalise_std:
            expected[i] /= members.std(ddof=1) + 1e-6
    got, _ = _jitted_advantages(jnp.asarray(rewards), jnp.asarray(groups), normalise_std)
    np.testing.assert_allclose(np.asarray(got), expected, rtol=1e-5, atol=1e-6)


@functools.partial(jax.jit, static_argnums=2)
def _jitted_advantages(rewards, groups, normalise_std):
    return group_advantages(rewards, groups, normalise_std=normalise_std, eps=1e-6)


def test_bfloat16_inputs_track_the_float32_reference():
    config, shape = _case("full_forward_kl+grpo_sequence_mean")
    student, teacher, head, batch = _fixed_inputs(shape)
    bf16 = lambda x: x.astype(jnp.bfloat16)
    loss, _, (d_hidden, d_head) = _loss_and_grads(bf16(student), bf16(teacher), bf16(head), batch,
                                                  config, "fused")
    assert d_hidden.dtype == jnp.bfloat16 and d_head.dtype == jnp.bfloat16
    ref = _loss_and_grads(bf16(student).astype(jnp.float32), bf16(teacher).astype(jnp.float32),
                          bf16(head).astype(jnp.float32), batch, config, "reference")
    np.testing.assert_allclose(float(loss), float(ref[0]), rtol=1e-4)
    np.testing.assert_allclose(np.asarray(d_head, np.float32), np.asarray(ref[2][1]),
                               rtol=2e-2, atol=2e-2 * float(jnp.abs(ref[2][1]).max()))


def test_compiled_memory_never_holds_the_full_logits():
    """The compiler's own accounting: fused temp < ONE [B, T, V] float32 array; naive >> that."""
    batch_size, length, hidden, vocab = 2, 512, 64, 32768
    config = LossConfig(distill_support="full", distill_alpha=0.5, beta=0.5, chunk_size=32,
                        vocab_chunk_size=2048)
    spec = jax.ShapeDtypeStruct
    f32 = jnp.float32
    batch = LossBatch(tokens=spec((batch_size, length), jnp.int32), mask=spec((batch_size, length), f32),
                      credit=spec((batch_size, length), f32),
                      old_logprobs=spec((batch_size, length), f32),
                      rewards=spec((batch_size,), f32), group_ids=spec((batch_size,), jnp.int32))
    args = (spec((batch_size, length, hidden), f32), spec((batch_size, length, hidden), f32),
            spec((hidden, vocab), f32), batch)
    temp = {impl: _loss_and_grads.lower(*args, config=config, impl=impl).compile()
            .memory_analysis().temp_size_in_bytes for impl in ("fused", "reference")}
    logits_bytes = batch_size * length * vocab * 4
    assert temp["fused"] < logits_bytes, (
        f"fused loss+grad needs {temp['fused'] / 1e6:.0f} MB of temporaries, more than one "
        f"[B, T, V] logits array ({logits_bytes / 1e6:.0f} MB): something materialises full logits")
    assert temp["reference"] > 4 * logits_bytes, "the naive reference should hold several logits arrays"


@pytest.mark.parametrize("changes,field", [
    (dict(distill_support="kl"), "distill_support"),
    (dict(distill_alpha=1.5), "distill_alpha"),
    (dict(distill_support="sampled_token", distill_alpha=0.5), "distill_alpha"),
    (dict(topk=0), "topk"),
    (dict(distill_is_clip=-1.0), "distill_is_clip"),
    (dict(beta=float("nan")), "beta"),
    (dict(clip_low=1.0), "clip_low"),
    (dict(temperature=0.0), "temperature"),
    (dict(chunk_size=0), "chunk_size"),
    (dict(aggregation="mean"), "aggregation"),
    (dict(advantage="std"), "advantage"),
])
def test_config_errors_name_the_field(changes, field):
    with pytest.raises(ValueError, match=rf"LossConfig\.{field} "):
        LossConfig(**changes)


def test_batch_errors_name_the_missing_or_misshapen_field():
    config = LossConfig(beta=0.5)
    student = jnp.zeros((2, 5, 4))
    head = jnp.zeros((4, 11))
    batch = LossBatch(tokens=jnp.zeros((2, 5), jnp.int32), mask=jnp.ones((2, 5)))
    with pytest.raises(ValueError, match="LossBatch.old_logprobs is required"):
        sdpo_loss(student, student, head, batch, config)
    bad = dataclasses.replace(batch, old_logprobs=jnp.zeros((2, 5)), rewards=jnp.zeros(3),
                              group_ids=jnp.zeros(2, jnp.int32))
    with pytest.raises(ValueError, match=r"LossBatch.rewards has shape \(3,\)"):
        sdpo_loss(student, student, head, bad, config)
    with pytest.raises(ValueError, match="teacher_hidden"):
        sdpo_loss(student, student[:, :4], head, batch, LossConfig())
    with pytest.raises(ValueError, match="LossConfig.topk = 100 exceeds the vocabulary"):
        sdpo_loss(student, student, head, batch, LossConfig(distill_support="topk"))


_SHARDED_SCRIPT = r"""
import json, numpy as np, jax, jax.numpy as jnp
from jax.sharding import Mesh, NamedSharding, PartitionSpec as P
from sdpo_jax.losses import LossBatch, LossConfig, sdpo_loss
config = LossConfig(distill_support="topk", topk=5, beta=0.5, chunk_size=3, vocab_chunk_size=16)
rng = np.random.default_rng(0)
B, T, H, V = 8, 10, 16, 40
hs, ht = (jnp.asarray(rng.standard_normal((B, T, H)), jnp.float32) for _ in range(2))
head = jnp.asarray(rng.standard_normal((H, V)) * 0.5, jnp.float32)
batch = LossBatch(tokens=jnp.asarray(rng.integers(0, V, (B, T)), jnp.int32), mask=jnp.ones((B, T)),
                  old_logprobs=jnp.full((B, T), -3.5), rewards=jnp.asarray(rng.random(B), jnp.float32),
                  group_ids=jnp.arange(B) // 4)
f = jax.jit(jax.value_and_grad(lambda h, w, t, b: sdpo_loss(h, t, w, b, config)[0], argnums=(0, 1)))
plain = f(hs, head, ht, batch)
mesh = Mesh(np.array(jax.devices()).reshape(4, 2), ("data", "tensor"))
rows = NamedSharding(mesh, P("data"))
put = lambda x: jax.device_put(x, rows)
sharded = f(put(hs), jax.device_put(head, NamedSharding(mesh, P(None, "tensor"))), put(ht),
            jax.tree.map(put, batch))
print(json.dumps({"devices": len(jax.devices()),
                  "err": max(float(jnp.abs(a - b).max()) for a, b in zip(jax.tree.leaves(plain),
                                                                         jax.tree.leaves(sharded)))}))
"""


@pytest.mark.slow
def test_fused_loss_under_an_8_device_mesh_matches_one_device():
    env = dict(os.environ, XLA_FLAGS="--xla_force_host_platform_device_count=8",
               JAX_PLATFORMS="cpu")
    out = subprocess.run([sys.executable, "-c", _SHARDED_SCRIPT], cwd=ROOT, env=env,
                         capture_output=True, text=True, timeout=600)
    assert out.returncode == 0, out.stderr[-3000:]
    result = json.loads(out.stdout.strip().splitlines()[-1])
    assert result["devices"] == 8
    assert result["err"] < 1e-5, f"sharded and single-device results differ by {result['err']}"
