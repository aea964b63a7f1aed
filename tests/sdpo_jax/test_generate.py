"""`python -m sdpo_jax.generate`: greedy tokens equal transformers' `generate` on the same tiny
model (saved with `save_pretrained`, and converted to a Flax checkpoint), and bad arguments give
clear errors. (Sampling itself is tested with the sampler, tests/sdpo_jax/test_sampler.py.)"""
from __future__ import annotations

import os
import sys

import pytest

from models.qwen3_vl.convert import load_hf_checkpoint, save_flax_checkpoint
from sdpo_jax.generate import Generator, chat_messages, main, render_demo_chart, run_demo
from sdpo_jax.model_loading import size_config
from sdpo_jax.sampling import Sampling

# The HF reference helpers live with the model tests.
sys.path.insert(0, os.path.join(os.path.dirname(__file__), os.pardir, "models"))
from qwen3vl_hf_reference import hf_processor  # noqa: E402
from qwen3vl_tiny import build_hf_model  # noqa: E402

MAX_NEW_TOKENS = 12
STOP_IDS = [151645, 151643]


@pytest.fixture(scope="module")
def folders(tmp_path_factory):
    """A tiny random HF Qwen3-VL (real vocabulary and token ids) saved with save_pretrained,
    the same weights as a Flax checkpoint, and a rendered chart to prompt with."""
    root = tmp_path_factory.mktemp("generate")
    hf_model = build_hf_model(size_config("tiny").to_hf_dict(), seed=1)
    hf_model.save_pretrained(root / "hf")
    _, flax_model = load_hf_checkpoint(str(root / "hf"))
    save_flax_checkpoint(flax_model, str(root / "flax"), source_folder=str(root / "hf"))
    return dict(hf=str(root / "hf"), flax=str(root / "flax"), model=hf_model,
                chart=render_demo_chart(str(root)))


def hf_greedy(model, messages) -> list[int]:
    import torch

    inputs = hf_processor().apply_chat_template(
        messages, tokenize=True, return_dict=True, add_generation_prompt=True,
        return_tensors="pt")
    with torch.no_grad():
        out = model.generate(**inputs, max_new_tokens=MAX_NEW_TOKENS, do_sample=False,
                             eos_token_id=STOP_IDS, pad_token_id=STOP_IDS[1])
    return out[0, inputs["input_ids"].shape[1]:].tolist()


@pytest.mark.slow  # ~30 s: torch model, two checkpoint formats, compile (the sampler's own
# greedy parity with transformers runs in the default suite, tests/sdpo_jax/test_sampler.py)
def test_greedy_tokens_equal_transformers_from_hf_and_flax_folders(folders, capsys):
    messages = chat_messages("Write matplotlib code for this chart.", [folders["chart"]],
                             system="You are a careful plotting assistant.")
    expected = hf_greedy(folders["model"], messages)
    assert len(expected) >= 4, f"transformers stopped too early to compare: {expected}"

    completion = Generator.from_checkpoint(folders["hf"])(
        messages, max_new_tokens=MAX_NEW_TOKENS, sampling=Sampling(temperature=0))
    assert completion.token_ids == expected, "greedy tokens differ from transformers' generate"

    # The CLI on the Flax checkpoint prints the same completion.
    code = main(["--checkpoint", folders["flax"], "--prompt", "Write matplotlib code for this "
                 "chart.", "--image", folders["chart"], "--system", "You are a careful plotting "
                 "assistant.", "--temperature", "0", "--max_new_tokens", str(MAX_NEW_TOKENS)])
    assert code == 0
    printed = capsys.readouterr().out
    assert printed == completion.text + "\n"
    assert completion.text == hf_processor().tokenizer.decode(expected, skip_special_tokens=True)


def test_cli_errors_name_the_missing_thing(tmp_path, capsys):
    assert main(["--checkpoint", str(tmp_path / "absent"), "--prompt", "hi"]) == 2
    assert "Checkpoint folder not found" in capsys.readouterr().err
    assert main(["--checkpoint", str(tmp_path), "--prompt", "hi", "--image",
                 str(tmp_path / "no.png")]) == 2
    assert "no.png" in capsys.readouterr().err
    assert main(["--checkpoint", str(tmp_path), "--prompt", "hi"]) == 2
    assert "config.json" in capsys.readouterr().err
    assert main(["--checkpoint", str(tmp_path), "--prompt", "hi", "--top_p", "0"]) == 2
    assert "top_p" in capsys.readouterr().err
    assert main(["--demo", "--max_new_tokens", "0"]) == 2
    assert "max_new_tokens" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        main(["--prompt", "hi"])


@pytest.mark.slow
def test_demo_generates_from_a_rendered_chart():
    completion = run_demo(max_new_tokens=8)
    assert completion.prompt_tokens > 80  # the chart's image tokens are in the prompt
    assert 1 <= len(completion.token_ids) <= 8
