"""Character spans of sampled token ids (Qwen3Tokenizer.decode_with_spans): exact for any ids,
canonical or not, so credit weights land on the characters the env judged."""
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from models.qwen3_vl.tokenizer import Qwen3Tokenizer


@pytest.fixture(scope="module")
def tokenizer():
    return Qwen3Tokenizer.load()


@settings(max_examples=30, deadline=None)
@given(ids=st.lists(st.integers(0, 151_668), min_size=1, max_size=40))
def test_spans_of_arbitrary_sampled_ids_tile_the_decoded_text(tokenizer, ids):
    text, spans = tokenizer.decode_with_spans(ids)
    assert text == tokenizer.decode(ids)
    assert spans[0][0] == 0 and spans[-1][1] == len(text)
    assert all(a[1] == b[0] for a, b in zip(spans, spans[1:])), "spans must tile the text"


def test_non_canonical_segmentation_maps_to_the_right_characters(tokenizer):
    reply = "ax.plot(x)\n"
    ids = [tokenizer.encode(ch)[0] for ch in reply]  # one token per character: not canonical
    assert ids != tokenizer.encode(reply)
    text, spans = tokenizer.decode_with_spans(ids)
    assert text == reply and spans == [(i, i + 1) for i in range(len(reply))]


def test_canonical_ids_give_the_encoders_offsets(tokenizer):
    text = "Here:\r\n```python\r\nplt.plot([1, 2])  # ok\n```<|im_end|>"
    ids, offsets = tokenizer.encode_with_offsets(text)
    assert tokenizer.decode_with_spans(ids) == (text, offsets)
