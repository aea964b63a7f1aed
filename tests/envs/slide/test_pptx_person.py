"""Issue 15 on python-pptx slides: the detector fixes the person-written recipes
(`envs.eval.pptx_person`) showed, each on a small program through the real sandbox and
LibreOffice, and the recipes themselves on a few seeded programs."""
import random

import pytest

from envs.eval import pptx_person, pptx_samples
from envs.eval.injection import evaluate_planted_pptx, format_table, new_defects
from envs.slide.pptx_env import PptxSlideEnv
from envs.task import Task

HEAD = ("from pptx import Presentation\nfrom pptx.util import Inches, Pt, Emu\n"
        "from pptx.dml.color import RGBColor\nfrom pptx.enum.shapes import MSO_SHAPE\n"
        "prs = Presentation()\nprs.slide_width = Inches(13.333)\nprs.slide_height = Inches(7.5)\n"
        "slide = prs.slides.add_slide(prs.slide_layouts[6])\n"
        "body = slide.shapes.add_textbox(Inches(1), Inches(2), Inches(5), Inches(0.8))\n"
        "body.text_frame.text = 'Revenue grew twelve percent'\n"
        "body.text_frame.paragraphs[0].runs[0].font.size = Pt(22)\n")


@pytest.fixture(scope="module")
def env():
    slide_env = PptxSlideEnv()
    yield slide_env
    slide_env.close()


def step(env, code):
    fb = env.step(Task(domain="slide_pptx", task_id="p", instruction="", width=1280, height=720), code)
    assert fb.ok, fb.error
    return fb


def line_of(code, text):
    return next(n for n, row in enumerate(code.split("\n"), 1) if text in row)


@pytest.mark.parametrize("alpha", [None, 40_000])
def test_a_filled_box_painted_over_a_text_hides_it_unless_see_through(env, alpha):
    """The card exemption (a filled, text-less shape holding another is its backdrop) holds
    only for a shape painted first, or one the text shows through."""
    code = HEAD + ("cover = slide.shapes.add_shape(MSO_SHAPE.RECTANGLE, Inches(0.9), Inches(1.9), "
                   "Inches(5.2), Inches(1.0))\ncover.fill.solid()\n"
                   "cover.fill.fore_color.rgb = RGBColor(0x2C, 0x3E, 0x50)\n")
    if alpha is not None:  # python-pptx has no API for a fill's alpha: set it in the XML
        code += ("from lxml import etree\nclr = cover.fill._xPr.find('.//{*}srgbClr')\n"
                 f"etree.SubElement(clr, '{{http://schemas.openxmlformats.org/drawingml/2006/main}}alpha')"
                 f".set('val', '{alpha}')\n")
    code += "prs.save('deck.pptx')\n"
    overlap = [d for d in step(env, code).defects if d.kind == "overlap"]
    if alpha is not None:
        assert not overlap, [d.message for d in overlap]
        return
    assert overlap, "an opaque box painted over the text is not reported"
    assert any(a <= line_of(code, "cover = ") <= b for d in overlap for a, b in d.lines)
    behind = HEAD.replace("body = ", "card = slide.shapes.add_shape(MSO_SHAPE.RECTANGLE, Inches(0.9), "
                          "Inches(1.9), Inches(5.2), Inches(1.0))\ncard.fill.solid()\nbody = ")
    assert not step(env, behind + "prs.save('deck.pptx')\n").defects, "a card painted first is a backdrop"


def test_a_shape_nudged_off_its_column_of_peers_is_misaligned(env):
    rows = [f"b{k} = slide.shapes.add_textbox(Inches(1), Inches({2 + k}), Inches(5), Inches(0.8))\n"
            f"b{k}.text_frame.text = 'Point number {k} of the list'\n" for k in range(3)]
    clean = HEAD.split("body = ")[0] + "".join(rows)
    assert not step(env, clean + "prs.save('deck.pptx')\n").defects
    nudged = clean + "b1.left = b1.left + Emu(14 * 9525)\nb1.top = b1.top + Emu(7 * 9525)\nprs.save('deck.pptx')\n"
    found = [d for d in step(env, nudged).defects if d.kind == "misalignment"]
    assert found and "14px right of the column of 3" in found[0].message, [d.message for d in found]
    assert any(a <= line_of(nudged, "b1.left") <= b for d in found for a, b in d.lines)


def test_letters_of_a_line_cut_at_the_slide_edge_go_to_the_frame_that_grew(env):
    """A frame whose text runs past the slide's bottom leaves single-letter spans there (the
    ascenders of a line cut at the edge); they belong to it, not to the frame below it in the
    same column whose text also holds those letters."""
    program = pptx_samples.clean_program(14)
    label = next(b for b in program.boxes if b.name == "label1")
    rows = program.code.split("\n")
    rows[label.colour_line:label.colour_line] = [
        "for _ in range(18):",
        "    label1.text_frame.add_paragraph().text = 'This paragraph was added to make one more point "
        "about the same topic.'"]
    code = "\n".join(rows)
    overflow = [d for d in step(env, code).defects if d.kind == "overflow"]
    assert overflow, "the text run off the slide is not reported"
    added = label.colour_line + 2
    assert all(any(a <= added <= b for a, b in d.lines) for d in overflow), [d.message for d in overflow]


def test_recipes_reach_placeholders_and_cover_them(env):
    """A layout's placeholders (created by add_slide, named by an assignment) are targets too:
    a box over the body placeholder and a badge grouped with it are found and traced."""
    code = ("from pptx import Presentation\nprs = Presentation()\n"
            "slide = prs.slides.add_slide(prs.slide_layouts[1])\n"
            "title = slide.shapes.title\ntitle.text = 'Quarterly results for the board'\n"
            "body = slide.placeholders[1]\nbody.text_frame.text = 'Revenue grew twelve percent this year'\n"
            "prs.save('deck.pptx')\n")
    clean = step(env, code)
    assert {t.var for t in pptx_person.targets(code, clean)} == {"title", "body"}
    for recipe in ("nested_occluder", "opaque_box"):
        planted = pptx_person.plant(code, clean, recipe, random.Random(0))
        found = new_defects(clean.defects, step(env, planted.code).defects, planted.kinds)
        assert found and any(a <= n <= b for d in found for a, b in d.lines for n in planted.lines), recipe


@pytest.mark.slow
def test_person_recipes_on_seeded_programs_are_found_and_traced(env):
    """Every recipe on 4 seeded programs (the data folder holds no python-pptx programs):
    valid injections only. Pale text at 22-40 pt on a white box is only an advisory note by
    the hard-to-read rule (#c4c4c4 on white: 1.74:1, APCA Lc 31.8 >= 30 for large text), so
    pale_on_box must be found as a defect or as a note."""
    rows = [{"id": str(n), "code": pptx_samples.clean_program(n).code} for n in range(4)]
    stats = evaluate_planted_pptx(rows, lambda code: env.step(
        Task(domain="slide_pptx", task_id="p", instruction="", width=1280, height=720), code),
        pptx_person.RECIPES, progress=False)
    print(format_table(stats, pptx_person.RECIPES))
    assert stats.clean_items == 4 and not stats.clean_with_kind
    for recipe, row in stats.table(pptx_person.RECIPES).items():
        assert row["injected"] == 4, (recipe, row)
        seen = row["recall"] + (row["advisory_only"] / 4 if recipe == "pale_on_box" else 0)
        assert seen == 1.0 and row["trace_rate"] >= 0.9, (recipe, row, stats.misses)
