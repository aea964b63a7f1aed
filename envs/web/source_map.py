"""Map DOM elements and CSS rules of a page back to the source lines the model wrote.

Elements: the original source is tokenised with a position-tracking parser and ` data-vs="N"` is
inserted textually right after each start tag's name (descending offsets, so earlier offsets stay
valid). The page is never re-serialised: lines and markup stay exactly as written, and the
browser's DOM carries N, which the side table maps to line spans. Browser-invented elements
(implied html/head/body/tbody) carry no id; callers use the nearest tagged ancestor. Page
scripts can rewrite the attribute, so the judge checks the rendered tags against this table
(`SourceMap.forged_tags`) before it believes them.

CSS: `<style>` blocks are split into rules with their line spans (and the enclosing @media
condition), so a defect on an element can be credited to the rules that styled it; inline
`style=""` belongs to the element's start tag.

This module is pure text processing: it never launches a browser and never imports jax.
"""
from __future__ import annotations

import bisect
import dataclasses
import html.parser
import re

SOURCE_ATTR = "data-vs"

# Elements whose content the browser reads as raw text: tags inside them are not tags.
_RAW_TEXT = ("script", "style", "title", "textarea", "xmp", "iframe", "noembed", "noframes",
             "noscript", "plaintext")
# formatting elements the HTML parser re-creates with the same attributes (adoption agency)
_CLONED_BY_PARSER = frozenset("a b big code em font i nobr s small strike strong tt u".split())
_VOID = frozenset("area base br col embed hr img input link meta param source track wbr".split())


@dataclasses.dataclass(frozen=True)
class SourceElement:
    """One start tag in the source: its tag, the lines of the start tag and of the whole element."""

    tag: str
    tag_lines: tuple[int, int]
    element_lines: tuple[int, int]


@dataclasses.dataclass(frozen=True)
class CssRule:
    """A style rule from a `<style>` block: selector list, line span, declared property names."""

    selector: str
    lines: tuple[int, int]
    properties: tuple[str, ...]
    media: str | None = None


@dataclasses.dataclass(frozen=True)
class SourceMap:
    """The tagged page plus the side tables that turn `data-vs` ids and rules into line spans."""

    tagged_html: str
    elements: tuple[SourceElement, ...]
    css_rules: tuple[CssRule, ...]

    def forged_tags(self, records: list[dict]) -> list[str]:
        """Why the `data-vs` tags on the rendered elements cannot be the ones the server wrote
        (empty when they can): an id out of range, on an element of another tag, or on more
        than one element of a tag the HTML parser never clones (it does clone formatting
        elements such as <b> or <a> when they are misnested)."""
        problems, seen = [], set()
        for rec in records:
            if not rec.get("own"):
                continue
            sid = rec.get("sid")
            if not isinstance(sid, int) or not 0 <= sid < len(self.elements):
                problems.append(f"<{rec.get('tag')}> carries source id {sid!r}, which the page "
                                "never had")
            elif self.elements[sid].tag != rec.get("tag"):
                problems.append(f"<{rec.get('tag')}> carries the source id of a "
                                f"<{self.elements[sid].tag}>")
            elif sid in seen and rec.get("tag") not in _CLONED_BY_PARSER:
                problems.append(f"two <{rec.get('tag')}> elements carry source id {sid}")
            seen.add(sid)
        return problems

    def lines_of(self, source_id: int | None) -> tuple[int, int] | None:
        if source_id is None or not 0 <= source_id < len(self.elements):
            return None
        return self.elements[source_id].tag_lines


