"""Flax NNX port of Qwen3-VL (Qwen3VLForConditionalGeneration) and its text/image front end."""
