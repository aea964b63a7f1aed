"""Both tokenizers behind one interface: the real Qwen3 BPE and the committed sentencepiece model.

Round trips, special tokens, `decode_with_spans` on sampled (non-canonical) segmentations and
split multi-byte characters, the chat template through the processor with image placeholders
intact, the toy model size agreeing with the sentencepiece model, and deterministic training.
"""
from __future__ import annotations

import functools
import shutil

import numpy as np
import pytest

from configs import model_sizes
from models.qwen3_vl.config import Qwen3VLConfig
from models.qwen3_vl.processor import ImageProcessor, ImageProcessorConfig, Qwen3VLProcessor
from models.tokenizers.base import SPECIAL_TOKENS
from models.tokenizers.load import BUNDLED, load_tokenizer
from models.tokenizers.sentencepiece_tokenizer import (SentencePieceTokenizer,
                                                       train_sentencepiece)

TEXTS = [
    "",
    "Hello, world!",
    'import matplotlib.pyplot as plt\nfig, ax = plt.subplots()\nax.set_title("Revenue by city")\n',
    "  leading spaces,\ttabs and trailing spaces   \r\n\r\n",
    'ax.set_ylabel("Temperature (°C)")\n'
    'categories = ["Zürich", "Kraków", "São Paulo"]  # 图表 😀\n',
    "<|im_start|>user\n<|vision_start|><|image_pad|><|vision_end|>Draw it<|im_end|>\n",
    "<think>\n\n</think>\n\n" + "x" * 300 + " 1234567890",
]
NAMES = ("qwen3", "synthetic_charts")


@functools.lru_cache(maxsize=None)
def tokenizer(name: str):
    return load_tokenizer(name)


@pytest.mark.parametrize("name", NAMES)
@pytest.mark.parametrize("text", TEXTS)
def test_round_trip_and_spans_of_encoded_text(name, text):
    tok = tokenizer(name)
    ids = tok.encode(text)
    assert tok.decode(ids) == text
    decoded, spans = tok.decode_with_spans(ids)
    assert decoded == text and len(spans) == len(ids)
    assert spans == sorted(spans) and all(a <= b for a, b in spans)
    assert "".join(text[a:b] for a, b in spans) == text, "spans must tile the text"


@pytest.mark.parametrize("name", NAMES)
def test_special_tokens_are_single_tokens_parsed_from_text(name):
    tok = tokenizer(name)
    special = tok.special
    for field, literal in SPECIAL_TOKENS.items():
        assert tok.encode(literal) == [getattr(special, field)] == [tok.token_to_id(literal)]
    assert special.eos == (special.im_end, special.endoftext) and special.pad == special.endoftext
    ids = tok.encode("<|im_start|>assistant\nok<|im_end|>")
    assert tok.decode(ids, skip_special_tokens=True) == "assistant\nok"
    assert max(special.all()) < len(tok)
    with pytest.raises(KeyError):
        tok.token_to_id("<|no_such_token|>")


@pytest.mark.parametrize("name", NAMES)
def test_spans_are_exact_on_a_sampled_non_canonical_segmentation(name):
    """Ids a sampler could produce but encoding never would: each character encoded alone."""
    tok = tokenizer(name)
    text = 'ax.bar(x, [12, 30], color="#1f3a93")  # Zürich °C\n'
    ids = [i for ch in text for i in tok.encode(ch)]
    assert ids != tok.encode(text)
    decoded, spans = tok.decode_with_spans(ids)
    assert decoded == text == tok.decode(ids)
    pieces = [decoded[a:b] for a, b in spans]
    assert "".join(pieces) == text and "Z" in pieces and "ü" in pieces


@pytest.mark.parametrize("name", NAMES)
def test_a_character_split_over_byte_tokens_lands_on_the_token_that_completes_it(name):
    tok = tokenizer(name)
    ids = tok.encode("a😀")
    decoded, spans = tok.decode_with_spans(ids)
    assert decoded == "a😀"
    emoji = [s for s in spans if s != (1, 1)]
    assert emoji[-1] == (1, 2) and all(s == (1, 1) for s in spans[1:-1]), spans


