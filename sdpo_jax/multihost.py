"""Host-side helpers for multi-process runs: which rows a host owns, and the little that crosses
hosts. In a single-process run every helper is a no-op (the process holds everything).

Every host draws the same global prompt list (data order is a pure function of the seed) and
samples it as one SPMD program, so the sampled tokens are known everywhere. The train step's
inputs are sharded by rows over the mesh's batch axes; a host owns exactly the rows its devices
hold (`process_block`), renders only those in its own env pool, builds their credit and teacher
prompts, and places them with `jax.make_array_from_process_local_data`. What crosses hosts is
small: per-row scalars for the logged metrics and the integer table of the visual tokens (see
sdpo_jax.train_step.InputLayout); Feedback objects and renders never do.
"""
from __future__ import annotations

import pickle
from collections.abc import Sequence
from typing import Any

import jax
import numpy as np
from jax.experimental import multihost_utils


def process_rows(total: int) -> range:
    """The rows [start, stop) of `total` items that this process handles (an even split)."""
    count, index = jax.process_count(), jax.process_index()
    per = -(-total // count)
    return range(min(index * per, total), min((index + 1) * per, total))


def process_block(sharding: jax.sharding.Sharding, shape: tuple[int, ...], axis: int = 0
                  ) -> slice:
    """The indices along `axis` of a global array of `shape` placed on `sharding` that this
    process's devices hold; they must form one contiguous block (what a host builds)."""
    spans = sorted({index[axis].indices(shape[axis])[:2]
                    for index in sharding.addressable_devices_indices_map(shape).values()})
    start, stop = spans[0][0], max(end for _, end in spans)
    if sum(end - begin for begin, end in spans) != stop - start:
        raise ValueError(f"process {jax.process_index()} holds the blocks {spans} of axis {axis} "
                         f"of {shape}: not one contiguous block. Fix: order the mesh devices by "
                         f"process along the batch axes.")
    return slice(start, stop)


def allgather_arrays(local: np.ndarray) -> list[np.ndarray]:
    """Every process's `local` array (any length along axis 0, same trailing shape and dtype),
    in process order."""
    if jax.process_count() == 1:
        return [local]
    sizes = np.asarray(multihost_utils.process_allgather(np.array([len(local)], np.int64)))
    padded = np.zeros((int(sizes.max()), *local.shape[1:]), local.dtype)
    padded[:len(local)] = local
    gathered = np.asarray(multihost_utils.process_allgather(padded))
    return [part[:int(size)] for part, size in zip(gathered, sizes.ravel())]


def allgather_objects(local: Sequence[Any]) -> list[Any]:
    """Concatenate every process's `local` list, in process order (pickled through uint8 arrays);
    for small things only."""
    if jax.process_count() == 1:
        return list(local)
    payload = np.frombuffer(pickle.dumps(list(local), protocol=pickle.HIGHEST_PROTOCOL), np.uint8)
    return [item for part in allgather_arrays(payload)
            for item in pickle.loads(part.tobytes())]


def to_host(value: jax.Array) -> np.ndarray:
    """A global array's full value on every process (a plain device_get on one process)."""
    if getattr(value, "is_fully_addressable", True):
        return np.asarray(jax.device_get(value))
    return np.asarray(multihost_utils.process_allgather(value, tiled=True))
