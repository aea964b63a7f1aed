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


# APCA's font lookup (APCA-W3 beta 0.1.7 "G" tables, May 2022, the WCAG 3 draft's): for each
# lightness contrast Lc, the smallest font size (CSS px of a reference font whose x-height is
# 0.52 em) at which text of normal (400) and bold (700) weight reads fluently; the minimum size
# shrinks as Lc grows. Sizes above 120 px (normal) / 96 px (bold) need no more than Lc 25.
APCA_REFERENCE_X_HEIGHT = 0.52
_APCA_FLUENT_PX = {
    False: ((25, 120), (30, 108), (35, 96), (40, 60), (45, 42), (50, 32), (55, 28), (60, 24),
            (65, 21.75), (70, 19.5), (75, 18), (80, 17.25), (85, 16.5), (90, 16), (95, 15.5),
            (100, 15), (105, 14.5), (110, 14), (115, 12.5), (120, 11), (125, 10)),
    True: ((25, 96), (30, 72), (35, 48), (40, 32), (45, 24), (50, 21), (55, 18), (60, 16),
           (65, 15), (70, 14.5), (75, 14), (100, 13), (105, 12), (110, 11), (115, 10.625),
           (120, 10.25), (125, 10)),
}


def apca_fluent_minimum(size_px: float, bold: bool) -> float:
    """|Lc| APCA's font lookup asks for fluent reading of text `size_px` (reference-font CSS
    px) tall, interpolated between the table's sizes (Lc 125 for text of 10 px or less)."""
    rows = _APCA_FLUENT_PX[bool(bold)]
    if size_px >= rows[0][1]:
        return float(rows[0][0])
    for (lc_big, px_big), (lc_small, px_small) in zip(rows, rows[1:]):
        if size_px >= px_small:
            return lc_big + (lc_small - lc_big) * (px_big - size_px) / (px_big - px_small)
    return float(rows[-1][0])


def apca_spot_minimum(size_px: float, bold: bool) -> float:
    """|Lc| below which APCA finds text of this size and weight unfit even for spot reading
    (short labels and numbers read one at a time, its least demanding text use): the lookup's
    fluent level Lc F mapped through APCA's use-case adjustment, F / 2 + 15 from Lc 40 up
    (fluent 100 -> spot 65, 60 -> 45, 40 -> 35) and F - 5 below, at most 75."""
    fluent = apca_fluent_minimum(size_px, bold)
    return min(75.0, fluent / 2 + 15 if fluent >= 40 else fluent - 5)


def hard_to_read(ratio: float, required: float, fg: Sequence[float] | None = None,
                 bg: Sequence[float] | None = None, size_px: float | None = None,
                 bold: bool = False) -> bool:
    """Text a reader struggles with, as opposed to text most read easily that WCAG still fails:
    below two thirds of the WCAG threshold (3:1 for body text, 2:1 for large text) and, when the
    colours are given, below APCA's minimum lightness contrast (`apca_contrast`). That minimum
    is APCA's spot-reading level for the text's size and weight (`apca_spot_minimum`) when its
    size is given (`size_px`: reference-font px, i.e. x-height / 0.52), else |Lc| 45 for body
    text and 30 for large text (the levels of 24 px and 72 px normal text)."""
    if ratio >= required * 2.0 / 3.0:
        return False
    if fg is None or bg is None:
        return True
    if size_px is not None and size_px > 0:
        minimum = apca_spot_minimum(size_px, bold)
    else:
        minimum = 45.0 if required > 3.0 else 30.0
    return abs(apca_contrast(fg, bg)) < minimum


def contrast_verdict(ratio: float, required: float, fg: Sequence[float] | None = None,
                     bg: Sequence[float] | None = None, size_px: float | None = None,
                     bold: bool = False) -> tuple[str, bool]:
    """How a text below the WCAG line is reported: (the message's words, advisory). Text that is
    hard to read (`hard_to_read`) is a low-contrast defect; text only below WCAG (3-4.5:1 body
    text, white on a saturated mid-tone), which a person reads easily, is an advisory note with
    its ratio and threshold, kept out of the reward and the defect rates."""
    if hard_to_read(ratio, required, fg, bg, size_px, bold):
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