def test_sentencepiece_splits_emoji_into_byte_tokens_and_keeps_newlines_separate():
    tok = tokenizer("synthetic_charts")
    assert len(tok.encode("😀")) == 4, "an emoji outside the training text falls back to bytes"
    ids = tok.encode("a)\nb")
    text, spans = tok.decode_with_spans(ids)
    assert "\n" in [text[a:b] for a, b in spans], "a newline is always a token of its own"


@pytest.mark.parametrize("name", NAMES)
def test_random_sampled_ids_decode_consistently(name):
    tok = tokenizer(name)
    rng = np.random.default_rng(0)
    for _ in range(50):
        ids = rng.integers(0, len(tok), int(rng.integers(1, 40))).tolist()
        text, spans = tok.decode_with_spans(ids)
        assert len(spans) == len(ids) and spans[-1][1] == len(text)
        if name == "qwen3":
            assert text == tok.decode(ids)
    with pytest.raises(ValueError, match="outside"):
        tok.decode_with_spans([len(tok)])


def test_sentencepiece_model_is_small_with_a_vocabulary_of_a_few_thousand():
    tok = tokenizer("synthetic_charts")
    assert 1000 <= len(tok) <= 8192
    with open(BUNDLED["synthetic_charts"], "rb") as f:
        assert len(f.read()) < 200_000


def test_toy_model_size_agrees_with_the_sentencepiece_tokenizer():
    tok = tokenizer("synthetic_charts")
    spec = model_sizes.get_config("toy")
    assert spec.text_config.vocab_size >= len(tok) and spec.text_config.vocab_size % 128 == 0
    config = Qwen3VLConfig.from_dict(spec.to_dict())
    Qwen3VLProcessor(config, tok)  # refuses a tokenizer whose control-token ids disagree
    with pytest.raises(ValueError, match="do not belong"):
        Qwen3VLProcessor(config, tokenizer("qwen3"))


def test_chat_template_tokenises_with_image_placeholders_intact():
    tok = tokenizer("synthetic_charts")
    config = Qwen3VLConfig.from_dict(model_sizes.get_config("toy").to_dict())
    image_processor = ImageProcessor(ImageProcessorConfig.for_model(config))
    processor = Qwen3VLProcessor(config, tok, image_processor)
    image = np.full((64, 96, 3), 200, np.uint8)
    chat = processor([{"role": "system", "content": "Write code."},
                      {"role": "user", "content": [{"type": "image", "image": image},
                                                   {"type": "text", "text": "Plot Zürich °C"}]}])
    special = tok.special
    pads = int((chat.input_ids == special.image_pad).sum())
    assert pads == processor.image_processor.num_tokens(chat.image_grid_thw[0]) > 1
    starts = np.flatnonzero(chat.input_ids == special.vision_start)
    assert len(starts) == 1 and chat.input_ids[starts[0] + 1 + pads] == special.vision_end
    collapsed = [i for n, i in enumerate(chat.input_ids.tolist())
                 if not (i == special.image_pad and chat.input_ids[n - 1] == special.image_pad)]
    assert tok.decode(collapsed) == chat.text
    assert chat.text.endswith("<|im_start|>assistant\n")


def test_load_tokenizer_names_and_checkpoint_folders(tmp_path):
    assert isinstance(load_tokenizer("synthetic_charts"), SentencePieceTokenizer)
    assert len(load_tokenizer(BUNDLED["synthetic_charts"])) == len(tokenizer("synthetic_charts"))
    assert len(load_tokenizer(None, str(tmp_path))) == len(tokenizer("qwen3"))
    shutil.copy(BUNDLED["synthetic_charts"], tmp_path / "tokenizer.model")
    assert isinstance(load_tokenizer(None, str(tmp_path)), SentencePieceTokenizer)
    with pytest.raises(ValueError, match="unknown tokenizer"):
        load_tokenizer("gpt2")
    with pytest.raises(FileNotFoundError, match="No sentencepiece model"):
        load_tokenizer(str(tmp_path / "missing.model"))


def test_training_is_deterministic():
    from sdpo_jax.synthetic.tasks import make_record
    texts = [text for i in range(60) for text in (make_record("train", i)["instruction"],
                                                  make_record("train", i)["code"])]
    first, second = train_sentencepiece(texts, 600), train_sentencepiece(texts, 600)
    assert first == second
    trained = SentencePieceTokenizer(first)
    assert len(trained) == 600 and trained.decode(trained.encode(texts[1])) == texts[1]
