"""Choosing a tokenizer by name: what a run config's `model.tokenizer` says.

    load_tokenizer("qwen3")                     # the real Qwen3 BPE (151669 tokens)
    load_tokenizer("synthetic_charts")          # the committed sentencepiece model (toy runs)
    load_tokenizer("/path/to/any.model")        # any sentencepiece model file
    load_tokenizer(None, folder=CHECKPOINT)     # the checkpoint's own: tokenizer.model, else
                                                # tokenizer.json, else the bundled Qwen3 files
Never downloads anything. Plain Python: no jax, no envs.
"""
from __future__ import annotations

import os

from models.qwen3_vl.tokenizer import Qwen3Tokenizer
from models.tokenizers.base import Tokenizer
from models.tokenizers.sentencepiece_tokenizer import SentencePieceTokenizer

QWEN3 = "qwen3"
SENTENCEPIECE_FILE = "tokenizer.model"  # a checkpoint folder's own sentencepiece model
BUNDLED = {"synthetic_charts": os.path.join(os.path.dirname(os.path.abspath(__file__)),
                                            "synthetic_charts.model")}


def load_tokenizer(name: str | None = QWEN3, folder: str | None = None) -> Tokenizer:
    """The tokenizer `name` names (see the module docstring); `folder` is a checkpoint folder
    whose own tokenizer.json replaces the bundled Qwen3 files (name "qwen3") or whose own
    tokenizer is used outright (name None)."""
    if name is None:
        own = os.path.join(folder, SENTENCEPIECE_FILE) if folder else None
        if own and os.path.isfile(own):
            return SentencePieceTokenizer.load(own)
        return Qwen3Tokenizer.load(folder)
    if name == QWEN3:
        return Qwen3Tokenizer.load(folder)
    if name in BUNDLED:
        return SentencePieceTokenizer.load(BUNDLED[name])
    if name.endswith(".model"):
        return SentencePieceTokenizer.load(name)
    raise ValueError(f"unknown tokenizer {name!r}. Fix: use {QWEN3!r}, one of the bundled "
                     f"sentencepiece models {sorted(BUNDLED)}, or the path of a .model file.")
