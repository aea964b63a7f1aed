"""Defects planted the way a person breaks a python-pptx slide (issue 15), written apart from the
project's own pptx injections (`envs.eval.pptx_samples.inject`, which rewrites one existing
`add_textbox` or colour line). Here every recipe *adds* statements after the last top-level
statement that built the target shape, reaching the shape through the variable its creation
statement assigned, so any python-pptx program whose shapes are assigned to names can be
planted, and a detection is traced when its lines hold one of the added statements:

* nested_occluder (overlap): the text box is moved into a new group shape and a red "NEW" badge
  is added inside that group, over the first line of its text;
* opaque_box (overlap): a dark filled rectangle, no text, added over the whole text frame;
* grid_nudge (misalignment): one shape of a row or column of look-alike peers (one kind, one
  width in a column, one height in a row, one shared edge; grouped as `envs.geometry` groups
  them for the detectors, as the HTML recipe takes the page detector's groups) moved 14 px right
  and 7 px down, in EMU at the render's scale (`envs.slide.office.DPI`);
* pale_on_box (low_contrast): a gradient panel or a gradient picture laid just behind the text
  box (12 px larger), and the text #c4c4c4 (as the HTML and chart recipes) on its own white (or
  #f2f2f2) filled box;
* content_added (overflow or clipped text): paragraphs appended to the text frame, enough at
  the default 18 pt and the frame's width to run past the bottom of the slide.

Targets come from the clean run's `Feedback.elements` (shape boxes, text, traced lines), never
from the detectors. Never imports jax.
"""
from __future__ import annotations

import ast
import dataclasses
import random

from envs import geometry
from envs.eval.person_recipes import HTML_KINDS
from envs.feedback import Feedback
from envs.slide.deck import EMU_PER_INCH
from envs.slide.office import DPI
from envs.slide.pptx_trace import CREATORS

EMU_PER_PX = EMU_PER_INCH / DPI  # the render's scale: 9525 EMU a pixel at 96 dpi
KINDS = HTML_KINDS  # the same classes, described by the same defect kinds
RECIPES = tuple(HTML_KINDS)


@dataclasses.dataclass(frozen=True)
class Target:
    """A shape of the clean render the program reaches through `var` until line `after`."""

    element: int            # index into Feedback.elements
    var: str                # the name its creation statement assigned
    after: int              # last line of the last top-level statement that built it
    box: tuple[float, float, float, float]  # px, in its slide's frame
    kind: str
    text: str
    slide: int


@dataclasses.dataclass(frozen=True)
class Planted:
    recipe: str
    kinds: tuple[str, ...]
    code: str
    lines: tuple[int, ...]  # the added lines
    element: int


def _created_name(node: ast.stmt) -> str | None:
    """`name = <...>.add_textbox(...)` (any creator) or `name = <...>.placeholders[k]` /
    `<...>.shapes.title`: the name, else None."""
    if not (isinstance(node, ast.Assign) and len(node.targets) == 1 and isinstance(node.targets[0], ast.Name)):
        return None
    value = node.value
    if isinstance(value, ast.Call) and isinstance(value.func, ast.Attribute) and value.func.attr in CREATORS:
        return node.targets[0].id
    if isinstance(value, ast.Subscript) and isinstance(value.value, ast.Attribute) \
            and value.value.attr == "placeholders":
        return node.targets[0].id
    if isinstance(value, ast.Attribute) and value.attr == "title":
        return node.targets[0].id
    return None


def _assigns(node: ast.stmt, name: str) -> bool:
    return any(isinstance(n, ast.Name) and n.id == name and isinstance(n.ctx, ast.Store) for n in ast.walk(node))


def _saves(node: ast.stmt) -> bool:
    return any(isinstance(n, ast.Call) and isinstance(n.func, ast.Attribute) and n.func.attr == "save"
               for n in ast.walk(node))


