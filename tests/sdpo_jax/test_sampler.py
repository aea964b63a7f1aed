"""The rollout engine (sdpo_jax/sampler.py) and its token choice (sdpo_jax/sampling.py).

Shown here: greedy tokens equal transformers' `generate` on a left-padded batch of prompts with
two, one and no images (tiny loud-weight model, weights copied through the converter); the three
returned log-probs equal a teacher-forced forward over prompt + response; the token choice draws
from exactly the truncated distribution (chi-square over many keys, across CDF blocks); results
are reproducible, independent of batch slot and composition, and compile once per bucket; the
8-fake-device sharded run equals the single-device one (in a subprocess, so XLA_FLAGS applies
before jax starts).
"""
from __future__ import annotations

import json
import os
import re
import subprocess
import sys

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from scipy import stats

# The tiny-model helpers live with the model tests.
sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), os.pardir, "models"))
import qwen3vl_tiny as tiny  # noqa: E402
from configs import default  # noqa: E402
from models.qwen3_vl.convert import DictSource, load_params  # noqa: E402
from models.qwen3_vl.rope_index import rope_index  # noqa: E402
from models.qwen3_vl.tokenizer import Qwen3Tokenizer  # noqa: E402
from models.qwen3_vl.vision_inputs import prepare_vision_inputs  # noqa: E402
from sdpo_jax.sampler import (FINISH_LENGTH, FINISH_STOP, Prompt, Sampler, SamplerConfig,  # noqa: E402
                              SamplerError)
from sdpo_jax.run_config import RunConfig  # noqa: E402
from sdpo_jax.sampling import Sampling, choose_tokens, inverse_cdf  # noqa: E402

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), os.pardir, os.pardir))
MAX_NEW = 12
TEXT_BUDGET = 7  # the text-only prompt asks for fewer tokens than the others


def tiny_prompts(config, text_seed: int = 5) -> list[Prompt]:
    """Prompt 0: two images (25 tokens); prompt 1: one image (14); prompt 2: text only (9)."""
    batch = tiny.image_batch(config)
    ids, mask = batch["input_ids"], batch["attention_mask"].astype(bool)
    split = int(np.prod(batch["image_grid_thw"][:2], axis=1).sum())
    text = np.random.default_rng(text_seed).integers(1, 60, 9)
    return [Prompt(0, ids[0][mask[0]], batch["pixel_values"][:split], batch["image_grid_thw"][:2],
                   max_new_tokens=MAX_NEW),
            Prompt(1, ids[1][mask[1]], batch["pixel_values"][split:], batch["image_grid_thw"][2:],
                   max_new_tokens=MAX_NEW),
            Prompt(2 + text_seed, text, max_new_tokens=TEXT_BUDGET)]


@pytest.fixture(scope="module")
def setup():
    hf, state_dict = tiny.hf_tiny_model()
    config = tiny.tiny_config()
    model = load_params(config, DictSource(state_dict))
    return dict(hf=hf, config=config, model=model, tokenizer=Qwen3Tokenizer.load(),
                prompts=tiny_prompts(config))


def _sampler(setup, sampling: Sampling, group_size: int, **options) -> Sampler:
    config = SamplerConfig(group_size=group_size, max_new_tokens=MAX_NEW + 4, sampling=sampling,
                           prompt_bucket=32, patch_bucket=64, **options)
    return Sampler(config, setup["tokenizer"])


# ------------------------------------------------------------------------------- transformers
def hf_generate(hf, prompts: list[Prompt], suppress: list[int], eos: list[int] | None
                ) -> np.ndarray:
    """transformers' greedy `generate` on the prompts, left-padded into one batch."""
    import torch

    length = max(len(p.input_ids) for p in prompts)
    ids = np.zeros((len(prompts), length), np.int64)
    mask = np.zeros_like(ids)
    for row, p in enumerate(prompts):
        ids[row, length - len(p.input_ids):] = p.input_ids
        mask[row, length - len(p.input_ids):] = 1
    with_images = [p for p in prompts if p.image_grid_thw is not None]
    inputs = dict(
        input_ids=torch.from_numpy(ids), attention_mask=torch.from_numpy(mask),
        pixel_values=torch.from_numpy(np.concatenate([p.pixel_values for p in with_images])),
        image_grid_thw=torch.from_numpy(np.concatenate([p.image_grid_thw for p in with_images])),
        mm_token_type_ids=torch.from_numpy((ids == tiny.tiny_config().image_token_id).astype(
            np.int64)))
    with torch.no_grad():
        out = hf.generate(**inputs, max_new_tokens=MAX_NEW, do_sample=False, eos_token_id=eos,
                          pad_token_id=tiny.PAD, suppress_tokens=suppress)
    return out[:, length:].numpy()