class _TagLocator(html.parser.HTMLParser):
    """Collects (offset after tag name, tag, start line, end line of start tag) for each start tag."""

    def __init__(self, line_starts: list[int]):
        super().__init__(convert_charrefs=True)
        self._line_starts = line_starts
        self.starts: list[tuple[int, str, int, int]] = []  # (insert offset, tag, line0, line1)
        self.ends: list[int | None] = []
        self._open: list[int] = []  # indices into starts of elements still open
        self.style_blocks: list[tuple[int, str]] = []  # (first line of css text, css text)
        self._in_style_since: int | None = None

    def _offset(self) -> int:
        line, col = self.getpos()
        return self._line_starts[line - 1] + col

    def handle_starttag(self, tag, attrs):
        raw = self.get_starttag_text() or ""
        line0 = self.getpos()[0]
        line1 = line0 + raw.count("\n")
        name_len = len(re.match(r"<\s*([^\s/>]+)", raw).group(1)) if re.match(r"<\s*[^\s/>]", raw) else len(tag)
        self.starts.append((self._offset() + 1 + name_len, tag, line0, line1))
        self.ends.append(None)
        if tag in _RAW_TEXT:
            self.set_cdata_mode(tag)
            if tag == "style":
                self._in_style_since = line1
        if tag not in _VOID and not raw.rstrip().endswith("/>"):
            self._open.append(len(self.starts) - 1)
        else:
            self.ends[-1] = line1

    def handle_startendtag(self, tag, attrs):
        self.handle_starttag(tag, attrs)
        if self._open and self.starts[self._open[-1]][1] == tag and self.ends[self._open[-1]] is None:
            self.ends[self._open.pop()] = self.starts[-1][3]

    def handle_data(self, data):
        if self._in_style_since is not None:
            self.style_blocks.append((self.getpos()[0], data))

    def handle_endtag(self, tag):
        self._in_style_since = None
        line = self.getpos()[0]
        for depth in range(len(self._open) - 1, -1, -1):
            if self.starts[self._open[depth]][1] == tag:
                for idx in self._open[depth:]:
                    self.ends[idx] = line
                del self._open[depth:]
                return


def build_source_map(source: str) -> SourceMap:
    """Tag every start tag of `source` with its id and collect element and CSS line spans."""
    line_starts = [0] + [m.end() for m in re.finditer("\n", source)]
    locator = _TagLocator(line_starts)
    locator.feed(source)
    locator.close()
    last_line = len(line_starts)
    elements = []
    for (offset, tag, line0, line1), end in zip(locator.starts, locator.ends):
        elements.append(SourceElement(tag=tag, tag_lines=(line0, line1),
                                      element_lines=(line0, max(line1, end or last_line))))
    pieces = []
    cursor = len(source)
    for source_id in range(len(locator.starts) - 1, -1, -1):
        offset = locator.starts[source_id][0]
        pieces.append(source[offset:cursor])
        pieces.append(f' {SOURCE_ATTR}="{source_id}"')
        cursor = offset
    pieces.append(source[:cursor])
    rules = tuple(r for first, css in locator.style_blocks for r in parse_css_rules(css, first))
    return SourceMap(tagged_html="".join(reversed(pieces)), elements=tuple(elements), css_rules=rules)


_COMMENT = re.compile(r"/\*.*?\*/", re.S)


def parse_css_rules(css: str, first_line: int = 1) -> list[CssRule]:
    """Split a stylesheet into style rules with 1-based line spans (offset by first_line - 1).

    A tolerant brace matcher, not a validating parser: comments are blanked (keeping newlines),
    @media/@supports blocks are entered (their condition kept), other at-rules are skipped.
    """
    text = _COMMENT.sub(lambda m: re.sub(r"[^\n]", " ", m.group(0)), css)
    rules: list[CssRule] = []
    newlines = [m.start() for m in re.finditer("\n", text)]

    def line_at(pos: int) -> int:
        return first_line + bisect.bisect_left(newlines, pos)

    def walk(start: int, stop: int, media: str | None) -> None:
        pos = start
        while pos < stop:
            brace = text.find("{", pos, stop)
            if brace < 0:
                return
            prelude_start = pos + len(text[pos:brace]) - len(text[pos:brace].lstrip())
            prelude = text[pos:brace].strip()
            close = _matching_brace(text, brace, stop)
            if prelude.startswith("@"):
                if prelude.startswith(("@media", "@supports", "@layer")):
                    inner_media = prelude[6:].strip() if prelude.startswith("@media") else media
                    walk(brace + 1, close, inner_media or media)
            elif prelude:
                body = text[brace + 1:close]
                props = tuple(p.split(":", 1)[0].strip().lower() for p in body.split(";") if ":" in p)
                rules.append(CssRule(selector=" ".join(prelude.split()),
                                     lines=(line_at(prelude_start), line_at(close)),
                                     properties=props, media=media))
            pos = close + 1

    walk(0, len(text), None)
    return rules


def _matching_brace(text: str, open_pos: int, stop: int) -> int:
    depth = 0
    for pos in range(open_pos, stop):
        ch = text[pos]
        if ch == "{":
            depth += 1
        elif ch == "}":
            depth -= 1
            if depth == 0:
                return pos
    return stop

