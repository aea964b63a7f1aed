"""Source tagging keeps the page byte-for-byte (minus the ids) and maps ids and rules to lines."""
import re

from hypothesis import given, settings, strategies as st

from envs.color import ciede2000, ciede2000_lab, contrast_ratio, required_contrast
from envs.web.source_map import SOURCE_ATTR, build_source_map, parse_css_rules

PAGE = """<!DOCTYPE html>
<html><head><style>
p { color: red; }
@media (max-width: 600px) {
  .a, .b { margin: 0;
    padding: 1px }
}
</style><title>a <b> c</title></head>
<body><p class="x"
  id=y>hi<br>there
<img src=rick.jpg></p></body></html>"""


def strip_ids(html: str) -> str:
    return re.sub(rf' {SOURCE_ATTR}="\d+"', "", html)


def test_tagging_inserts_ids_after_tag_names_without_reserialising():
    sm = build_source_map(PAGE)
    assert strip_ids(sm.tagged_html) == PAGE, "tagging must only insert attributes"
    assert sm.tagged_html.count("\n") == PAGE.count("\n"), "tagging must not move lines"
    tags = [e.tag for e in sm.elements]
    assert tags == ["html", "head", "style", "title", "body", "p", "br", "img"], (
        f"'<b>' inside <title> is text, not a tag; got {tags}")
    p = sm.elements[tags.index("p")]
    assert p.tag_lines == (9, 10), "a start tag spanning two lines covers both"
    assert '<p data-vs="5" class="x"' in sm.tagged_html


def test_css_rules_keep_lines_and_media():
    sm = build_source_map(PAGE)
    assert [(r.selector, r.lines, r.media) for r in sm.css_rules] == [
        ("p", (3, 3), None), (".a, .b", (5, 6), "(max-width: 600px)")]
    assert sm.css_rules[1].properties == ("margin", "padding")


def test_css_comments_and_unknown_at_rules_do_not_shift_lines():
    css = "/* a\ncomment */\n@font-face { font-family: x; }\nh1 {\n color: blue }\n"
    assert [(r.selector, r.lines) for r in parse_css_rules(css, first_line=10)] == [("h1", (13, 14))]


@settings(max_examples=60, deadline=None)
@given(st.lists(st.sampled_from(["<div>", "</div>", "<p class='a'>", "text", "\n", "<br/>", "<img src=x>",
                                 "<!-- c -->", "<style>p{}</style>", "<span\n id=q>", "</span>", "&amp;",
                                 "<script>if (a<b) {}</script>", "<textarea><b></textarea>"]), max_size=30))
def test_tagging_round_trips_any_markup(parts):
    page = "".join(parts)
    sm = build_source_map(page)
    assert strip_ids(sm.tagged_html) == page
    assert len(sm.elements) == sm.tagged_html.count(f' {SOURCE_ATTR}="')
    for element in sm.elements:
        assert 1 <= element.tag_lines[0] <= element.tag_lines[1] <= page.count("\n") + 1


def test_wcag_and_ciede2000_reference_values():
    assert round(contrast_ratio((0, 0, 0), (255, 255, 255)), 2) == 21.0
    assert round(contrast_ratio((118, 118, 118), (255, 255, 255)), 2) == 4.54
    assert required_contrast(16, bold=False) == 4.5
    assert required_contrast(24, bold=False) == 3.0 and required_contrast(18.67, bold=True) == 3.0
    # Sharma, Wu & Dalal (2005) CIEDE2000 test pairs 1, 7 and 17.
    for lab1, lab2, expected in [((50.0, 2.6772, -79.7751), (50.0, 0.0, -82.7485), 2.0425),
                                 ((50.0, 0.0, 0.0), (50.0, -1.0, 2.0), 2.3669),
                                 ((50.0, 2.5, 0.0), (73.0, 25.0, -18.0), 27.1492)]:
        assert abs(ciede2000_lab(lab1, lab2) - expected) < 1e-4, (lab1, lab2)
    assert ciede2000((10, 20, 30), (10, 20, 30)) == 0.0
