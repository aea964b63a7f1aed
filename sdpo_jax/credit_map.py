"""A picture of credit weights over the code itself: the reply's program, line by line, with each
token's background shaded by its weight (white = 1, darker = more amplified). For notebooks and
evaluation reports; PIL only, never imports jax.
"""
from __future__ import annotations

import functools

import numpy as np
from PIL import Image, ImageDraw, ImageFont

from envs.code_extract import line_of, line_starts
from sdpo_jax.replies import Reply

_LATIN_FONTS = ("DejaVuSansMono.ttf", "LiberationMono-Regular.ttf")
_WIDE_FONTS = ("/usr/share/fonts/truetype/wqy/wqy-microhei.ttc",)  # CJK (setup installs it)
_WIDE_FROM = 0x2E80  # CJK radicals onwards: drawn with the wide font


def draw_credit_map(reply: Reply, weights: np.ndarray, *, first_line: int = 1,
                    max_lines: int = 80, font_size: int = 14,
                    max_columns: int = 110) -> Image.Image:
    """Lines first_line.. of the program of `reply` with token backgrounds shaded by `weights`
    (one per reply token), line numbers in the margin. Weights at or below 1 stay white; the
    largest weight is the darkest orange, so one picture compares statements, not runs."""
    code, offset = reply.program.code, reply.program.offset
    skip = max(first_line, 1) - 1
    lines = [line[:max_columns] for line in code.splitlines()[skip:skip + max_lines]] or [""]
    line_h = int(font_size * 1.45)
    margin = _font(font_size, False).getlength("0000 ")
    # x of every character of every shown line (monospace Latin, wider CJK glyphs)
    xs = [np.concatenate([[margin], margin + np.cumsum(
        [_font(font_size, ord(ch) >= _WIDE_FROM).getlength(ch) for ch in line])]) for line in lines]
    width = int(max(x[-1] for x in xs)) + 8
    image = Image.new("RGB", (width, line_h * len(lines) + 8), "white")
    draw = ImageDraw.Draw(image)
    starts = line_starts(code)
    top = float(np.max(weights, initial=1.0))
    for (start, end), weight in zip(reply.token_spans, weights):
        if weight <= 1.0 or top <= 1.0:
            continue
        shade = (weight - 1.0) / (top - 1.0)
        colour = (255, int(255 - 120 * shade), int(255 - 230 * shade))
        for position in range(max(start - offset, 0), min(end - offset, len(code))):
            line = line_of(starts, position)
            row, column = line - 1 - skip, position - starts[line - 1]
            if 0 <= row < len(lines) and column < len(lines[row]):
                y = 4 + row * line_h
                draw.rectangle((xs[row][column], y, xs[row][column + 1], y + line_h - 1),
                               fill=colour)
    for row, line in enumerate(lines):
        y = 4 + row * line_h
        draw.text((2, y), f"{skip + row + 1:>3}", fill=(150, 150, 150),
                  font=_font(font_size, False))
        for column, ch in enumerate(line):
            draw.text((xs[row][column], y), ch, fill=(20, 20, 20),
                      font=_font(font_size, ord(ch) >= _WIDE_FROM))
    return image


@functools.lru_cache(maxsize=8)
def _font(size: int, wide: bool) -> ImageFont.ImageFont:
    for name in (_WIDE_FONTS if wide else ()) + _LATIN_FONTS:
        try:
            return ImageFont.truetype(name, size)
        except OSError:
            continue
    return ImageFont.load_default(size)