def test_greedy_tokens_equal_transformers_generate(setup):
    suppress = [setup["config"].image_token_id, setup["config"].video_token_id]
    free = hf_generate(setup["hf"], setup["prompts"], suppress, eos=None)
    stop = int(free[0, 3])  # a token row 0 really produces, so at least one row stops on it
    expected = hf_generate(setup["hf"], setup["prompts"], suppress, eos=[stop])

    sampler = _sampler(setup, Sampling(temperature=0), group_size=2, stop_token_ids=(stop,))
    rollouts = sampler(setup["model"], setup["prompts"], key=0)

    assert rollouts.tokens.shape[0] == 6 and list(rollouts.prompt_ids) == [0, 0, 1, 1, 7, 7]
    for row in range(6):
        prompt = row // 2
        budget = TEXT_BUDGET if prompt == 2 else MAX_NEW
        theirs = expected[prompt].tolist()
        theirs = theirs[:theirs.index(stop) + 1] if stop in theirs else theirs
        theirs = theirs[:budget]
        ours = rollouts.tokens[row, :rollouts.lengths[row]].tolist()
        assert ours == theirs, (f"row {row} (prompt {prompt}): greedy tokens {ours} differ from "
                                f"transformers' generate {theirs}")
        reason = FINISH_STOP if ours[-1] == stop and stop in theirs else FINISH_LENGTH
        assert rollouts.finish_reasons[row] == reason
    assert FINISH_STOP in rollouts.finish_reasons
    # The loop ends as soon as every row is done, not at the static budget of MAX_NEW + 4.
    assert rollouts.decode_steps == rollouts.lengths.max() - 1
    assert (rollouts.tokens[~rollouts.mask] == setup["tokenizer"].special.pad).all()

    # On CPU the decode layout (per-layer weights and cache, vocabulary-major head) is the
    # default; the plain model (the default on TPU) gives the same rollouts.
    assert sampler._decode_layout(), "CPU runs should use the decode layout by default"
    stacked = _sampler(setup, Sampling(temperature=0), group_size=2, stop_token_ids=(stop,),
                       decode_layout=False)(setup["model"], setup["prompts"], key=0)
    np.testing.assert_array_equal(stacked.tokens, rollouts.tokens)
    np.testing.assert_allclose(stacked.logprobs, rollouts.logprobs, atol=1e-5)


# ------------------------------------------------------------------------------ log-probs
def _truncated_logprob(logits: np.ndarray, token: int, sampling: Sampling,
                       suppress: list[int]) -> float:
    """log p(token) under temperature -> top-k -> top-p, written independently with a sort."""
    z = logits.astype(np.float64)
    z[suppress] = -np.inf
    z = z / sampling.temperature
    order = np.argsort(-z, kind="stable")
    if sampling.top_k:
        order = order[:sampling.top_k]
    probs = np.exp(z[order] - z[order].max())
    probs /= probs.sum()
    keep = (np.cumsum(probs) - probs) < sampling.top_p
    keep[0] = True
    kept = z[order[keep]]
    assert token in order[keep], f"token {token} was sampled from outside the truncated support"
    return float(z[token] - (kept.max() + np.log(np.exp(kept - kept.max()).sum())))