def targets(code: str, feedback: Feedback) -> list[Target]:
    """Shapes of the clean render a recipe can reach: each traced to a top-level statement that
    assigned it to a name (placeholders: the assignment whose name the traced edits use), the
    name not bound again before the insertion point, which comes before the first save."""
    body = ast.parse(code).body
    top = {n: node for node in body for n in range(node.lineno, (node.end_lineno or node.lineno) + 1)}
    save_at = min((node.lineno for node in body if _saves(node)), default=10**9)
    width, height = feedback.render_size or (0, 0)
    pages = 1 + max((e.attrs.get("slide", 0) for e in feedback.elements), default=0)
    height /= pages
    creations: dict[int, int] = {}  # creation line -> number of shapes traced to it (loops)
    for e in feedback.elements:
        for a, _ in e.lines:
            creations[a] = creations.get(a, 0) + 1
    out = []
    for k, e in enumerate(feedback.elements):
        nodes = {id(top[a]): top[a] for a, _ in e.lines if a in top}
        named = [(node, _created_name(node)) for node in nodes.values()]
        named = [(node, name) for node, name in named if name and creations.get(node.lineno) == 1]
        if not named:  # a placeholder: created by add_slide, named by an assignment the edits use
            used = {n.id for node in nodes.values() for n in ast.walk(node) if isinstance(n, ast.Name)}
            named = [(node, _created_name(node)) for node in body if not isinstance(node.value if
                     isinstance(node, ast.Assign) else None, ast.Call) and _created_name(node) in used]
        if len(named) != 1:
            continue
        node, var = named[0]
        after = max(top[b].end_lineno or b for _, b in e.lines if b in top)
        if after >= save_at or any(_assigns(n, var) for n in body if node.lineno < n.lineno <= after):
            continue
        slide = int(e.attrs.get("slide", 0))
        x0, y0, x1, y1 = e.region
        box = (x0, y0 - slide * height, x1, y1 - slide * height)
        if box[0] < 0 or box[1] < 0 or box[2] > width or box[3] > height:
            continue
        out.append(Target(k, var, after, box, e.kind, (e.text or "").strip(), slide))
    return out


def _insert(code: str, after: int, statements: list[str]) -> tuple[str, tuple[int, ...]]:
    rows = code.split("\n")
    rows[after:after] = statements
    return "\n".join(rows), tuple(range(after + 1, after + 1 + len(statements)))


def _emu(px: float) -> int:
    return int(round(px * EMU_PER_PX))


_SLIDE = "_slide = {v}.part.slide"
_IMPORTS = ("from pptx.util import Emu, Pt", "from pptx.dml.color import RGBColor",
            "from pptx.enum.shapes import MSO_SHAPE")


def nested_occluder(t: Target, rng: random.Random, canvas) -> list[str]:
    w = min(240.0, max(70.0, 0.4 * (t.box[2] - t.box[0])))
    h = min(30.0, t.box[3] - t.box[1])
    v = t.var  # a placeholder's frame is inherited: pinned first, or grouping cannot place it
    return [*_IMPORTS, _SLIDE.format(v=v), f"{v}.left, {v}.top, {v}.width, {v}.height = "
            f"{v}.left, {v}.top, {v}.width, {v}.height",
            f"_group = _slide.shapes.add_group_shape([{t.var}])",
            f"_badge = _group.shapes.add_shape(MSO_SHAPE.ROUNDED_RECTANGLE, {t.var}.left + Emu({_emu(10)}), "
            f"{t.var}.top + Emu({_emu(5)}), Emu({_emu(w)}), Emu({_emu(h)}))",
            "_badge.fill.solid()", "_badge.fill.fore_color.rgb = RGBColor(0xE7, 0x4C, 0x3C)",
            "_badge.line.fill.background()", "_badge.text_frame.text = 'NEW'",
            "_badge.text_frame.paragraphs[0].runs[0].font.size = Pt(12)",
            "_badge.text_frame.paragraphs[0].runs[0].font.bold = True"]


def opaque_box(t: Target, rng: random.Random, canvas) -> list[str]:
    return [*_IMPORTS, _SLIDE.format(v=t.var),
            f"_cover = _slide.shapes.add_shape(MSO_SHAPE.RECTANGLE, {t.var}.left - Emu({_emu(4)}), "
            f"{t.var}.top - Emu({_emu(2)}), {t.var}.width + Emu({_emu(8)}), {t.var}.height + Emu({_emu(4)}))",
            "_cover.fill.solid()", "_cover.fill.fore_color.rgb = RGBColor(0x2C, 0x3E, 0x50)",
            "_cover.line.fill.background()"]


def grid_nudge(t: Target, rng: random.Random, canvas) -> list[str]:
    return ["from pptx.util import Emu", f"{t.var}.left = {t.var}.left + Emu({_emu(14)})",
            f"{t.var}.top = {t.var}.top + Emu({_emu(7)})"]


