"""Our Python Qwen3-VL chat template against transformers' Qwen3VLProcessor.apply_chat_template."""
from __future__ import annotations

import os

import pytest

from models.qwen3_vl.chat_template import VISION_PLACEHOLDER, render_chat
from qwen3vl_hf_reference import SAMPLE_DATA, hf_processor

HOPPER = os.path.join(SAMPLE_DATA, "grace_hopper.jpg")
LOGO = os.path.join(SAMPLE_DATA, "logo2.png")
WEATHER_TOOL = {"type": "function", "function": {
    "name": "get_weather", "description": "Weather in a city, «quoted» & <escaped?>",
    "parameters": {"type": "object", "properties": {"city": {"type": "string"}}}}}

CONVERSATIONS = {
    "text_only": [{"role": "user", "content": "Plot y = x**2 with matplotlib."}],
    "system_and_image": [
        {"role": "system", "content": "You write matplotlib code."},
        {"role": "user", "content": [{"type": "image", "image": HOPPER},
                                     {"type": "text", "text": "Reproduce this chart."}]}],
    "system_as_parts_two_images_multi_turn": [
        {"role": "system", "content": [{"type": "text", "text": "Be "}, {"type": "text", "text": "terse."}]},
        {"role": "user", "content": [{"type": "text", "text": "Compare "}, {"type": "image", "image": HOPPER},
                                     {"type": "text", "text": " and "}, {"image": LOGO}]},
        {"role": "assistant", "content": [{"type": "text", "text": "```python\nimport matplotlib\n```"}]},
        {"role": "user", "content": "Now in red.\n\nThanks — ünïcödé 图表"}],
    "later_system_is_dropped": [
        {"role": "user", "content": "hi"}, {"role": "system", "content": "ignored"},
        {"role": "assistant", "content": "hello"}],
    "image_url_part": [{"role": "user", "content": [
        {"type": "image_url", "image_url": {"url": HOPPER}}, {"type": "text", "text": "What is it?"}]}],
    "tools_and_tool_calls": [
        {"role": "system", "content": "Use tools."},
        {"role": "user", "content": "Weather in Paris and Rome?"},
        {"role": "assistant", "content": "", "tool_calls": [
            {"type": "function", "function": {"name": "get_weather", "arguments": {"city": "Paris"}}},
            {"type": "function", "function": {"name": "get_weather", "arguments": '{"city": "Rome"}'}}]},
        {"role": "tool", "content": "18C"},
        {"role": "tool", "content": [{"type": "text", "text": "chart: "}, {"type": "image", "image": LOGO}]},
        {"role": "assistant", "content": "Both mild.", "tool_calls": [
            {"name": "get_weather", "arguments": {"city": "Oslo"}}]}],
}


@pytest.mark.parametrize("add_generation_prompt", [False, True])
@pytest.mark.parametrize("add_vision_id", [False, True])
@pytest.mark.parametrize("name", sorted(CONVERSATIONS))
def test_text_matches_transformers(name, add_vision_id, add_generation_prompt):
    messages = CONVERSATIONS[name]
    tools = [WEATHER_TOOL] if name.startswith("tools") else None
    expected = hf_processor().apply_chat_template(
        messages, tools=tools, tokenize=False, add_generation_prompt=add_generation_prompt,
        add_vision_id=add_vision_id)
    got = render_chat(messages, tools=tools, add_generation_prompt=add_generation_prompt,
                      add_vision_id=add_vision_id).text
    assert got == expected, f"{name}: ours\n{got!r}\n!= transformers\n{expected!r}"


def test_images_are_returned_in_placeholder_order():
    rendered = render_chat(CONVERSATIONS["system_as_parts_two_images_multi_turn"]
                           + CONVERSATIONS["image_url_part"])
    assert rendered.images == [HOPPER, LOGO, HOPPER]
    assert rendered.text.count(VISION_PLACEHOLDER) == 3


@pytest.mark.parametrize("messages, fragment", [
    ([], "non-empty list"),
    ({"role": "user", "content": "a dict, not a list"}, "non-empty list"),
    ([{"role": "robot", "content": "x"}], "'role' is one of"),
    ([{"role": "user", "content": 42}], "must be a string or a list"),
    ([{"role": "user", "content": ["bare string part"]}], "must be a string or a list"),
    ([{"role": "user", "content": [{"type": "video", "video": "clip.mp4"}]}], "images only"),
    ([{"role": "assistant", "content": [{"type": "image", "image": HOPPER}]}], "silently drops"),
])
def test_bad_messages_fail_with_a_clear_error(messages, fragment):
    with pytest.raises((ValueError, TypeError), match=fragment):
        render_chat(messages)
