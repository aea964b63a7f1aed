"""Line numbers mean the same thing in every domain: a reply is read once, its program judged,
and a defect's lines point at the program's own lines, whatever prose and fence precede it."""
import pytest

from envs.registry import make_env, spec
from envs.task import Task
from models.qwen3_vl.tokenizer import Qwen3Tokenizer
from sdpo_jax.replies import Reply

# domain -> (a program whose pale text sits on `line`, line)
FAINT = {
    "chart": ("import matplotlib.pyplot as plt\n"
              "fig, ax = plt.subplots(figsize=(4, 3))\n"
              "ax.bar(['north', 'south'], [3, 4])\n"
              "ax.set_title('Faint title here', color='#f4f4f4')\n"
              "plt.savefig('out.png')\n", 4),
    "web": ("<html><body style=\"background:#ffffff; font-family:sans-serif\">\n"
            "<h1>Quarterly sales</h1>\n"
            "<p style=\"color:#f2f2f2; font-size:18px\">Faint words nobody can read</p>\n"
            "</body></html>\n", 3),
    "slide_html": ("<html><body style=\"margin:0; background:#ffffff\">\n"
                   "<h1 style=\"margin:60px\">Quarterly sales</h1>\n"
                   "<p style=\"margin:60px; color:#f2f2f2; font-size:32px\">Faint words</p>\n"
                   "</body></html>\n", 3),
    "slide_pptx": ("from pptx import Presentation\n"
                   "from pptx.util import Inches, Pt\n"
                   "from pptx.dml.color import RGBColor\n"
                   "prs = Presentation()\n"
                   "prs.slide_width, prs.slide_height = Inches(13.333), Inches(7.5)\n"
                   "slide = prs.slides.add_slide(prs.slide_layouts[6])\n"
                   "box = slide.shapes.add_textbox(Inches(1), Inches(1), Inches(8), Inches(1.5))\n"
                   "box.text_frame.text = 'Faint words nobody can read'\n"
                   "box.text_frame.paragraphs[0].runs[0].font.size = Pt(32)\n"
                   "box.text_frame.paragraphs[0].runs[0].font.color.rgb = RGBColor(242, 242, 242)\n"
                   "prs.save('output.pptx')\n", 10),
}


@pytest.mark.parametrize("domain", sorted(FAINT))
def test_a_defect_is_reported_on_the_programs_own_line_in_every_domain(domain):
    program, line = FAINT[domain]
    language = spec(domain).language
    text = f"Sure, here it is.\nIt keeps the layout simple.\n\n```{language}\n{program}```\nDone."
    tokenizer = Qwen3Tokenizer.load()
    reply = Reply.read(tokenizer, tokenizer.encode(text), 0, language)
    assert reply.program.code == program
    canvas = spec(domain)
    env = make_env(domain)
    try:
        feedback = env.step(Task(domain=domain, task_id=domain, instruction="",
                                 width=canvas.width, height=canvas.height, dpi=canvas.dpi),
                            reply.program.code)
    finally:
        env.close()
    assert feedback.ok, feedback.error
    faint = [d for d in feedback.defects if d.kind == "low_contrast"]
    assert faint, f"{domain}: the pale text must be found; got {[d.kind for d in feedback.defects]}"
    assert any(a <= line <= b for d in faint for a, b in d.lines), \
        f"{domain}: low contrast must name program line {line}; got {[d.lines for d in faint]}"
    on_line = "".join(reply.text[a:b] for (a, b), n in zip(reply.token_spans, reply.token_lines)
                      if n == line)
    assert on_line.strip() == program.splitlines()[line - 1].strip(), \
        "the reply's tokens on that line are the program's line"
