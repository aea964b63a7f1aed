"""Training checkpoints: params, optimizer state, PRNG key and host-side loop state, via orbax.

Saving is asynchronous (the device loop goes on while arrays are written). Restoring takes an
abstract target (shapes, dtypes and shardings), so an 8B state lands directly on its shards.
Host-side state (data position, counters) is JSON beside the arrays, so exact resume needs
nothing that is not in the checkpoint directory.
"""
from __future__ import annotations

import os
from typing import Any

import jax
import orbax.checkpoint as ocp


class TrainCheckpointer:
    """Async orbax CheckpointManager for one run directory (local path or gs://)."""

    def __init__(self, directory: str, max_to_keep: int = 3, async_save: bool = True):
        # orbax's array writer refuses relative paths (and only says so from its async thread).
        self.directory = directory if "://" in directory else os.path.abspath(directory)
        self._mngr = ocp.CheckpointManager(
            self.directory,
            options=ocp.CheckpointManagerOptions(max_to_keep=max_to_keep, create=True,
                                                 enable_async_checkpointing=async_save))

    def latest_step(self) -> int | None:
        return self._mngr.latest_step()

    def save(self, step: int, arrays: Any, host_state: dict[str, Any], force: bool = False) -> bool:
        """Start writing `arrays` (any pytree of jax arrays) and `host_state` (JSON) for `step`."""
        return self._mngr.save(step, args=ocp.args.Composite(
            arrays=ocp.args.StandardSave(arrays), host=ocp.args.JsonSave(host_state)), force=force)

    def restore(self, step: int, abstract_arrays: Any) -> tuple[Any, dict[str, Any]]:
        """Arrays shaped and sharded like `abstract_arrays` (ShapeDtypeStructs), and host state."""
        out = self._mngr.restore(step, args=ocp.args.Composite(
            arrays=ocp.args.StandardRestore(abstract_arrays), host=ocp.args.JsonRestore()))
        return out["arrays"], out["host"]

    def restore_host(self, step: int) -> dict[str, Any]:
        """Only the JSON host state of `step` (to decide what else to restore)."""
        return self._mngr.restore(step, args=ocp.args.Composite(host=ocp.args.JsonRestore()))["host"]

    def wait(self) -> None:
        """Block until pending async saves are on disk (before exit, or a test reading them)."""
        self._mngr.wait_until_finished()

    def close(self) -> None:
        self._mngr.wait_until_finished()
        self._mngr.close()


def abstract_like(tree: Any) -> Any:
    """ShapeDtypeStructs (with shardings) of a pytree of arrays: the restore target."""
    return jax.tree.map(lambda x: jax.ShapeDtypeStruct(x.shape, x.dtype,
                                                       sharding=getattr(x, "sharding", None)), tree)
