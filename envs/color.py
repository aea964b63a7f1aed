"""Colour arithmetic the web and slide judges share: compositing, WCAG contrast, CIEDE2000.

Colours are RGB(A) tuples with channels in 0..255 and alpha in 0..1. Pure Python and numpy;
never imports jax.
"""
from __future__ import annotations

import math
from collections.abc import Sequence

RGB = tuple[float, float, float]
WHITE: RGB = (255.0, 255.0, 255.0)


def blend(top: Sequence[float], bottom: Sequence[float], alpha: float | None = None) -> RGB:
    """`top` painted with its alpha (or `alpha`) over an opaque `bottom`."""
    a = (top[3] if len(top) > 3 else 1.0) if alpha is None else alpha
    return tuple(a * t + (1.0 - a) * b for t, b in zip(top[:3], bottom[:3]))  # type: ignore[return-value]


def relative_luminance(rgb: Sequence[float]) -> float:
    """WCAG 2.x relative luminance of an sRGB colour."""
    def lin(channel: float) -> float:
        c = channel / 255.0
        return c / 12.92 if c <= 0.03928 else ((c + 0.055) / 1.055) ** 2.4
    r, g, b = (lin(c) for c in rgb[:3])
    return 0.2126 * r + 0.7152 * g + 0.0722 * b


def contrast_ratio(fg: Sequence[float], bg: Sequence[float]) -> float:
    """WCAG contrast ratio in [1, 21] between two opaque colours."""
    la, lb = relative_luminance(fg), relative_luminance(bg)
    hi, lo = max(la, lb), min(la, lb)
    return (hi + 0.05) / (lo + 0.05)


def required_contrast(font_px: float, bold: bool) -> float:
    """WCAG AA threshold as axe-core applies it: 3.0 for large text, else 4.5."""
    pt = math.ceil(font_px * 72) / 96
    small = (bold and pt < 14) or (not bold and pt < 18)
    return 4.5 if small else 3.0


def contrast_severity(ratio: float, required: float) -> float:
    """0 at the threshold, 1 at no contrast at all."""
    return min(1.0, max(0.0, (required - ratio) / (required - 1.0)))


def apca_contrast(fg: Sequence[float], bg: Sequence[float]) -> float:
    """APCA lightness contrast Lc (0.0.98G-4g, the WCAG 3 draft's readability measure) of text
    `fg` on `bg`: about -108..106, negative for light text on a dark ground. Unlike the WCAG 2
    ratio it rates white on saturated mid-tones (a red or blue heatmap cell) readable and dark
    on dark hard, as the by-eye chart audit saw them."""
    def y(rgb: Sequence[float]) -> float:
        r, g, b = ((c / 255.0) ** 2.4 for c in rgb[:3])
        v = 0.2126729 * r + 0.7151522 * g + 0.0721750 * b
        return v if v > 0.022 else v + (0.022 - v) ** 1.414
    text, ground = y(fg), y(bg)
    if abs(ground - text) < 0.0005:
        return 0.0
    if ground > text:  # dark text on a light ground
        sapc = (ground ** 0.56 - text ** 0.57) * 1.14
        return 0.0 if sapc < 0.1 else (sapc - 0.027) * 100
    sapc = (ground ** 0.65 - text ** 0.62) * 1.14
    return 0.0 if sapc > -0.1 else (sapc + 0.027) * 100


def hard_to_read(ratio: float, required: float, fg: Sequence[float] | None = None,
                 bg: Sequence[float] | None = None) -> bool:
    """Text a reader struggles with, as opposed to text most read easily that WCAG still fails:
    below two thirds of the WCAG threshold (3:1 for body text, 2:1 for large text) and, when the
    colours are given, below APCA's minimum for its size (|Lc| 45 for body text, 30 for large
    text: `apca_contrast`)."""
    if ratio >= required * 2.0 / 3.0:
        return False
    if fg is None or bg is None:
        return True
    return abs(apca_contrast(fg, bg)) < (45.0 if required > 3.0 else 30.0)


def contrast_verdict(ratio: float, required: float, fg: Sequence[float] | None = None,
                     bg: Sequence[float] | None = None) -> tuple[str, bool]:
    """How a text below the WCAG line is reported: (the message's words, advisory). Text that is
    hard to read (`hard_to_read`) is a low-contrast defect; text only below WCAG (3-4.5:1 body
    text, white on a saturated mid-tone), which a person reads easily, is an advisory note with
    its ratio and threshold, kept out of the reward and the defect rates."""
    if hard_to_read(ratio, required, fg, bg):
        return f"needs {required:g}:1; hard to read", False
    return f"WCAG asks {required:g}:1; readable, an advisory note, not a defect", True


