"""Host-side helpers for multi-process runs: who renders which rollouts, and sharing the results.

Every host draws the same global batch (data order is a pure function of the seed) and samples
it as one SPMD program; each host then renders only its own contiguous shard of the rollouts in
its own env pool, and the Feedback of all shards is exchanged so every host builds the same
global train batch. In a single-process run these are no-ops.
"""
from __future__ import annotations

import pickle
from collections.abc import Sequence
from typing import Any

import jax
import numpy as np
from jax.experimental import multihost_utils


def process_rows(total: int) -> range:
    """The rows [start, stop) of a global batch that this process renders."""
    count, index = jax.process_count(), jax.process_index()
    per = -(-total // count)
    return range(min(index * per, total), min((index + 1) * per, total))


def allgather_objects(local: Sequence[Any]) -> list[Any]:
    """Concatenate every process's `local` list, in process order (pickled through uint8 arrays)."""
    if jax.process_count() == 1:
        return list(local)
    payload = np.frombuffer(pickle.dumps(list(local), protocol=pickle.HIGHEST_PROTOCOL), np.uint8)
    sizes = np.asarray(multihost_utils.process_allgather(np.array([payload.size], np.int64)))
    padded = np.zeros(int(sizes.max()), np.uint8)
    padded[:payload.size] = payload
    gathered = np.asarray(multihost_utils.process_allgather(padded))
    out: list[Any] = []
    for row, size in zip(gathered.reshape(len(sizes.ravel()), -1), sizes.ravel()):
        out.extend(pickle.loads(row[:int(size)].tobytes()))
    return out


def to_host(value: jax.Array) -> np.ndarray:
    """A global array's full value on every process (a plain device_get on one process)."""
    if getattr(value, "is_fully_addressable", True):
        return np.asarray(jax.device_get(value))
    return np.asarray(multihost_utils.process_allgather(value, tiled=True))