def _teacher_forced_logits(setup, rollouts, prompts: list[Prompt]) -> tuple[np.ndarray, list]:
    """Our model's full forward over every (prompt + response) row, left-padded, no cache."""
    by_id = {p.prompt_id: p for p in prompts}
    rows = [(by_id[pid], rollouts.tokens[r, :rollouts.lengths[r]])
            for r, pid in enumerate(rollouts.prompt_ids)]
    length = max(len(p.input_ids) + len(resp) for p, resp in rows)
    ids = np.zeros((len(rows), length), np.int64)
    mask = np.zeros_like(ids)
    for r, (p, resp) in enumerate(rows):
        seq = np.concatenate([p.input_ids, resp])
        ids[r, length - len(seq):] = seq
        mask[r, length - len(seq):] = 1
    images = [p for p, _ in rows if p.image_grid_thw is not None]
    grid = np.concatenate([p.image_grid_thw for p in images])
    positions, _ = rope_index(ids, setup["config"], image_grid_thw=grid, attention_mask=mask)
    vision = prepare_vision_inputs(setup["config"].vision,
                                   pixel_values=np.concatenate([p.pixel_values for p in images]),
                                   image_grid_thw=grid)
    logits = jax.jit(lambda *a: setup["model"](*a))(jnp.asarray(ids), jnp.asarray(positions),
                                                    jnp.asarray(mask), vision)
    return np.asarray(logits), [len(resp) for _, resp in rows]


def test_logprobs_equal_a_teacher_forced_forward_and_runs_are_reproducible(setup):
    sampling = Sampling(temperature=0.8, top_k=0, top_p=0.9)  # top-p over the whole vocabulary
    # Decoding in stages of 5 steps, the cache growing between them, changes nothing.
    sampler = _sampler(setup, sampling, group_size=3, stop_token_ids=(3,), decode_chunk=5)
    rollouts = sampler(setup["model"], setup["prompts"], key=jax.random.key(7))
    assert sampler.compilations == 1

    logits, lengths = _teacher_forced_logits(setup, rollouts, setup["prompts"])
    suppress = [setup["config"].image_token_id, setup["config"].video_token_id]
    worst = {"full": 0.0, "tempered": 0.0, "sampled": 0.0}
    for r, n in enumerate(lengths):
        predicting = logits[r, logits.shape[1] - n - 1:-1]  # the logits before each response token
        for t in range(n):
            token = rollouts.tokens[r, t]
            assert token not in suppress
            full = jax.nn.log_softmax(predicting[t])
            tempered = jax.nn.log_softmax(predicting[t] / sampling.temperature)
            for name, ours, theirs in (
                    ("full", rollouts.full_logprobs[r, t], full[token]),
                    ("tempered", rollouts.tempered_logprobs[r, t], tempered[token]),
                    ("sampled", rollouts.logprobs[r, t],
                     _truncated_logprob(predicting[t], token, sampling, suppress))):
                worst[name] = max(worst[name], abs(float(ours) - float(theirs)))
    assert max(worst.values()) <= 1e-4, f"log-probs differ from the teacher-forced forward: {worst}"
    assert (rollouts.logprobs[~rollouts.mask] == 0).all()
    groups = rollouts.tokens.reshape(3, 3, -1)
    assert all(len({g.tobytes() for g in group}) > 1 for group in groups), \
        "the G samples of a prompt must differ (each has its own key)"

    # Same key: same rollouts. Other slots and other neighbours (same buckets): the same rows for
    # the same prompt ids, and no new compile.
    again = sampler(setup["model"], setup["prompts"], key=jax.random.key(7))
    np.testing.assert_array_equal(again.tokens, rollouts.tokens)
    np.testing.assert_array_equal(again.logprobs, rollouts.logprobs)
    other = tiny_prompts(setup["config"], text_seed=9)
    shuffled = sampler(setup["model"], [other[2], setup["prompts"][1], setup["prompts"][0]],
                       key=jax.random.key(7))
    assert list(shuffled.prompt_ids) == [11] * 3 + [1] * 3 + [0] * 3
    for prompt_id in (0, 1):
        mine, theirs = rollouts.prompt_ids == prompt_id, shuffled.prompt_ids == prompt_id
        width = int(rollouts.lengths[mine].max())
        np.testing.assert_array_equal(shuffled.tokens[theirs, :width], rollouts.tokens[mine, :width],
                                      err_msg=f"prompt {prompt_id} changed with its batch slot")
        np.testing.assert_allclose(shuffled.logprobs[theirs, :width],
                                   rollouts.logprobs[mine, :width], atol=1e-5)
    assert sampler.compilations == 1, "a call with the same buckets must not compile again"
    different = sampler(setup["model"], setup["prompts"], key=jax.random.key(8))
    assert not np.array_equal(different.tokens, rollouts.tokens)


