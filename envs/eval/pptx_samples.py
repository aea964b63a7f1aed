"""Clean python-pptx slide programs, generated from a seed, and one-line defect injections.

There is no public corpus of python-pptx programs here, so tests and benchmarks use these:
realistic 16:9 slides (title, bullet body, coloured cards with labels, two columns) written
the way models write them, one statement per line, laid out on a grid so they are clean.
Every program records the line of each textbox's `add_textbox` call and of its colour
statement, so an injection edits exactly one line: geometry (overflow, overlap, misalignment)
or colour (low contrast). Never imports jax.
"""
from __future__ import annotations

import dataclasses
import random

KINDS = ("overflow", "overlap", "low_contrast", "misalignment")

_TOPICS = [("Quarterly results", ["Revenue grew 12% year over year", "Costs fell in every region",
                                  "Cash flow turned positive in May"]),
           ("Project roadmap", ["Design review in March", "Beta release to partners", "General availability in Q3"]),
           ("Customer research", ["Interviews with 40 teams", "Onboarding is the top pain point",
                                  "Pricing is clear to most buyers"]),
           ("Hiring plan", ["Four engineers this half", "One designer for the app", "Support team doubles"]),
           ("Security update", ["All laptops encrypted", "Two-factor login everywhere", "Quarterly audits booked"])]
_CARD_COLOURS = [(0x1F, 0x4E, 0x79), (0x38, 0x76, 0x1D), (0x7F, 0x1D, 0x4E), (0x33, 0x33, 0x66)]


@dataclasses.dataclass
class TextBoxSpec:
    name: str
    x: float
    y: float
    w: float
    h: float
    text: str
    size: int
    rgb: tuple[int, int, int]
    background: tuple[int, int, int]  # what lies beneath it
    create_line: int = 0
    colour_line: int = 0


@dataclasses.dataclass
class SlideProgram:
    code: str
    boxes: list[TextBoxSpec]


def clean_program(seed: int) -> SlideProgram:
    """A slide with a title, a bullet column and one to three labelled cards."""
    rng = random.Random(seed)
    title, bullets = rng.choice(_TOPICS)
    cards = rng.randint(1, 3)
    colour = rng.choice(_CARD_COLOURS)
    lines = ["from pptx import Presentation", "from pptx.util import Inches, Pt",
             "from pptx.dml.color import RGBColor", "", "prs = Presentation()",
             "prs.slide_width = Inches(13.333)", "prs.slide_height = Inches(7.5)",
             "slide = prs.slides.add_slide(prs.slide_layouts[6])"]
    boxes = [TextBoxSpec("title", 0.8, 0.5, 11.7, 1.0, title, 40, (0x20, 0x20, 0x20), (255, 255, 255))]
    for k, bullet in enumerate(bullets):
        boxes.append(TextBoxSpec(f"bullet{k}", 0.8, 2.0 + 1.0 * k, 5.6, 0.8, bullet, 22, (0x33, 0x33, 0x33),
                                 (255, 255, 255)))
    card_h = 4.4 / cards - 0.2
    for k in range(cards):
        y = 2.0 + k * (card_h + 0.2)
        lines += [f"card{k} = slide.shapes.add_shape(1, Inches(7.0), Inches({y:.2f}), Inches(5.5), Inches({card_h:.2f}))",
                  f"card{k}.fill.solid()", f"card{k}.fill.fore_color.rgb = RGBColor{colour}",
                  f"card{k}.line.fill.background()"]
        boxes.append(TextBoxSpec(f"label{k}", 7.3, y + 0.2, 4.9, 0.7, f"Key figure {rng.randint(10, 99)}%",
                                 24, (255, 255, 255), colour))
    for box in boxes:
        var = box.name
        box.create_line = len(lines) + 1
        lines.append(f"{var} = slide.shapes.add_textbox(Inches({box.x:.2f}), Inches({box.y:.2f}), "
                     f"Inches({box.w:.2f}), Inches({box.h:.2f}))")
        lines += [f"{var}.text_frame.word_wrap = True", f"{var}.text_frame.text = {box.text!r}",
                  f"{var}.text_frame.paragraphs[0].runs[0].font.size = Pt({box.size})"]
        box.colour_line = len(lines) + 1
        lines.append(f"{var}.text_frame.paragraphs[0].runs[0].font.color.rgb = RGBColor{box.rgb}")
    lines.append('prs.save("deck.pptx")')
    return SlideProgram("\n".join(lines) + "\n", boxes)


def _replace_line(code: str, line: int, text: str) -> str:
    rows = code.split("\n")
    rows[line - 1] = text
    return "\n".join(rows)


def _textbox_line(box: TextBoxSpec, x: float, y: float, w: float, h: float) -> str:
    return (f"{box.name} = slide.shapes.add_textbox(Inches({x:.2f}), Inches({y:.2f}), "
            f"Inches({w:.2f}), Inches({h:.2f}))")


def inject(program: SlideProgram, kind: str, rng: random.Random) -> tuple[str, int]:
    """(mutated code, edited line) for one defect of `kind`."""
    bullets = [b for b in program.boxes if b.name.startswith("bullet")]
    if kind == "overflow":  # a narrow frame: wrapped text grows far below it
        box = rng.choice(bullets)
        return _replace_line(program.code, box.create_line, _textbox_line(box, box.x, box.y, 1.2, box.h)), box.create_line
    if kind == "overlap":  # a bullet moved onto another one
        box, other = rng.sample(bullets, 2)
        return (_replace_line(program.code, box.create_line,
                              _textbox_line(box, other.x + 0.3, other.y + 0.1, box.w, box.h)), box.create_line)
    if kind == "low_contrast":  # text colour a shade off what lies beneath
        box = rng.choice(program.boxes)
        near = tuple(int(c + (255 - c if c < 128 else -c) * 0.12) for c in box.background)
        code = _replace_line(program.code, box.colour_line,
                             f"{box.name}.text_frame.paragraphs[0].runs[0].font.color.rgb = RGBColor{near}")
        return code, box.colour_line
    if kind == "misalignment":  # one bullet 0.03 in (about 3 px) off the column
        box = rng.choice(bullets)
        return (_replace_line(program.code, box.create_line, _textbox_line(box, box.x + 0.03, box.y, box.w, box.h)),
                box.create_line)
    raise ValueError(f"unknown pptx defect kind {kind!r}; choose from {KINDS}")
