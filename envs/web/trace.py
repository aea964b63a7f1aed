"""Trace web findings to source line spans: start tags and the CSS that caused the defect.

A finding names element records (from extract.js); each record carries the `data-vs` id of its
nearest tagged element, i.e. the start tag the model wrote. In the live page we then ask, per
element: which `<style>` rules match it (Element.matches, @media via matchMedia) and declare a
property relevant to the defect kind; and for inherited properties (colour, font size...) not
set on the element itself, which ancestor sets them (inline style or a matching rule) -- a
`color` on <body> is what makes every paragraph unreadable. Later rules win the cascade, so the
last few matching rules are kept.

Runs in the page only to read; never imports jax.
"""
from __future__ import annotations

from typing import Any

from envs.finding import Finding
from envs.web.detectors import PageLayout
from envs.web.source_map import SourceMap

LineSpan = tuple[int, int]

# CSS properties (prefixes) that can cause each defect kind.
RELEVANT_PROPERTIES = {
    "low_contrast": ("color", "background", "opacity", "filter", "mix-blend-mode"),
    "clipped_text": ("width", "height", "max-", "min-", "overflow", "font", "line-height", "white-space",
                     "padding", "text-overflow", "letter-spacing", "word-", "-webkit-line-clamp", "flex"),
    "overflow": ("width", "height", "max-", "min-", "font", "white-space", "padding", "margin", "position",
                 "left", "right", "top", "bottom", "transform", "letter-spacing", "word-", "flex", "display"),
    "overlap": ("position", "left", "right", "top", "bottom", "margin", "transform", "float", "line-height",
                "height", "width", "z-index", "display", "font", "inset", "grid", "flex"),
    "misalignment": ("margin", "padding", "left", "right", "top", "bottom", "position", "transform",
                     "width", "height", "border", "text-align", "vertical-align", "align", "justify",
                     "flex", "grid", "line-height", "font"),
}
INHERITED = ("color", "font", "line-height", "white-space", "letter-spacing", "word-", "text-align")
MAX_RULES_PER_ELEMENT = 4

_TRACE_JS = """
([items, rules, attr]) => items.map(([index, relevant, inherited]) => {
  const startsWith = (prop, prefixes) => prefixes.some((p) => prop.startsWith(p));
  const cache = window.__sdpoRuleCache || (window.__sdpoRuleCache = new Map());
  const candidates = (prefixes) => {  // rules declaring any of these properties, computed once
    const key = prefixes.join('|');
    if (!cache.has(key)) {
      cache.set(key, rules.map((r, k) => k).filter((k) => rules[k][2].some((p) => startsWith(p, prefixes))
        && (!rules[k][1] || matchMedia(rules[k][1]).matches)));
    }
    return cache.get(key);
  };
  const hits = (el, prefixes) => candidates(prefixes).filter((k) => {
    try { return el.matches(rules[k][0]); }
    catch (e) { return false; }  // selectors the browser rejects (vendor hacks) match nothing
  });
  const inlineSets = (el, prefixes) => Array.from(el.style || []).some((p) => startsWith(p, prefixes));
  const el = (window.__sdpoNodes || [])[index];
  if (!el) return [];
  const found = [[el.getAttribute(attr), hits(el, relevant)]];
  let missing = inherited.filter((p) => !inlineSets(el, [p]) && !found[0][1].some(
      (k) => rules[k][2].some((q) => q.startsWith(p))));
  for (let up = el.parentElement; up && missing.length; up = up.parentElement) {
    const own = hits(up, missing);
    const inline = missing.filter((p) => inlineSets(up, [p]));
    if (own.length || inline.length) {
      found.push([up.getAttribute(attr), own]);
      missing = missing.filter((p) => !inline.includes(p) && !own.some(
          (k) => rules[k][2].some((q) => q.startsWith(p))));
    }
  }
  return found;
})
"""


def trace_findings(page: Any, findings: list[Finding], layout: PageLayout,
                   source: SourceMap) -> list[tuple[LineSpan, ...]]:
    """Line spans for every finding: element start tags, matching rules, inherited origins."""
    if not findings:
        return []
    jobs: dict[tuple[int, str], int] = {}
    items = []
    per_finding = []
    for f in findings:
        records = list(f.records)
        if f.kind == "low_contrast":
            _, bg_record = layout.effective_background(f.records[0])
            if bg_record is not None and bg_record not in records:
                records.append(bg_record)
        keys = []
        for rec_idx in records:
            key = (rec_idx, f.kind)
            if key not in jobs:
                relevant = RELEVANT_PROPERTIES.get(f.kind, ())
                jobs[key] = len(items)
                items.append([rec_idx, list(relevant), [p for p in INHERITED if p.startswith(relevant)
                                                        or any(r.startswith(p) for r in relevant)]])
            keys.append(jobs[key])
        per_finding.append((f, records, keys))
    rules = [(r.selector, r.media, list(r.properties)) for r in source.css_rules]
    answers = page.evaluate(_TRACE_JS, [items, rules, "data-vs"])
    out = []
    for f, records, keys in per_finding:
        spans: set[LineSpan] = set()
        for rec_idx, key in zip(records, keys):
            own = source.lines_of(layout.records[rec_idx]["sid"])
            if own:
                spans.add(own)
            for sid, rule_ids in answers[key]:
                span = source.lines_of(int(sid)) if sid is not None else None
                if span:
                    spans.add(span)
                spans.update(source.css_rules[k].lines for k in rule_ids[-MAX_RULES_PER_ELEMENT:])
        out.append(tuple(sorted(spans)))
    return out
