"""Pack and place one global batch of image-bearing rows as one of N processes (or alone), and
save what every visual token of the placed batch takes.

    python tests/sdpo_jax/multiprocess_layout.py OUT.npz [PROCESS_ID NUM_PROCESSES PORT]
Used by test_input_layout.py: each process packs only the rows its devices hold into its own
block of image slots (train_step.InputLayout); the global batch must show every row the same
tokens and, at every visual token, the same pixels as one process packing everything.
"""
import dataclasses
import os
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
sys.path.insert(0, ROOT)

ROWS, GROUP, PROMPT, RESPONSE, SLOT_PATCHES = 8, 2, 48, 4, 32
# Each row shows its prompt's image (shared by the group) and, unless its run failed, its own
# render; the grids (t, h, w in patches) differ in size.
PROMPT_GRIDS = ((1, 4, 6), (1, 2, 2), (1, 4, 4), (1, 2, 8))
RENDER_GRIDS = ((1, 2, 4), None, (1, 6, 4), (1, 4, 2), None, None, (1, 2, 2), (1, 8, 4))


def chat(config, grids, seed):
    """A processed chat holding an image per grid (random pixels keyed by `seed` and index)."""
    import numpy as np
    rng = np.random.default_rng(seed)
    ids, pixels = [7, 8], []
    for grid in grids:
        patches = int(np.prod(grid))
        ids += [config.image_token_id] * (patches // config.vision.merge_unit) + [9]
        pixels.append(rng.standard_normal((patches, config.vision.patch_dim)).astype(np.float32))
    Chat = dataclasses.make_dataclass("Chat", ["input_ids", "position_ids", "rope_delta",
                                               "pixel_values", "image_grid_thw"])
    return Chat(np.array(ids, np.int32), np.tile(np.arange(len(ids), dtype=np.int32), (3, 1)),
                0, np.concatenate(pixels), np.array(grids))


def main() -> None:
    out = sys.argv[1]
    if len(sys.argv) > 2:
        process_id, count, port = sys.argv[2:5]
        os.environ.update(JAX_COORDINATOR_ADDRESS=f"127.0.0.1:{port}", JAX_NUM_PROCESSES=count,
                          JAX_PROCESS_ID=process_id)
    import jax
    import numpy as np

    from models.sharding import make_mesh
    from sdpo_jax.main import maybe_initialize_distributed
    from sdpo_jax.model_loading import size_config
    from sdpo_jax.multihost import to_host
    from sdpo_jax.sequences import abstract_sequences, pack_sequences
    from sdpo_jax.train_step import InputLayout
    maybe_initialize_distributed()
    config = size_config("tiny", real_tokenizer=False)
    slots = len(PROMPT_GRIDS) + ROWS
    layout = InputLayout.on_mesh(make_mesh(data=1, fsdp=-1, tensor=1), config.sharding_rules,
                                 abstract_sequences(config, ROWS, prompt_length=PROMPT,
                                                    response_length=RESPONSE, image_slots=slots,
                                                    slot_patches=SLOT_PATCHES))
    rows, own_slots = layout.rows, layout.slots(0)
    chats = [chat(config, [PROMPT_GRIDS[row // GROUP]] + [RENDER_GRIDS[row]] * bool(
        RENDER_GRIDS[row]), seed=row) for row in range(ROWS)]
    for row in range(ROWS):  # the group's prompt image: the same pixels in every row
        first = chats[row // GROUP * GROUP]
        shared = int(np.prod(PROMPT_GRIDS[row // GROUP]))
        chats[row].pixel_values[:shared] = first.pixel_values[:shared]
    responses = np.arange(ROWS * RESPONSE, dtype=np.int32).reshape(ROWS, RESPONSE)[rows] % 50
    (seq,) = layout.place(pack_sequences(
        config, chats[rows], responses, np.ones_like(responses, bool), prompt_length=PROMPT,
        image_slots=own_slots.stop - own_slots.start, slot_patches=SLOT_PATCHES,
        slot_offset=own_slots.start))
    vision = jax.tree.map(to_host, seq.vision)
    count, unit = int(vision.num_image_tokens), config.vision.merge_unit
    per_slot = SLOT_PATCHES // unit
    taken = [vision.pixel_values[f // per_slot, f % per_slot * unit:(f % per_slot + 1) * unit]
             for f in vision.token_rows[:count]]
    tokens = {name: to_host(getattr(seq, name)) for name in ("input_ids", "positions", "mask")}
    if jax.process_index() == 0:  # to_host is collective: every process gathers, one writes
        np.savez(out, taken=np.stack(taken), **tokens)


if __name__ == "__main__":
    main()
