"""pack_rows: every placed sequence lands whole, in its own segment, with its own positions, and
the targets name exactly its response tokens; nothing placed overlaps or overruns a row."""
import numpy as np
from hypothesis import given, settings, strategies as st

from configs.model_sizes import SIZES
from models.qwen3_vl.config import Qwen3VLConfig
from models.qwen3_vl.processor import ProcessedChat
from sdpo_jax.sequences import pack_rows

CONFIG = Qwen3VLConfig.from_dict(SIZES["toy"])


def _chat(length: int, offset: int) -> ProcessedChat:
    ids = (np.arange(length, dtype=np.int32) + offset) % 1000 + 10
    positions = np.tile(np.arange(length, dtype=np.int32), (3, 1))
    return ProcessedChat(text="", input_ids=ids, mm_token_type_ids=np.zeros(length, np.int32),
                         position_ids=positions, rope_delta=0,
                         pixel_values=np.zeros((0, 0), np.float32),
                         image_grid_thw=np.zeros((0, 3), np.int64))


@settings(max_examples=60, deadline=None)
@given(st.lists(st.tuples(st.integers(1, 40), st.integers(0, 30)), min_size=1, max_size=12),
       st.integers(1, 4), st.integers(8, 96))
def test_packed_sequences_are_whole_separate_and_aligned(shapes, rows, width):
    chats = [_chat(p, 50 * i) for i, (p, _) in enumerate(shapes)]
    responses = [np.arange(r, dtype=np.int32) + 1000 + i for i, (_, r) in enumerate(shapes)]
    packed = pack_rows(CONFIG, chats, responses, rows=rows, width=width, image_slots=0,
                       slot_patches=0)
    seq = packed.sequences
    assert seq.input_ids.shape == (rows, width) and seq.vision is None
    found = 0
    for row in range(rows):
        segments = seq.segment_ids[row]
        used = segments > 0
        assert not used[np.argmin(used):].any() or used.all(), "padding only at the row's end"
        for segment in np.unique(segments[used]):
            cols = np.flatnonzero(segments == segment)
            assert np.array_equal(cols, np.arange(cols[0], cols[-1] + 1)), "contiguous"
            ids = seq.input_ids[row, cols]
            i = next(i for i, c in enumerate(chats) if c.input_ids[0] == ids[0])
            p, r = len(chats[i].input_ids), len(responses[i])
            assert packed.placed[i] and len(cols) == p + r
            np.testing.assert_array_equal(ids, np.concatenate([chats[i].input_ids,
                                                                      responses[i]]))
            np.testing.assert_array_equal(seq.positions[:, row, cols],
                                          np.tile(np.arange(p + r), (3, 1)))
            predicting = cols[p - 1:p + r - 1]
            np.testing.assert_array_equal(seq.input_ids[row, predicting + 1], responses[i])
            np.testing.assert_array_equal(packed.targets[row, predicting], responses[i])
            found += 1
    assert packed.loss_mask.sum() == sum(len(responses[i]) for i in range(len(chats))
                                         if packed.placed[i])
    assert found == sum(packed.placed)
    if len(shapes) <= rows:  # a row for each: exactly those longer than a row stay out
        assert packed.placed == [0 < p + r <= width for p, r in shapes]
