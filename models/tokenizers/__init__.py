"""Tokenizers behind one interface (`base.Tokenizer`): the real Qwen3 byte-level BPE
(`models.qwen3_vl.tokenizer`) and small sentencepiece models (`sentencepiece_tokenizer`, with the
committed `synthetic_charts.model`), chosen by name with `load.load_tokenizer`.
"""
