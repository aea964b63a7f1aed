"""What every tokenizer of this project offers, whatever its kind (the real Qwen3 byte-level BPE,
or a small sentencepiece model for toy runs), and the special tokens the chat template needs.

The interface is small on purpose: encode, decode, the special token ids, the vocabulary size,
and `decode_with_spans`: the exact text of SAMPLED ids with each token's character span, which
credit weighting needs (a sampled segmentation need not be the one encoding would give, so the
spans come from each token's own bytes, never from re-encoding). Plain Python: no jax, no envs.
"""
from __future__ import annotations

import codecs
import dataclasses
from collections.abc import Iterable, Sequence
from typing import Protocol

Span = tuple[int, int]

# The chat and vision control tokens by field name. Every tokenizer must hold them as single
# tokens, parsed from text, so the Qwen3-VL chat template and image placeholders work unchanged.
SPECIAL_TOKENS = {
    "im_start": "<|im_start|>", "im_end": "<|im_end|>", "endoftext": "<|endoftext|>",
    "vision_start": "<|vision_start|>", "vision_end": "<|vision_end|>",
    "image_pad": "<|image_pad|>", "video_pad": "<|video_pad|>",
}
# Other markup of the chat template (tool calls, thinking) that a small tokenizer also keeps whole.
TEMPLATE_TOKENS = ("<tool_call>", "</tool_call>", "<tool_response>", "</tool_response>",
                   "<think>", "</think>")


@dataclasses.dataclass(frozen=True)
class SpecialTokenIds:
    """Ids of the chat and vision control tokens, looked up by name in the tokenizer itself."""

    im_start: int
    im_end: int
    endoftext: int
    vision_start: int
    vision_end: int
    image_pad: int
    video_pad: int

    @property
    def eos(self) -> tuple[int, ...]:
        """Ids that end a generation: `<|im_end|>` closes an assistant turn, `<|endoftext|>` the
        document (Qwen3-VL's generation_config lists both)."""
        return (self.im_end, self.endoftext)

    @property
    def pad(self) -> int:
        return self.endoftext

    def all(self) -> frozenset[int]:
        return frozenset(dataclasses.astuple(self))

    @classmethod
    def of(cls, tokenizer: "Tokenizer") -> "SpecialTokenIds":
        """Looked up by name in the tokenizer (a KeyError names a missing one)."""
        return cls(**{field: tokenizer.token_to_id(token)
                      for field, token in SPECIAL_TOKENS.items()})


class Tokenizer(Protocol):
    """The interface the processor, sampler, credit and trainer use."""

    @property
    def special(self) -> SpecialTokenIds: ...

    def encode(self, text: str) -> list[int]:
        """Token ids of text, special tokens parsed, nothing added (no BOS)."""

    def decode(self, ids: Sequence[int], skip_special_tokens: bool = False) -> str: ...

    def decode_with_spans(self, ids: Sequence[int]) -> tuple[str, list[Span]]:
        """The exact decoded text of the ids and each token's (start, end) in it."""

    def token_to_id(self, token: str) -> int: ...

    @property
    def unknown_id(self) -> int | None:
        """The unknown token's id (never to be generated), None when there is none."""

    def save(self, folder: str) -> None:
        """Write the tokenizer's file into a checkpoint folder, for load_tokenizer(None, folder)."""

    def __len__(self) -> int: ...


def decode_pieces(pieces: Iterable[bytes | str]) -> tuple[str, list[Span]]:
    """Text and per-token spans from each token's raw bytes (bytes) or literal text (str).

    Bytes run through one incremental UTF-8 decoder, so a character split over several tokens
    lands on the token that completes it (earlier ones get an empty span there); invalid bytes
    become U+FFFD (Python's "replace"). A str piece first flushes any unfinished bytes.
    """
    decoder = codecs.getincrementaldecoder("utf-8")(errors="replace")
    texts: list[str] = []
    spans: list[Span] = []
    position = 0
    for piece in pieces:
        if isinstance(piece, str):
            text = decoder.decode(b"", final=True) + piece
            decoder.reset()
        else:
            text = decoder.decode(piece)
        texts.append(text)
        spans.append((position, position + len(text)))
        position += len(text)
    tail = decoder.decode(b"", final=True)
    if tail and spans:
        texts.append(tail)
        spans[-1] = (spans[-1][0], spans[-1][1] + len(tail))
    return "".join(texts), spans
