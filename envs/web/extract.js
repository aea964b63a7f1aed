// Page geometry for the web detectors: one record per rendered element, in page coordinates.
// Run by envs/web/browser.py through page.evaluate(source)(maxElements); returns plain JSON.
// Reads only: it never changes the page (it scrolls to hit-test below the first screen and scrolls
// back), so the screenshot taken after it shows what the model wrote.
(maxElements) => {
  // What is painted over each text, from the browser's own hit testing (paint order). For every
  // element that paints something opaque (a background, an image or control, or its own text)
  // and overlaps one of a text's line boxes, the topmost element at the centre of the overlap
  // says whether it lies on top; a child (a badge inside a paragraph) counts like any other.
  // Only what shows of a line counts (its part inside its clipping box), only near-opaque paint
  // hides it (a 70% veil over the page leaves text readable), and a text that hit testing cannot
  // see (pointer-events: none) is not judged by it.
  // rec.cover = [hidden share of the worst shown line, hidden px^2, record hiding most];
  // rec.under = [backgrounds painted under the text's first line by elements that are not its
  // ancestors (a box laid behind it), true if an image or gradient is among them].
  const paintedOver = (out, nodes, rgba, leafVisual) => {
    const vh = window.innerHeight, vw = window.innerWidth, x0 = window.scrollX, y0 = window.scrollY;
    const styles = nodes.map((n) => getComputedStyle(n));
    const opaque = out.map((r, j) => {
      const cs = styles[j];
      // A gradient is often a see-through fade laid over text on purpose: only images count.
      return r.visible && r.opacity >= 0.9 && (leafVisual.has(r.tag.toUpperCase()) ||
                           /url\(/.test(cs.backgroundImage) || (r.bg !== null && r.bg[3] >= 0.9));
    });
    const shown = out.map((r) => r.lines.map((line) => {
      // a line's glyph core: less a fifth of the font size above and below (ascender room)
      const inset = line[3] - line[1] > 0.4 * r.fontSize + 2 ? 0.2 * r.fontSize : 0;
      const l = [line[0], line[1] + inset, line[2], line[3] - inset];
      const c = r.clip;
      if (!c) return l;
      const b = [Math.max(l[0], c[0]), Math.max(l[1], c[1]), Math.min(l[2], c[2]), Math.min(l[3], c[3])];
      return b[2] - b[0] >= 1 && b[3] - b[1] >= 1 ? b : null;
    }));
    const fixed = out.map((r, j) => styles[j].position === "fixed" || styles[j].position === "sticky");
    for (let j = 0; j < out.length; j++) if (out[j].parent >= 0 && fixed[out[j].parent]) fixed[j] = true;
    const isAncestor = (a, i) => { for (let p = out[i].parent; p >= 0; p = out[p].parent) if (p === a) return true; return false; };
    const paints = [];  // [record, box] of everything that can hide glyphs
    out.forEach((r, j) => {
      // what clips this element's box: its ancestors' overflow, or its own clip / clip-path
      const c = r.clipsSelf ? r.clip : r.parent >= 0 ? out[r.parent].clip : null;
      const box = c ? [Math.max(r.box[0], c[0]), Math.max(r.box[1], c[1]), Math.min(r.box[2], c[2]),
                       Math.min(r.box[3], c[3])] : r.box;
      if (opaque[j] && box[2] > box[0] && box[3] > box[1]) paints.push([j, box]);
      if (r.visible) for (const l of shown[j]) if (l) paints.push([j, l]);
    });
    paints.sort((a, b) => a[1][1] - b[1][1]);
    const jobs = [];  // [screen, kind, i, line, j, area, x, y]
    out.forEach((rec, i) => {
      if (!rec.visible || !rec.lines.length) return;
      const first = rec.lines[0];
      jobs.push([Math.floor(Math.max(0, (first[1] + first[3]) / 2) / vh), 0, i, 0, -1, 0,
                 (first[0] + first[2]) / 2, (first[1] + first[3]) / 2]);
      if (styles[i].pointerEvents === "none") return;
      shown[i].slice(0, 8).forEach((l, li) => {
        if (!l) return;
        for (const [j, b] of paints) {
          if (b[1] >= l[3]) break;
          if (j === i || b[3] <= l[1]) continue;
          const ix0 = Math.max(l[0], b[0]), ix1 = Math.min(l[2], b[2]);
          const iy0 = Math.max(l[1], b[1]), iy1 = Math.min(l[3], b[3]);
          if (ix1 - ix0 < 2 || iy1 - iy0 < 2 || isAncestor(j, i)) continue;
          jobs.push([Math.floor(Math.max(0, (iy0 + iy1) / 2) / vh), 1, i, li, j, (ix1 - ix0) * (iy1 - iy0),
                     (ix0 + ix1) / 2, (iy0 + iy1) / 2]);
        }
      });
    });
    jobs.sort((a, b) => a[0] - b[0]);
    const hidden = new Map();
    let screen = -1;
    for (const [chunk, kind, i, li, j, area, x, y] of jobs) {
      if (chunk !== screen) { window.scrollTo({left: x0, top: chunk * vh, behavior: "instant"}); screen = chunk; }
      const vx = x - window.scrollX, vy = y - window.scrollY;
      if (vx < 0 || vy < 0 || vx >= vw || vy >= vh) continue;
      const el = nodes[i];
      if (kind === 1) {
        if (fixed[j] && window.scrollY > 0) continue;  // a fixed bar only covers while scrolled
        const top = document.elementFromPoint(vx, vy);
        if (!top || top === el || !(nodes[j] === top || nodes[j].contains(top))) continue;
        const h = hidden.get(i) || {lines: new Map(), by: new Map()};
        hidden.set(i, h);
        h.lines.set(li, (h.lines.get(li) || 0) + area);
        h.by.set(j, (h.by.get(j) || 0) + area);
        continue;
      }
      const stack = document.elementsFromPoint(vx, vy);
      const at = stack.indexOf(el);
      if (at < 0) continue;
      const layers = [];
      let image = false, foreign = false;
      for (let m = at + 1; m < stack.length; m++) {
        const t = stack[m];
        if (!t.contains(el)) foreign = true;
        const cs = getComputedStyle(t);
        if (cs.backgroundImage !== "none" || leafVisual.has(t.tagName.toUpperCase())) { image = true; break; }
        const bg = rgba(cs.backgroundColor);
        if (bg && bg[3] > 0) layers.push(bg);
        if (bg && bg[3] >= 1) break;
      }
      if (foreign) out[i].under = [layers, image];
    }
    window.scrollTo({left: x0, top: y0, behavior: "instant"});  // never smooth: the screenshot follows
    for (const [i, h] of hidden) {
      let worst = 0, total = 0;
      for (const [li, a] of h.lines) {
        const l = shown[i][li];
        const lineArea = Math.max(1, (l[2] - l[0]) * (l[3] - l[1]));
        worst = Math.max(worst, Math.min(1, a / lineArea));
        total += Math.min(a, lineArea);
      }
      const by = [...h.by.entries()].sort((a, b) => b[1] - a[1]);
      out[i].cover = [worst, total, by[0][0]];
    }
  };
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
      // checkVisibility: false inside a closed <details> or a content-visibility:hidden subtree,
      // whose boxes still have geometry though nothing of them is painted.
      box: box(r), visible: cs.visibility !== "hidden" && opacity > 0.05 &&
        (!el.checkVisibility || el.checkVisibility({visibilityProperty: true})),
      ox: cs.overflowX, oy: cs.overflowY,
      cw: el.clientWidth, ch: el.clientHeight, sw: el.scrollWidth, sh: el.scrollHeight,
      color: rgba(cs.color), bg: rgba(cs.backgroundColor), bgImage: cs.backgroundImage !== "none",
      opacity: opacity, fontSize: parseFloat(cs.fontSize), fontWeight: cs.fontWeight,
      fontFamily: cs.fontFamily.slice(0, 120),
      position: cs.position, display: cs.display, textOverflow: cs.textOverflow,
      border: ["Top", "Right", "Bottom", "Left"].some(
        (s) => parseFloat(cs["border" + s + "Width"]) > 0 && cs["border" + s + "Style"] !== "none"),
      leaf: LEAF_VISUAL.has(el.tagName.toUpperCase()),
      clip: null, text: "", lines: [], cover: null, under: null,
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
    // A placed box's `clip: rect(...)` or `clip-path: inset(50%)` (screen-reader-only text,
    // collapsed skip links) clips it like overflow does.
    const placed = cs.position === "absolute" || cs.position === "fixed";
    const cut = placed && /^rect\(/.test(cs.clip) ? cs.clip.slice(5, -1).split(/[ ,]+/).map(parseFloat) :
      /^inset\((50|100)%/.test(cs.clipPath) ? [0, 0, 0, 0] : null;
    if (cut) {
      const b = box(r), [t, rt, bt, lt] = cut;
      const mine = [b[0] + (isNaN(lt) ? 0 : lt), b[1] + (isNaN(t) ? 0 : t),
                    isNaN(rt) ? b[2] : b[0] + rt, isNaN(bt) ? b[3] : b[1] + bt];
      clip = clip ? [Math.max(clip[0], mine[0]), Math.max(clip[1], mine[1]),
                     Math.min(clip[2], mine[2]), Math.min(clip[3], mine[3])] : mine;
    }
    rec.clip = clip;  // what clips this element's own text: its ancestors' and its own overflow
    rec.clipsSelf = cut !== null;
    for (const child of el.children) visit(child, idx, clip, opacity, mySid);
  };
  if (document.body) {
    const bodySid = document.body.getAttribute(SOURCE_ATTR);
    visit(document.body, -1, null, 1, bodySid === null ? null : Number(bodySid));
  }
  window.__sdpoNodes = nodes;
  paintedOver(out, nodes, rgba, LEAF_VISUAL);
  const de = document.documentElement;
  const rootBg = rgba(getComputedStyle(de).backgroundColor);
  return {
    elements: out,
    viewport: [window.innerWidth, window.innerHeight],
    scroll: [de.scrollWidth, de.scrollHeight],
    rootBg: rootBg,
  };
}