def is_bold(font_weight: str | float | int) -> bool:
    text = str(font_weight).strip().lower()
    return text in ("bold", "bolder") or (text.replace(".", "", 1).isdigit() and float(text) >= 700)


def hex_color(rgb: Sequence[float]) -> str:
    return "#" + "".join(f"{int(round(min(255, max(0, c)))):02x}" for c in rgb[:3])


def _srgb_to_lab(rgb: Sequence[float]) -> tuple[float, float, float]:
    def lin(channel: float) -> float:
        c = channel / 255.0
        return c / 12.92 if c <= 0.04045 else ((c + 0.055) / 1.055) ** 2.4
    r, g, b = (lin(c) for c in rgb[:3])
    x = (0.4124564 * r + 0.3575761 * g + 0.1804375 * b) / 0.95047
    y = 0.2126729 * r + 0.7151522 * g + 0.0721750 * b
    z = (0.0193339 * r + 0.1191920 * g + 0.9503041 * b) / 1.08883

    def f(t: float) -> float:
        return t ** (1 / 3) if t > 216 / 24389 else (24389 / 27 * t + 16) / 116
    fx, fy, fz = f(x), f(y), f(z)
    return 116 * fy - 16, 500 * (fx - fy), 200 * (fy - fz)


def ciede2000(rgb1: Sequence[float], rgb2: Sequence[float]) -> float:
    """CIEDE2000 colour difference of two sRGB colours (D65), as Design2Code's colour metric uses."""
    return ciede2000_lab(_srgb_to_lab(rgb1), _srgb_to_lab(rgb2))


def ciede2000_lab(lab1: Sequence[float], lab2: Sequence[float]) -> float:
    """CIEDE2000 (Sharma, Wu, Dalal 2005) between two CIELAB colours."""
    l1, a1, b1 = lab1
    l2, a2, b2 = lab2
    c1, c2 = math.hypot(a1, b1), math.hypot(a2, b2)
    c_bar7 = ((c1 + c2) / 2) ** 7
    g = 0.5 * (1 - math.sqrt(c_bar7 / (c_bar7 + 25 ** 7)))
    a1p, a2p = (1 + g) * a1, (1 + g) * a2
    c1p, c2p = math.hypot(a1p, b1), math.hypot(a2p, b2)
    h1p = math.degrees(math.atan2(b1, a1p)) % 360
    h2p = math.degrees(math.atan2(b2, a2p)) % 360
    dlp, dcp = l2 - l1, c2p - c1p
    if c1p * c2p == 0:
        dhp = 0.0
    elif abs(h2p - h1p) <= 180:
        dhp = h2p - h1p
    else:
        dhp = h2p - h1p - 360 if h2p > h1p else h2p - h1p + 360
    d_hp = 2 * math.sqrt(c1p * c2p) * math.sin(math.radians(dhp / 2))
    lbp, cbp = (l1 + l2) / 2, (c1p + c2p) / 2
    if c1p * c2p == 0:
        hbp = h1p + h2p
    elif abs(h1p - h2p) <= 180:
        hbp = (h1p + h2p) / 2
    else:
        hbp = (h1p + h2p + 360) / 2 if h1p + h2p < 360 else (h1p + h2p - 360) / 2
    t = (1 - 0.17 * math.cos(math.radians(hbp - 30)) + 0.24 * math.cos(math.radians(2 * hbp))
         + 0.32 * math.cos(math.radians(3 * hbp + 6)) - 0.20 * math.cos(math.radians(4 * hbp - 63)))
    d_theta = 30 * math.exp(-(((hbp - 275) / 25) ** 2))
    rc = 2 * math.sqrt(cbp ** 7 / (cbp ** 7 + 25 ** 7))
    sl = 1 + 0.015 * (lbp - 50) ** 2 / math.sqrt(20 + (lbp - 50) ** 2)
    sc = 1 + 0.045 * cbp
    sh = 1 + 0.015 * cbp * t
    rt = -math.sin(math.radians(2 * d_theta)) * rc
    return math.sqrt((dlp / sl) ** 2 + (dcp / sc) ** 2 + (d_hp / sh) ** 2
                     + rt * (dcp / sc) * (d_hp / sh))
