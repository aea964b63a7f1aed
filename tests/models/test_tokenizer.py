"""The offline Qwen3 tokenizer against transformers' Qwen2Tokenizer on the same files."""
from __future__ import annotations

import functools
import json
import re

import pytest

from models.qwen3_vl.tokenizer import Qwen3Tokenizer, bundled_tokenizer_dir

TEXTS = [
    "",
    "Hello, world!",
    "import matplotlib.pyplot as plt\nfig, ax = plt.subplots(figsize=(8, 6))\n\tax.bar(['a'], [1])\n",
    "<div style=\"color:#333;margin: 0 auto\">Ünïcödé — 图表 😀</div>\r\n\r\n",
    "  leading spaces, trailing spaces   ",
    "<|im_start|>user\n<|vision_start|><|image_pad|><|vision_end|>Draw it<|im_end|>\n",
    "<think>\n\n</think>\n\n" + "x" * 300,
]


@functools.lru_cache(maxsize=1)
def hf_tokenizer():
    from transformers import AutoTokenizer
    return AutoTokenizer.from_pretrained(bundled_tokenizer_dir(), local_files_only=True)


@functools.lru_cache(maxsize=1)
def ours() -> Qwen3Tokenizer:
    return Qwen3Tokenizer.load()


@pytest.mark.parametrize("text", TEXTS)
def test_encode_decode_match_transformers(text):
    ids = ours().encode(text)
    assert ids == hf_tokenizer()(text)["input_ids"]
    assert ours().decode(ids) == hf_tokenizer().decode(ids) == text
    assert ours().decode(ids, skip_special_tokens=True) == hf_tokenizer().decode(
        ids, skip_special_tokens=True)


@pytest.mark.parametrize("text", TEXTS)
def test_offsets_cover_the_text_of_each_token(text):
    ids, offsets = ours().encode_with_offsets(text)
    assert len(ids) == len(offsets)
    # Tokens are contiguous and in order; concatenated spans give back the whole text.
    assert "".join(text[a:b] for a, b in offsets) == text
    assert all(a <= b for a, b in offsets)


def test_special_token_ids_are_the_qwen3_vl_ones():
    special = ours().special
    assert (special.im_start, special.im_end, special.endoftext) == (151644, 151645, 151643)
    assert (special.vision_start, special.vision_end) == (151652, 151653)
    assert (special.image_pad, special.video_pad) == (151655, 151656)
    assert special.eos == (151645, 151643) and special.pad == 151643
    assert len(ours()) == 151669


def test_checkpoint_folder_tokenizer_takes_precedence(tmp_path):
    """A folder with its own tokenizer.json is used instead of the bundled files."""
    with open(f"{bundled_tokenizer_dir()}/tokenizer.json", encoding="utf-8") as f:
        spec = json.load(f)
    im_end = next(t for t in spec["added_tokens"] if t["content"] == "<|im_end|>")
    im_end["content"] = "<|turn_end|>"
    (tmp_path / "tokenizer.json").write_text(json.dumps(spec), encoding="utf-8")
    renamed = Qwen3Tokenizer.load(str(tmp_path))
    assert renamed.token_to_id("<|turn_end|>") == 151645
    with pytest.raises(KeyError, match=re.escape("<|im_end|>")):
        renamed.special
