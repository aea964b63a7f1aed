"""Run the tiny trainer for two steps as one of N processes (or alone) and save the parameters.

    python tests/sdpo_jax/multiprocess_train.py WORKDIR OUT.npz [PROCESS_ID NUM_PROCESSES PORT]
Used by test_multiprocess.py: two CPU processes joined by jax.distributed must end with the
parameters of one process training on the same global batch. On a WORKDIR whose checkpoint
already holds the last step the trainer only restores it, so the same command checks that a
checkpoint saved by N processes restores in M.
"""
import os
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
sys.path.insert(0, ROOT)


def tiny_config(num_steps: int = 2):
    from configs.default import get_config
    c = get_config()
    c.data.image_max_pixels = 64 * 64
    c.data.image_min_pixels = 32 * 32
    c.rollout.update(dict(prompts_per_step=2, group_size=2, max_new_tokens=12,
                          max_prompt_tokens=256))
    c.context.max_prompt_tokens = 640
    c.eval.every = 0  # these tests are about the step; evaluation has its own
    c.env.num_workers = 1
    c.train.update(dict(num_steps=num_steps, checkpoint_every=num_steps))
    return c


def main() -> None:
    workdir, out = sys.argv[1], sys.argv[2]
    if len(sys.argv) > 3:
        process_id, count, port = sys.argv[3:6]
        os.environ.update(JAX_COORDINATOR_ADDRESS=f"127.0.0.1:{port}", JAX_NUM_PROCESSES=count,
                          JAX_PROCESS_ID=process_id)
    import jax
    import numpy as np

    from sdpo_jax.main import maybe_initialize_distributed
    from sdpo_jax.multihost import to_host
    from sdpo_jax.trainer import Trainer
    maybe_initialize_distributed()
    trainer = Trainer(tiny_config(), workdir)
    trainer.run()
    leaves = [to_host(x) for x in jax.tree.leaves(trainer.state)]
    if jax.process_index() == 0:
        np.savez(out, *leaves)


if __name__ == "__main__":
    main()
