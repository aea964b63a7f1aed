"""Page and slide detectors agree with the eye (issue 15): occlusion from paint order whatever
the tree, misalignment of a visibly nudged member of a row or column (never sub-2-px jitter),
contrast against what is painted behind the glyphs, overflow on a slide blamed on the content
that pushed it, and elements hidden on purpose left alone. One browser for the module."""
from __future__ import annotations

import pytest

from envs.slide.html_slide import HtmlSlideEnv
from envs.task import Task
from envs.web.env import WebEnv

PARA = "Quarterly revenue grew in every region while costs stayed flat across the year"


@pytest.fixture(scope="module")
def web():
    env = WebEnv()
    yield env
    env.close()


@pytest.fixture(scope="module")
def slide(web):
    return HtmlSlideEnv(browser=web.browser)  # shares the browser; closed with the web env


def page(body: str, style: str = "") -> str:
    return (f"<html><head><style>body{{font:16px sans-serif;margin:20px}}{style}</style></head>"
            f"<body>\n{body}\n</body></html>\n")


def judge(env, html: str, domain: str = "web"):
    fb = env.step(Task(domain=domain, task_id="t", instruction="", width=1280, height=720), html)
    assert fb.ok, fb.error
    return fb


def found(fb, kind: str, line: int | None = None) -> list:
    return [d for d in fb.defects if d.kind == kind and (line is None or any(a <= line <= b for a, b in d.lines))]


def test_a_badge_nested_inside_a_paragraph_and_printed_over_it_is_found_and_traced(web):
    badge = ("<span style='position:absolute;width:150px;height:20px;background:#c0392b;color:#fff'>"
             "NEW</span>")
    fb = judge(web, page(f"<p style='width:600px'>\n{badge}{PARA}</p>"))
    assert found(fb, "overlap", 3), fb.defects
    plain = judge(web, page(f"<p style='width:600px'>\n<span style='background:#fde'>NEW</span> {PARA}</p>"))
    assert not found(plain, "overlap"), "an in-flow highlighted child hides nothing"


def test_an_opaque_box_hiding_text_is_found_but_a_box_behind_text_is_not(web):
    text = f"<ul><li>{PARA}</li><li>Second point of the list</li></ul>\n"
    over = ("<div style='position:absolute;left:20px;top:20px;width:700px;height:60px;"
            "background:#336'></div>")
    fb = judge(web, page(text + over))
    assert found(fb, "overlap", 3), fb.defects
    behind = over.replace("background:#336", "background:#eef;z-index:-1")
    assert not found(judge(web, page(text + behind)), "overlap")


def test_contrast_is_measured_against_the_box_behind_the_text_not_the_page(web):
    card = ("<div style='position:absolute;left:40px;top:40px;width:500px;height:60px;background:#fff'></div>"
            "\n<p style='position:relative;color:#bbb;margin:50px 30px'>{}</p>")
    dark = page(card.format(PARA), style="body{background:linear-gradient(#123,#345)}")
    fb = judge(web, dark)
    hits = found(fb, "low_contrast")
    assert hits and "1.9" in hits[0].message and "hard to read" in hits[0].message, fb.defects
    readable = judge(web, page(card.format(PARA).replace("#bbb", "#222"),
                               style="body{background:linear-gradient(#123,#345)}"))
    assert not found(readable, "low_contrast"), "dark text on its white box reads fine"


def test_low_contrast_severity_grows_with_unreadability(web):
    mild = found(judge(web, page(f"<p style='color:#777'>{PARA}</p>")), "low_contrast")
    severe = found(judge(web, page(f"<p style='color:#ddd'>{PARA}</p>")), "low_contrast")
    assert mild and severe and mild[0].severity < 0.1 < 0.5 < severe[0].severity
    assert "readable but below WCAG" in mild[0].message and "hard to read" in severe[0].message


def cards(nudge: str = "") -> str:
    style = "display:inline-block;width:200px;height:120px;margin:10px;background:#eee;vertical-align:top"
    out = [f"<div style='{style}'>card {k}</div>" for k in range(4)]
    out[2] = out[2].replace("'>", f";{nudge}'>") if nudge else out[2]
    return "<div>\n" + "\n".join(out) + "\n</div>"


def test_a_card_nudged_out_of_its_row_is_misaligned_and_traced_to_it_but_jitter_is_not(web):
    fb = judge(web, page(cards("position:relative;left:14px;top:7px")))
    hits = found(fb, "misalignment")
    assert hits and all(found(fb, "misalignment", 5) for _ in hits), fb.defects
    assert not found(judge(web, page(cards("position:relative;top:1.5px"))), "misalignment")
    assert not found(judge(web, page(cards())), "misalignment")


def test_intentional_off_screen_elements_are_not_defects(web):
    hidden = ("<a style='position:absolute;left:-9800px'>Skip to main content</a>\n"
              "<h1 style='text-indent:-9999px;width:200px;overflow:visible'>Company logo text</h1>\n"
              "<button style='color:#fff;background:#fff'>Menu icon label</button>\n"
              f"<p>{PARA}</p>")
    fb = judge(web, page(hidden))
    assert not [d for d in fb.defects if d.kind in ("overflow", "overlap", "clipped_text")], fb.defects


def test_content_pushed_off_a_slide_is_blamed_on_what_was_added(slide):
    items = "\n".join(f"<p>Point number {k} of the talk, with some words</p>" for k in range(6))
    added = "<p>" + " ".join(["An added paragraph that keeps going."] * 12) + "</p>"
    html = page(f"<div style='padding:40px;font-size:30px'>\n<h1>Title</h1>\n{added}\n{items}\n</div>")
    fb = judge(slide, html, domain="slide_html")
    hits = found(fb, "overflow")
    assert hits and any(found(fb, "overflow", 5) for _ in hits), fb.defects


def test_icons_are_judged_by_their_own_visibility_rule(web):
    def icon(colour):
        return f"<span style='font-family:\"Material Icons\";color:{colour};font-size:24px'>trending_up</span>"
    fb = judge(web, page(f"<div>{icon('#aaa')}</div>\n<div>{icon('#eee')}</div>\n<p style='color:#aaa'>{PARA}</p>"))
    icons = [d for d in found(fb, "low_contrast") if d.message.startswith("icon")]
    texts = [d for d in found(fb, "low_contrast") if d.message.startswith("text")]
    assert len(icons) == 1 and "1.1" in icons[0].message, "#aaa on white (2.3:1) is seen, #eee is not"
    assert texts and "needs 4.5:1" in texts[0].message, "the same grey as text is below WCAG"
    assert not found(fb, "overflow"), "an icon's ligature name is not text spilling out"


def test_text_inside_a_closed_details_is_not_seen(web):
    hidden = "<details><summary>Markup</summary><pre>" + "&lt;button data-switch&gt; " * 30 + "</pre></details>"
    fb = judge(web, page(f"{hidden}\n<p>{PARA}</p>\n<p>{PARA}</p>"))
    assert not [d for d in fb.defects if d.kind in ("overlap", "clipped_text", "overflow")], fb.defects


def test_a_label_layered_under_its_own_input_is_by_design(web):
    form = ("<div style='position:relative'>\n<label style='position:absolute;left:8px;top:8px'>Search the site"
            "</label>\n<input style='position:relative;width:300px;height:34px;background:#fff'></div>")
    assert not found(judge(web, page(form)), "overlap")