# --------------------------------------------------------------------------- distribution
VOCAB = 2100  # two blocks of 1050 (a divisor near 1024) in the two-level CDF
LIVE = np.array([3, 700, 1000, 1023, 1024, 1500, 2000, 2047, 2048, 2070, 2099])  # across blocks
DRAWS = 16_000


def _known_logits() -> np.ndarray:
    logits = np.full(VOCAB, -30.0, np.float32)  # background mass ~1e-9: never drawn in practice
    logits[LIVE] = np.linspace(2.0, -1.0, len(LIVE)) + np.array(
        [0.0, 0.3, -0.2, 0.1, 0.0, 0.4, -0.3, 0.2, 0.0, -0.1, 0.1])
    return logits


def _expected(logits: np.ndarray, sampling: Sampling, suppress: list[int]) -> np.ndarray:
    """The target distribution over the vocabulary, by sorting (independent of the bisection)."""
    z = logits.astype(np.float64)
    z[suppress] = -np.inf
    z = z / sampling.temperature
    order = np.argsort(-z, kind="stable")[:sampling.top_k or None]
    probs = np.exp(z[order] - z[order].max())
    probs /= probs.sum()
    keep = (np.cumsum(probs) - probs) < sampling.top_p
    keep[0] = True
    out = np.zeros(VOCAB)
    out[order[keep]] = probs[keep] / probs[keep].sum()
    return out


@pytest.mark.parametrize("sampling, suppress", [
    (Sampling(1.0, 0, 1.0), []),
    (Sampling(1.0, 0, 1.0), [1000]),  # suppressed columns added back to the full normaliser
    (Sampling(0.5, 0, 1.0), [3, 700]),  # most of the mass suppressed
    (Sampling(0.7, 5, 1.0), []),
    (Sampling(1.3, 0, 0.6), [700]),
    (Sampling(0.9, 6, 0.8), [3]),
])
def test_token_choice_draws_the_truncated_distribution(sampling, suppress):
    logits = jnp.broadcast_to(jnp.asarray(_known_logits()), (DRAWS, VOCAB))
    keys = jax.random.split(jax.random.key(123), DRAWS)
    choice = jax.jit(choose_tokens, static_argnums=(2, 3))(logits, keys, sampling,
                                                           tuple(suppress))
    tokens = np.asarray(choice.tokens)
    expected = _expected(_known_logits(), sampling, suppress)
    support = np.flatnonzero(expected)
    assert np.isin(tokens, support).all(), \
        f"drew tokens outside the truncated support: {sorted(set(tokens) - set(support))}"
    counts = np.array([(tokens == t).sum() for t in support])
    _, p_value = stats.chisquare(counts, expected[support] * DRAWS)
    assert p_value > 1e-3, f"{sampling}: counts {counts} vs expected " \
                           f"{np.round(expected[support] * DRAWS)} (chi-square p={p_value:.2e})"
    np.testing.assert_allclose(np.asarray(choice.logprobs), np.log(expected[tokens]), atol=1e-5)
    # The two untruncated log-probs the trainer uses, suppressed ids included.
    z = _known_logits().astype(np.float64)
    for got, temperature in ((choice.tempered_logprobs, sampling.temperature),
                             (choice.full_logprobs, 1.0)):
        log_softmax = z / temperature - np.logaddexp.reduce(z / temperature)
        np.testing.assert_allclose(np.asarray(got), log_softmax[tokens], atol=1e-5)

    # The test has power: the untruncated, untempered distribution is rejected.
    if sampling != Sampling(1.0, 0, 1.0):
        plain = _expected(_known_logits(), Sampling(1.0, 0, 1.0), [])
        full_counts = np.array([(tokens == t).sum() for t in LIVE])
        _, wrong_p = stats.chisquare(full_counts, plain[LIVE] / plain[LIVE].sum() * DRAWS)
        assert wrong_p < 1e-6

    again = choose_tokens(logits[:64], keys[:64], sampling, tuple(suppress))
    np.testing.assert_array_equal(np.asarray(again.tokens), tokens[:64],
                                  err_msg="a row's draw must depend only on its key and logits")


