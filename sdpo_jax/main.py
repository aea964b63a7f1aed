"""Train a code-writing VLM with Visual-SDPO.

    python -m sdpo_jax.main --config=configs/default.py --workdir=runs/tiny [--config.key=value ...]

Every host of a TPU pod runs this same command (launch/tpu_pod.sh); `jax.distributed` is
initialised when the environment says this is one process of several (TPU VM slices set it up,
or JAX_COORDINATOR_ADDRESS / JAX_NUM_PROCESSES / JAX_PROCESS_ID for manual multi-process runs).
The logic lives in sdpo_jax.trainer; this file only parses flags.
"""
from __future__ import annotations

import logging
import os
import sys

from absl import app, flags
from absl import logging as absl_logging
from ml_collections import config_flags

_CONFIG = config_flags.DEFINE_config_file("config", None, "ml_collections config file (configs/*.py)")
_WORKDIR = flags.DEFINE_string("workdir", None, "where checkpoints, metrics and plots go")
flags.mark_flags_as_required(["config", "workdir"])


def maybe_initialize_distributed() -> None:
    """Join the multi-process runtime on pods (TPU metadata) or when JAX_* variables ask for it."""
    import jax

    if os.environ.get("JAX_COORDINATOR_ADDRESS"):
        jax.distributed.initialize(
            coordinator_address=os.environ["JAX_COORDINATOR_ADDRESS"],
            num_processes=int(os.environ["JAX_NUM_PROCESSES"]),
            process_id=int(os.environ["JAX_PROCESS_ID"]))
    elif os.environ.get("TPU_WORKER_HOSTNAMES", "").count(",") > 0 or \
            os.environ.get("CLOUD_TPU_TASK_ID") is not None:
        jax.distributed.initialize()


def main(argv) -> int:
    del argv
    absl_logging.set_verbosity(absl_logging.WARNING)  # orbax logs every file it writes at INFO
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(message)s",
                        stream=sys.stderr)
    maybe_initialize_distributed()
    from models.qwen3_vl.config import ConfigError as ModelConfigError
    from sdpo_jax.data import DataError
    from sdpo_jax.run_config import ConfigError
    from sdpo_jax.trainer import Trainer
    try:
        trainer = Trainer(_CONFIG.value, _WORKDIR.value)
    except (ConfigError, ModelConfigError, DataError, FileNotFoundError) as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    metrics = trainer.run()
    if metrics:
        print(f"done: step {trainer.run_config.train.num_steps}, loss {metrics['loss/total']:.4f}, "
              f"exec rate {metrics['env/exec_rate']:.2f}; outputs in {_WORKDIR.value}")
    return 0


if __name__ == "__main__":
    app.run(main)
