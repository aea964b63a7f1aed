"""The Qwen3-VL-Instruct chat template, as plain Python.

Renders a list of chat messages into the exact prompt string that transformers produces with
the `chat_template.json` shipped by Qwen3-VL-*-Instruct checkpoints (one
`<|vision_start|><|image_pad|><|vision_end|>` per image; the processor expands the pad later),
and returns the images in the order their placeholders appear. Plain Python instead of Jinja
so `models/` needs no template engine and bad messages fail with a message naming the problem.

Messages use the Hugging Face shape: `{"role": ..., "content": str | list[part]}` where a part
is `{"type": "text", "text": ...}` or `{"type": "image", "image": <path | PIL image | array>}`.
Must never load or touch the images themselves: it only places them.
"""
from __future__ import annotations

import dataclasses
import json
from collections.abc import Mapping, Sequence
from typing import Any

VISION_PLACEHOLDER = "<|vision_start|><|image_pad|><|vision_end|>"
_TOOLS_PREAMBLE = (
    "# Tools\n\nYou may call one or more functions to assist with the user query.\n\n"
    "You are provided with function signatures within <tools></tools> XML tags:\n<tools>")
_TOOLS_POSTAMBLE = (
    "\n</tools>\n\nFor each function call, return a json object with function name and arguments "
    "within <tool_call></tool_call> XML tags:\n<tool_call>\n"
    '{"name": <function-name>, "arguments": <args-json-object>}\n</tool_call><|im_end|>\n')
_ROLES = ("system", "user", "assistant", "tool")


@dataclasses.dataclass(frozen=True)
class RenderedChat:
    """The prompt text and the images referenced by its placeholders, in placeholder order."""

    text: str
    images: list[Any]


def _tojson(value: Any) -> str:
    """transformers' `tojson` filter: json.dumps without HTML escaping or ASCII forcing."""
    return json.dumps(value, ensure_ascii=False)


def _is_image_part(part: Mapping) -> bool:
    return part.get("type") == "image" or "image" in part or "image_url" in part


def _is_video_part(part: Mapping) -> bool:
    return part.get("type") == "video" or "video" in part


def _parts(message: Mapping, index: int) -> list[Mapping] | str:
    """The message content as a string or a list of dict parts; missing/None content is empty."""
    content = message.get("content")
    if content is None:
        return ""
    if isinstance(content, str):
        return content
    if not isinstance(content, Sequence) or not all(isinstance(p, Mapping) for p in content):
        raise TypeError(
            f"messages[{index}]['content'] must be a string or a list of dict parts like "
            f"{{'type': 'text', 'text': ...}} / {{'type': 'image', 'image': ...}}, "
            f"got {type(content).__name__}: {content!r:.200}")
    return list(content)


def _text_only(message: Mapping, index: int) -> str:
    """System/assistant content: the template keeps only the text parts."""
    parts = _parts(message, index)
    if isinstance(parts, str):
        return parts
    return "".join(str(p["text"]) for p in parts if "text" in p)


def _image_source(part: Mapping) -> Any:
    if "image" in part:
        return part["image"]
    url = part.get("image_url")
    return url.get("url") if isinstance(url, Mapping) else url


def _tool_calls(message: Mapping) -> str:
    """`<tool_call>` blocks; a newline separates them from content the template sees as
    non-empty (the raw content's truthiness: a non-empty list counts)."""
    out = []
    for i, call in enumerate(message.get("tool_calls") or ()):
        if i > 0 or message.get("content"):
            out.append("\n")
        call = call.get("function") or call
        args = call.get("arguments")
        args_text = args if isinstance(args, str) else _tojson(args)
        out.append(f'<tool_call>\n{{"name": "{call.get("name")}", "arguments": '
                   f"{args_text}}}\n</tool_call>")
    return "".join(out)


class _Renderer:
    """One pass over the messages; counts images for `add_vision_id` and collects them."""

    def __init__(self, add_vision_id: bool):
        self.add_vision_id = add_vision_id
        self.images: list[Any] = []

    def visual_content(self, message: Mapping, index: int) -> str:
        """User/tool content: text parts verbatim, one placeholder per image."""
        parts = _parts(message, index)
        if isinstance(parts, str):
            return parts
        out = []
        for part in parts:
            if _is_image_part(part):
                self.images.append(_image_source(part))
                if self.add_vision_id:
                    out.append(f"Picture {len(self.images)}: ")
                out.append(VISION_PLACEHOLDER)
            elif _is_video_part(part):
                raise ValueError(
                    f"messages[{index}] has a video part; this port handles images only. Fix: "
                    f"pass the frames you need as image parts.")
            elif "text" in part:
                out.append(str(part["text"]))
        return "".join(out)


def _check_messages(messages: Sequence[Mapping]) -> None:
    if isinstance(messages, (str, Mapping)) or not messages:
        raise ValueError("messages must be a non-empty list of {'role': ..., 'content': ...} dicts")
    for i, message in enumerate(messages):
        if not isinstance(message, Mapping) or message.get("role") not in _ROLES:
            raise ValueError(f"messages[{i}] must be a dict whose 'role' is one of {_ROLES}, "
                             f"got {message!r:.200}")
        if message["role"] in ("system", "assistant") and not isinstance(
                _parts(message, i), str) and any(_is_image_part(p) for p in _parts(message, i)):
            raise ValueError(
                f"messages[{i}] ({message['role']}) holds an image, which the Qwen3-VL template "
                f"silently drops. Fix: put images in a user (or tool) message.")


def render_chat(messages: Sequence[Mapping], *, add_generation_prompt: bool = False,
                add_vision_id: bool = False, tools: Sequence[Mapping] | None = None
                ) -> RenderedChat:
    """Render messages exactly as the Qwen3-VL-Instruct chat template does.

    A system message counts only in first position (the template ignores later ones).
    `add_generation_prompt` opens an assistant turn for the model to complete;
    `add_vision_id` prefixes each image with "Picture N: "; `tools` are JSON function specs.
    """
    _check_messages(messages)
    renderer = _Renderer(add_vision_id)
    first = messages[0]
    out = []
    if tools:
        out.append("<|im_start|>system\n")
        if first["role"] == "system":
            out.append(_text_only(first, 0) + "\n\n")
        out.append(_TOOLS_PREAMBLE)
        out.extend("\n" + _tojson(tool) for tool in tools)
        out.append(_TOOLS_POSTAMBLE)
    elif first["role"] == "system":
        out.append(f"<|im_start|>system\n{_text_only(first, 0)}<|im_end|>\n")
    for i, message in enumerate(messages):
        role = message["role"]
        if role == "user":
            out.append(f"<|im_start|>user\n{renderer.visual_content(message, i)}<|im_end|>\n")
        elif role == "assistant":
            out.append(f"<|im_start|>assistant\n{_text_only(message, i)}"
                       f"{_tool_calls(message)}<|im_end|>\n")
        elif role == "tool":
            if i == 0 or messages[i - 1]["role"] != "tool":
                out.append("<|im_start|>user")
            out.append(f"\n<tool_response>\n{renderer.visual_content(message, i)}\n</tool_response>")
            if i == len(messages) - 1 or messages[i + 1]["role"] != "tool":
                out.append("<|im_end|>\n")
    if add_generation_prompt:
        out.append("<|im_start|>assistant\n")
    return RenderedChat(text="".join(out), images=renderer.images)