def pale_on_box(t: Target, rng: random.Random, canvas) -> list[str]:
    """The text's backdrop becomes a gradient panel or a gradient picture 12 px larger than its
    frame, laid just behind it; the text box itself white (or #f2f2f2) with #c4c4c4 text."""
    box = rng.choice(("0xFF, 0xFF, 0xFF", "0xF2, 0xF2, 0xF2"))
    at = (f"{t.var}.left - Emu({_emu(12)}), {t.var}.top - Emu({_emu(12)}), "
          f"{t.var}.width + Emu({_emu(24)}), {t.var}.height + Emu({_emu(24)})")
    if rng.random() < 0.5:
        backdrop = [f"_panel = _slide.shapes.add_shape(MSO_SHAPE.RECTANGLE, {at})",
                    "_panel.fill.gradient()", "_panel.fill.gradient_angle = 45",
                    "_panel.fill.gradient_stops[0].color.rgb = RGBColor(0x1E, 0x3C, 0x72)",
                    "_panel.fill.gradient_stops[1].color.rgb = RGBColor(0x7A, 0x2A, 0x52)",
                    "_panel.line.fill.background()"]
    else:  # a picture fill: a gradient image
        backdrop = ["import io", "from PIL import Image",
                    "_ramp = Image.linear_gradient('L').resize((320, 120))",
                    "_img = Image.merge('RGB', (_ramp, Image.new('L', (320, 120), 60), "
                    "_ramp.transpose(Image.Transpose.FLIP_LEFT_RIGHT)))",
                    "_buf = io.BytesIO()", "_img.save(_buf, 'PNG')",
                    f"_panel = _slide.shapes.add_picture(_buf, {at})"]
    return [*_IMPORTS, _SLIDE.format(v=t.var), *backdrop, f"{t.var}._element.addprevious(_panel._element)",
            f"{t.var}.fill.solid()", f"{t.var}.fill.fore_color.rgb = RGBColor({box})",
            f"for _para in {t.var}.text_frame.paragraphs:",
            "    for _run in _para.runs:",
            "        _run.font.color.rgb = RGBColor(0xC4, 0xC4, 0xC4)"]


def content_added(t: Target, rng: random.Random, canvas) -> list[str]:
    """Paragraphs at the default 18 pt (24 px), enough at the frame's width to fill what is left
    of the slide below the frame and 20 lines more."""
    size = 18 * DPI / 72
    lines = (canvas[1] - t.box[3]) / (1.2 * size) + 20
    sentence = "This paragraph was added to make one more point about the same topic."
    per_line = max(1.0, (t.box[2] - t.box[0]) / (0.5 * size))
    count = max(4, int(lines / max(1.0, len(sentence) / per_line)) + 1)
    return [f"for _ in range({count}):", f"    {t.var}.text_frame.add_paragraph().text = {sentence!r}"]


_MAKERS = {"nested_occluder": nested_occluder, "opaque_box": opaque_box, "grid_nudge": grid_nudge,
           "pale_on_box": pale_on_box, "content_added": content_added}


def _peers(found: list[Target]) -> list[Target]:
    """Members of a row or column of at least two look-alike shapes of one kind, grouped as the
    detectors group peers (`envs.geometry.alignment_bands`, `laid_out_as`), on one line."""
    out: dict[int, Target] = {}
    for kind in {t.kind for t in found}:
        members = {t.element: t for t in found if t.kind == kind}
        boxes = {k: t.box for k, t in members.items()}
        for axis in (0, 1):
            for group in geometry.alignment_bands(boxes, list(members), axis):
                if len(group) >= 2 and geometry.laid_out_as(boxes, group, axis) \
                        and geometry.shared_line({k: boxes[k][axis] for k in group}) is None:
                    out.update((k, members[k]) for k in group if boxes[k][axis + 2] - boxes[k][axis] >= 20)
    return [out[k] for k in sorted(out)]


def plant(code: str, clean: Feedback, recipe: str, rng: random.Random) -> Planted | None:
    """One `recipe` planted on a random suitable shape of the clean run, or None. Text recipes
    want a text of at least 8 characters; a target already inside a clean defect of the class's
    kinds is skipped (planting there shows nothing new)."""
    kinds = KINDS[recipe]
    shown = [d.region for d in clean.defects if d.kind in kinds]
    found = targets(code, clean)
    if recipe == "grid_nudge":
        found = _peers(found)
    else:
        found = [t for t in found if len(t.text) >= 8]
    found = [t for t in found if not any(geometry.intersection_area(clean.elements[t.element].region, r) > 0
                                         for r in shown)]
    if not found:
        return None
    t = rng.choice(found)
    width, height = clean.render_size
    pages = 1 + max((e.attrs.get("slide", 0) for e in clean.elements), default=0)
    new, lines = _insert(code, t.after, _MAKERS[recipe](t, rng, (width, height / pages)))
    return Planted(recipe, kinds, new, lines, t.element)