@pytest.mark.parametrize("size", [2100, 2101])  # whole blocks of 1050; padded blocks of 1024
def test_inverse_cdf_picks_the_entry_whose_cdf_interval_holds_the_uniform(size):
    probs = np.zeros(size, np.float32)
    live = [3, 1023, 1024, 1049, 1050, 2047, 2048, 2099]
    probs[live] = np.arange(1, len(live) + 1) / sum(range(1, len(live) + 1))
    edges = np.cumsum(probs[live])
    uniforms = np.concatenate([[0.0], (edges[:-1] + np.diff(edges) / 2), edges[:-1] + 1e-4])
    # Unnormalised weights (x8 keeps every partial sum exact): the draw scales by the total.
    drawn, total = inverse_cdf(jnp.broadcast_to(jnp.asarray(probs * 8), (len(uniforms), size)),
                               jnp.asarray(uniforms, jnp.float32))
    expected = np.array(live)[np.searchsorted(edges, uniforms, side="right")]
    np.testing.assert_array_equal(np.asarray(drawn), expected)
    np.testing.assert_allclose(np.asarray(total), 8.0, rtol=1e-6)


def test_greedy_choice_is_argmax_and_skips_suppressed_ids():
    logits = jnp.asarray(_known_logits())[None].repeat(2, axis=0)
    keys = jax.random.split(jax.random.key(0), 2)
    choice = choose_tokens(logits, keys, Sampling(temperature=0), (3,))
    assert np.asarray(choice.tokens).tolist() == [700, 700]
    np.testing.assert_allclose(np.asarray(choice.logprobs),
                               np.asarray(jax.nn.log_softmax(logits)[:, 700]), atol=1e-6)


# ------------------------------------------------------------------------------- bad input
def test_image_sizes_within_the_configs_largest_share_one_rollout_program(setup):
    """The trainer's sampler sizes image slots for config.data.image_max_pixels, so a 4x6 and a
    4x4 patch image compile one program between them."""
    config = default.get_config()
    config.rollout.update(dict(max_new_tokens=MAX_NEW, group_size=2))
    sampler_config = RunConfig.from_config(config).sampler_for(setup["config"])
    assert sampler_config.patch_bucket == config.data.image_max_pixels // 16 ** 2
    sampler = Sampler(sampler_config, setup["tokenizer"])
    batch = tiny.image_batch(setup["config"])
    first_image = batch["input_ids"][0][:3 + 1 + 6 + 1 + 2]  # text, <vs>, 6 image tokens, <ve>
    wide = Prompt(7, first_image, batch["pixel_values"][:24], batch["image_grid_thw"][:1])
    square = setup["prompts"][1]
    for prompt in (wide, square):
        sampler.compile(setup["model"], [prompt])
    assert sampler.compilations == 1, "another image size compiled another rollout program"


def test_bad_prompts_and_configs_name_the_problem(setup):
    sampler = _sampler(setup, Sampling(temperature=0), group_size=1)
    model, good = setup["model"], setup["prompts"][2]
    cases = [
        ([Prompt(4, np.array([1, 500]))], "prompt 4: token ids must lie in [0, 128)"),
        ([Prompt(5, np.array([], np.int64))], "prompt 5: input_ids must be a non-empty"),
        ([Prompt(6, good.input_ids, max_new_tokens=99)], "prompt 6: max_new_tokens=99"),
        ([Prompt(7, np.array([1, 60, 62, 62, 61]), np.zeros((16, 1536), np.float32),
                 np.array([[1, 4, 4]]))], "prompt 7: row 0: a run of 2 image tokens"),
        ([Prompt(8, good.input_ids, stop_token_ids=tuple(range(9)))], "prompt 8: 9 stop tokens"),
        ([], "no prompts"),
    ]
    for prompts, message in cases:
        with pytest.raises(SamplerError, match=re.escape(message)):
            sampler(model, prompts, key=0)
    with pytest.raises(SamplerError, match="group_size"):
        SamplerConfig(group_size=0)
    with pytest.raises(SamplerError, match="decode_layout"):
        SamplerConfig(decode_layout="yes")
    with pytest.raises(ValueError, match="top_p"):
        Sampling(1.0, 0, 0.0)


