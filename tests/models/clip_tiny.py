"""A tiny random CLIP saved as a local HF folder, shared by the CLIP model and CLIP-score tests.

Weights are *loud* (norm weights 1 +/- 0.2, biases N(0, 0.1), matrices N(0, 1/fan_in),
embeddings N(0, 1)): transformers' default init (norms 1, biases 0) would hide bugs in biases
and norms. torch and transformers are test-only dependencies, imported here lazily.
"""
from __future__ import annotations

IMAGE_SIZE = 30
EOS = 98


def save_tiny_clip(folder: str, seed: int = 0):
    """Save the model and a matching CLIPImageProcessor to `folder`; returns (model, processor)."""
    import torch
    import transformers

    torch.manual_seed(seed)
    config = transformers.CLIPConfig(
        text_config=dict(vocab_size=99, hidden_size=32, intermediate_size=37, num_hidden_layers=2,
                         num_attention_heads=4, max_position_embeddings=16, eos_token_id=EOS),
        vision_config=dict(hidden_size=32, intermediate_size=37, num_hidden_layers=2,
                           num_attention_heads=4, image_size=IMAGE_SIZE, patch_size=6),
        projection_dim=24)
    model = transformers.CLIPModel(config).eval()
    with torch.no_grad():
        for name, p in model.named_parameters():
            if name == "logit_scale":
                continue
            if "norm" in name and name.endswith("weight"):
                p.copy_(1 + 0.2 * torch.randn_like(p))
            elif name.endswith("bias"):
                p.copy_(0.1 * torch.randn_like(p))
            elif p.ndim >= 2 and "embedding" not in name:
                p.copy_(torch.randn_like(p) * p[0].numel() ** -0.5)
            else:
                p.copy_(torch.randn_like(p))
    model.save_pretrained(folder, safe_serialization=True)
    processor = transformers.CLIPImageProcessor(
        size={"shortest_edge": IMAGE_SIZE}, crop_size={"height": IMAGE_SIZE, "width": IMAGE_SIZE})
    processor.save_pretrained(folder)
    return model, processor
