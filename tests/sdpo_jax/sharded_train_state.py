"""A tiny model's train state and one train step on 8 fake CPU devices (fsdp=8); run by
test_train_step_sharding.py in a subprocess, since the device count is fixed when jax starts.

Prints one JSON line: parameters whose optimizer moments or EMA teacher copy are placed
differently from them, the device-0 bytes of parameters and of optimizer state, and the same
after one step (which runs under the mesh with row-sharded inputs).
"""
from __future__ import annotations

import dataclasses
import json

import jax
import numpy as np
from flax import nnx

from configs.default import get_config
from models.qwen3_vl.model import init_model
from models.sharding import make_mesh
from sdpo_jax.losses import LossBatch
from sdpo_jax.model_loading import size_config
from sdpo_jax.run_config import RunConfig
from sdpo_jax.sequences import abstract_sequences
from sdpo_jax.train_step import init_train_state, make_train_step

ROWS, PROMPT, RESPONSE = 8, 24, 8


def device0_bytes(tree) -> int:
    return sum(shard.data.nbytes for x in jax.tree.leaves(tree) for shard in x.addressable_shards
               if shard.device == jax.devices()[0])


def misplaced(state) -> list[str]:
    """Paths of parameters whose moments or teacher copy do not share their sharding."""
    params = nnx.to_flat_state(state.params)
    copies = {"mu": state.opt_state[1][0].mu, "nu": state.opt_state[1][0].nu,
              "teacher": state.teacher_params}
    bad = []
    for name, tree in copies.items():
        for (path, p), (_, c) in zip(params, nnx.to_flat_state(tree)):
            if c.get_value().sharding != p.get_value().sharding:
                bad.append(f"{name}:{'/'.join(map(str, path))}")
    return bad


def zeros_like(abstract):
    return jax.tree.map(lambda x: np.zeros(x.shape, x.dtype), abstract)


def main() -> None:
    mesh = make_mesh(data=1, fsdp=8, tensor=1)
    config = size_config("tiny", real_tokenizer=False)
    model = init_model(config, mesh=mesh)
    run = RunConfig.from_config(get_config())
    optim = dataclasses.replace(run.optim, learning_rate=1e-3)
    graphdef, state = init_train_state(model, optim, "ema")
    report = dict(devices=len(jax.devices()), misplaced=misplaced(state),
                  param_bytes=device0_bytes(state.params),
                  opt_bytes=device0_bytes(state.opt_state))
    shardings = jax.tree.map(lambda x: x.sharding, state)
    step_config = dataclasses.replace(run.step, teacher_weights="ema",
                                      loss=dataclasses.replace(run.loss, chunk_size=8))
    step = make_train_step(graphdef, step_config, optim, shardings, mesh, config.sharding_rules)
    seq = zeros_like(abstract_sequences(config, ROWS, prompt_length=PROMPT,
                                        response_length=RESPONSE, image_slots=8, slot_patches=16))
    seq = seq.replace(mask=np.ones_like(seq.mask))
    per_token = np.ones((ROWS, RESPONSE), np.float32)
    batch = LossBatch(tokens=np.ones((ROWS, RESPONSE), np.int32), mask=per_token,
                      credit=per_token, old_logprobs=-per_token,
                      rewards=np.arange(ROWS, dtype=np.float32),
                      group_ids=np.arange(ROWS, dtype=np.int32) // 4)
    student, _, placed_batch = step.place(seq, seq, batch)
    state, metrics = step(state, seq, seq, batch)
    report.update(after_step_misplaced=misplaced(state), loss=float(metrics["loss/total"]),
                  opt_bytes_after=device0_bytes(state.opt_state),
                  input_rows_spec=str(student.input_ids.sharding.spec),
                  image_slots_spec=str(student.vision.pixel_values.sharding.spec),
                  batch_rows_spec=str(placed_batch.tokens.sharding.spec))
    lowered = step.lower(state, *step.place(seq, seq, batch))
    report["sharding_constraints"] = lowered.as_text().count("sharding_constraint")
    print(json.dumps(report))


if __name__ == "__main__":
    main()