# ------------------------------------------------------------------------------- sharding
MESHES = [dict(data=2, fsdp=2, tensor=2)]  # every axis used: rows, kv heads, cache all split


def _sharded_run() -> dict:
    """(Runs in a subprocess with 8 fake devices.) Unsharded and sharded rollouts."""
    from models.sharding import make_mesh

    hf, state_dict = tiny.hf_tiny_model()
    config = tiny.tiny_config()
    model = load_params(config, DictSource(state_dict))
    prompts = tiny_prompts(config)
    sampler_config = SamplerConfig(group_size=2, max_new_tokens=256,  # a cache worth sharding
                                   sampling=Sampling(0.9, 0, 0.95), stop_token_ids=(3,),
                                   prompt_bucket=32, patch_bucket=64)
    tokenizer = Qwen3Tokenizer.load()
    sampler = Sampler(sampler_config, tokenizer)
    single = sampler(model, prompts, key=3)
    report = dict(devices=len(jax.devices()), meshes=[],
                  temp_bytes=sampler.compile(model, prompts).memory_analysis().temp_size_in_bytes)
    for shape in MESHES:
        sharded_sampler = Sampler(sampler_config, tokenizer, mesh=make_mesh(**shape))
        pending = sharded_sampler.launch(model, prompts, key=3)
        spec = pending.outputs["tokens"].sharding.spec
        sharded = pending.result()
        memory = sharded_sampler.compile(model, prompts).memory_analysis()
        report["meshes"].append(dict(temp_bytes=memory.temp_size_in_bytes,
            shape=shape, tokens_equal=bool(np.array_equal(sharded.tokens, single.tokens)),
            lengths_equal=bool(np.array_equal(sharded.lengths, single.lengths)),
            logprob_err=float(max(np.abs(getattr(sharded, n) - getattr(single, n)).max()
                                  for n in ("logprobs", "tempered_logprobs", "full_logprobs"))),
            token_spec=str(spec)))
    return report


def test_eight_fake_devices_give_the_single_device_rollouts():
    env = dict(os.environ, XLA_FLAGS="--xla_force_host_platform_device_count=8",
               JAX_PLATFORMS="cpu", PYTHONPATH=ROOT)
    out = subprocess.run([sys.executable, os.path.abspath(__file__), "--sharded"], cwd=ROOT,
                         env=env, capture_output=True, text=True, timeout=900)
    assert out.returncode == 0, f"sharded run failed:\n{out.stderr[-4000:]}"
    report = json.loads(out.stdout.strip().splitlines()[-1])
    assert report["devices"] == 8
    for mesh in report["meshes"]:
        assert mesh["tokens_equal"] and mesh["lengths_equal"], f"tokens differ on {mesh['shape']}"
        assert mesh["logprob_err"] <= 1e-5, f"log-probs differ on {mesh}"
        assert "data" in mesh["token_spec"], f"rows are not sharded over data: {mesh}"
        # Each device holds 1/8 of the KV cache (rows over data x fsdp, kv heads over tensor):
        # the per-device scratch memory (mostly cache; the image slots' gathered features are
        # the rest) must shrink well below the single device's (a whole cache is ~0.9 of it).
        assert mesh["temp_bytes"] < 0.4 * report["temp_bytes"], f"cache not sharded: {mesh}"


if __name__ == "__main__" and sys.argv[1:] == ["--sharded"]:
    print(json.dumps(_sharded_run()))
