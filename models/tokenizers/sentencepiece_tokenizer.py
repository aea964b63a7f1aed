"""A small sentencepiece tokenizer (`models.tokenizers.base.Tokenizer`) for toy-scale runs, and
its deterministic training.

    tokenizer = SentencePieceTokenizer.load("models/tokenizers/synthetic_charts.model")
    model_bytes = train_sentencepiece(texts, vocab_size=2048)   # same texts -> same bytes

Trained as BPE with byte fallback (any text encodes, nothing is <unk>), no normalisation, no
dummy prefix and no whitespace collapsing, so decode(encode(text)) == text for every text
without U+2581 (sentencepiece's own space marker, which decodes as a space). The chat and vision
control tokens, the template's markup and the newline are user-defined symbols: always single
tokens, so a token never spans two lines. Digits are split, so numbers are copied digit by
digit. Plain Python: no jax, no envs.
"""
from __future__ import annotations

import functools
import io
import os
from collections.abc import Iterable, Sequence

import sentencepiece as spm

from models.tokenizers.base import (SPECIAL_TOKENS, TEMPLATE_TOKENS, Span, SpecialTokenIds,
                                    decode_pieces)

SPACE = "\u2581"  # sentencepiece's marker for a space inside a piece
UNKNOWN_TEXT = " \u2047 "  # what sentencepiece prints for <unk>
USER_SYMBOLS = (*SPECIAL_TOKENS.values(), *TEMPLATE_TOKENS, "\n")
TRAINING_OPTIONS = dict(
    model_type="bpe", byte_fallback=True, user_defined_symbols=list(USER_SYMBOLS),
    normalization_rule_name="identity", remove_extra_whitespaces=False, add_dummy_prefix=False,
    split_by_whitespace=False, split_digits=True, allow_whitespace_only_pieces=True,
    character_coverage=1.0, unk_id=0, bos_id=-1, eos_id=-1, pad_id=-1, num_threads=1,
    shuffle_input_sentence=False, max_sentence_length=1 << 20, minloglevel=2)


def train_sentencepiece(texts: Iterable[str], vocab_size: int) -> bytes:
    """The serialised model trained on `texts` (deterministic: the same texts in the same order
    give the same bytes). Each text is one training sentence and may hold newlines."""
    out = io.BytesIO()
    spm.SentencePieceTrainer.train(sentence_iterator=iter(texts), model_writer=out,
                                   vocab_size=vocab_size, **TRAINING_OPTIONS)
    return out.getvalue()


class SentencePieceTokenizer:
    """A sentencepiece model behind the project's tokenizer interface."""

    def __init__(self, model_proto: bytes, source: str = "<bytes>"):
        self._sp = spm.SentencePieceProcessor(model_proto=model_proto)
        self.source = source

    @classmethod
    def load(cls, path: str) -> "SentencePieceTokenizer":
        if not os.path.isfile(path):
            raise FileNotFoundError(f"No sentencepiece model at {path}. Fix: give the path of a "
                                    f".model file, or build one with `python -m "
                                    f"sdpo_jax.build_tokenizer OUT.model`.")
        with open(path, "rb") as f:
            return cls(f.read(), source=path)

    @property
    def unknown_id(self) -> int:
        """<unk>: never a real piece under byte fallback, so never worth generating."""
        return self._sp.unk_id()

    def save(self, folder: str) -> None:
        """Write the model as `folder`/tokenizer.model (what load_tokenizer(None, folder) reads)."""
        with open(os.path.join(folder, "tokenizer.model"), "wb") as f:
            f.write(self._sp.serialized_model_proto())

    @functools.cached_property
    def special(self) -> SpecialTokenIds:
        return SpecialTokenIds.of(self)

    def token_to_id(self, token: str) -> int:
        idx = self._sp.piece_to_id(token)
        if self._sp.is_unknown(idx) and token != self._sp.id_to_piece(idx):
            raise KeyError(f"token {token!r} is not in the sentencepiece vocabulary of "
                           f"{self.source}; models trained by train_sentencepiece hold "
                           f"{list(USER_SYMBOLS)} as single tokens")
        return idx

    def encode(self, text: str) -> list[int]:
        """Token ids of text; user-defined symbols (the control tokens) are parsed as one token."""
        return self._sp.encode(text, out_type=int)

    def decode(self, ids: Sequence[int], skip_special_tokens: bool = False) -> str:
        if skip_special_tokens:
            special = self.special.all()
            ids = [i for i in ids if int(i) not in special]
        return self.decode_with_spans(ids)[0]

    def decode_with_spans(self, ids: Sequence[int]) -> tuple[str, list[Span]]:
        """The exact text of SAMPLED ids and each token's character span: byte pieces feed the
        UTF-8 decoder, other pieces are their text with spaces restored (`decode_pieces`)."""
        return decode_pieces(self._piece(int(i)) for i in ids)

    def _piece(self, token_id: int) -> bytes | str:
        if not 0 <= token_id < len(self):
            raise ValueError(f"token id {token_id} is outside the sentencepiece vocabulary "
                             f"({len(self)} entries) of {self.source}")
        if self._sp.is_byte(token_id):
            return bytes([int(self._sp.id_to_piece(token_id)[3:5], 16)])  # "<0xAB>"
        if self._sp.is_unknown(token_id):
            return UNKNOWN_TEXT
        return self._sp.id_to_piece(token_id).replace(SPACE, " ").encode("utf-8")

    def __len__(self) -> int:
        return self._sp.get_piece_size()
