// Page geometry for the web detectors: one record per rendered element, in page coordinates.
// Run by envs/web/browser.py through page.evaluate(source)(maxElements); returns plain JSON.
// Reads only: it never changes the page, so the screenshot taken after it shows what the model wrote.
(maxElements) => {
  const SOURCE_ATTR = "data-vs";
  const LEAF_VISUAL = new Set(["IMG", "SVG", "CANVAS", "VIDEO", "INPUT", "BUTTON", "SELECT",
                               "TEXTAREA", "IFRAME", "OBJECT", "EMBED", "PICTURE"]);
  const SKIP = new Set(["HEAD", "SCRIPT", "STYLE", "META", "LINK", "TITLE", "NOSCRIPT", "TEMPLATE", "BR", "WBR"]);
  const sx = window.scrollX, sy = window.scrollY;
  const all = document.body ? document.body.getElementsByTagName("*") : [];
  if (all.length > maxElements) {
    return {tooMany: all.length};
  }
  const rgba = (s) => {
    const m = s && s.match(/rgba?\(([^)]+)\)/);
    if (!m) return null;
    const p = m[1].split(/[ ,/]+/).filter(Boolean).map(Number);
    return [p[0], p[1], p[2], p.length > 3 ? p[3] : 1];
  };
  const box = (r) => [r.left + sx, r.top + sy, r.right + sx, r.bottom + sy];
  const out = [];
  const nodes = [];  // kept on window so envs/web/trace.js can find a record's element again
  const visit = (el, parentIdx, inheritedClip, inheritedOpacity, sid) => {
    if (SKIP.has(el.tagName.toUpperCase())) return;
    const cs = getComputedStyle(el);
    if (cs.display === "none") return;
    const own = el.getAttribute(SOURCE_ATTR);
    const mySid = own === null ? sid : Number(own);
    const r = el.getBoundingClientRect();
    const opacity = inheritedOpacity * Number(cs.opacity);
    const rec = {
      tag: el.tagName.toLowerCase(), sid: mySid, own: own !== null, parent: parentIdx,
      box: box(r), visible: cs.visibility !== "hidden" && opacity > 0.05,
      ox: cs.overflowX, oy: cs.overflowY,
      cw: el.clientWidth, ch: el.clientHeight, sw: el.scrollWidth, sh: el.scrollHeight,
      color: rgba(cs.color), bg: rgba(cs.backgroundColor), bgImage: cs.backgroundImage !== "none",
      opacity: opacity, fontSize: parseFloat(cs.fontSize), fontWeight: cs.fontWeight,
      position: cs.position, display: cs.display, textOverflow: cs.textOverflow,
      border: ["Top", "Right", "Bottom", "Left"].some(
        (s) => parseFloat(cs["border" + s + "Width"]) > 0 && cs["border" + s + "Style"] !== "none"),
      leaf: LEAF_VISUAL.has(el.tagName.toUpperCase()),
      clip: null, text: "", lines: [],
    };
    const idx = out.length;
    out.push(rec);
    nodes.push(el);
    // Text this element shows itself (direct text nodes), with one rectangle per line box.
    const range = document.createRange();
    let text = "";
    for (const node of el.childNodes) {
      if (node.nodeType !== Node.TEXT_NODE || !node.data.trim()) continue;
      text += node.data;
      range.selectNodeContents(node);
      for (const lr of range.getClientRects()) {
        if (lr.width > 0.5 && lr.height > 0.5) rec.lines.push(box(lr));
      }
    }
    rec.text = text.replace(/\s+/g, " ").trim().slice(0, 300);
    // Clip box handed to descendants: this element's padding box if it does not show overflow.
    let clip = inheritedClip;
    if (cs.overflowX !== "visible" || cs.overflowY !== "visible") {
      const x0 = r.left + sx + el.clientLeft, y0 = r.top + sy + el.clientTop;
      const mine = [cs.overflowX === "visible" ? -1e9 : x0, cs.overflowY === "visible" ? -1e9 : y0,
                    cs.overflowX === "visible" ? 1e9 : x0 + el.clientWidth,
                    cs.overflowY === "visible" ? 1e9 : y0 + el.clientHeight];
      clip = clip ? [Math.max(clip[0], mine[0]), Math.max(clip[1], mine[1]),
                     Math.min(clip[2], mine[2]), Math.min(clip[3], mine[3])] : mine;
    }
    rec.clip = clip;  // what clips this element's own text: its ancestors' and its own overflow
    for (const child of el.children) visit(child, idx, clip, opacity, mySid);
  };
  if (document.body) {
    const bodySid = document.body.getAttribute(SOURCE_ATTR);
    visit(document.body, -1, null, 1, bodySid === null ? null : Number(bodySid));
  }
  window.__sdpoNodes = nodes;
  const de = document.documentElement;
  const rootBg = rgba(getComputedStyle(de).backgroundColor);
  return {
    elements: out,
    viewport: [window.innerWidth, window.innerHeight],
    scroll: [de.scrollWidth, de.scrollHeight],
    rootBg: rootBg,
  };
}
