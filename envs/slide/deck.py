"""What a rendered deck looks like: shape geometry from the .pptx, text extents from the PDF.

The judge re-reads the deck the sandbox child saved (never trusting the child for geometry; only
after `envs.slide.deck_guard` passed it) with python-pptx, from memory: per slide, every shape's
pixel box (EMU at 96 dpi, group children transformed), fill, line, text, whether it is a full-
slide backdrop. LibreOffice's PDF gives the truth about text: PyMuPDF spans (bbox, size, colour,
bold), which show text that grew out of its box; pdftotext has no colour or size, so PyMuPDF
stays for this. Pages are rasterised with poppler's pdftoppm inside the office sandbox
(`envs.slide.office`). Never imports jax.
"""
from __future__ import annotations

import dataclasses
import io

from envs.slide.office import DPI

EMU_PER_INCH = 914_400

Box = tuple[float, float, float, float]


@dataclasses.dataclass
class ShapeInfo:
    slide: int
    shape_id: int
    name: str
    kind: str  # text | picture | autoshape | table | chart | group | connector | other
    box: Box
    text: str
    filled: bool
    fill_rgb: tuple[int, int, int] | None
    lined: bool
    backdrop: bool = False  # covers >= 90% of the slide: a background, not content
    opaque: bool = True  # its fill hides what lies under it (a solid fill's alpha >= 0.9)


@dataclasses.dataclass
class TextSpan:
    slide: int
    box: Box
    text: str
    size_pt: float
    bold: bool
    rgb: tuple[int, int, int]
    shape: int | None = None  # index into DeckView.shapes once assigned


@dataclasses.dataclass
class DeckView:
    width: int
    height: int
    slides: int
    shapes: list[ShapeInfo]
    spans: list[TextSpan]
    background_rgb: dict[int, tuple[int, int, int]]


def _px(emu) -> float:
    return float(emu or 0) * DPI / EMU_PER_INCH


def read_shapes(deck: bytes, max_slides: int) -> tuple[int, int, int, list[ShapeInfo],
                                                      dict[int, tuple[int, int, int]]]:
    """(width px, height px, slide count, shapes, solid slide backgrounds) of the first
    `max_slides` slides of a .pptx."""
    from pptx import Presentation
    from pptx.enum.shapes import MSO_SHAPE_TYPE

    prs = Presentation(io.BytesIO(deck))
    width, height = round(_px(prs.slide_width)), round(_px(prs.slide_height))
    shapes: list[ShapeInfo] = []
    backgrounds: dict[int, tuple[int, int, int]] = {}

    def kind_of(shape) -> str:
        st = shape.shape_type
        if st == MSO_SHAPE_TYPE.GROUP:
            return "group"
        if st == MSO_SHAPE_TYPE.PICTURE or shape.__class__.__name__ == "Picture":
            return "picture"
        if getattr(shape, "has_table", False) and shape.has_table:
            return "table"
        if getattr(shape, "has_chart", False) and shape.has_chart:
            return "chart"
        if st == MSO_SHAPE_TYPE.LINE or shape.__class__.__name__ == "Connector":
            return "connector"
        if getattr(shape, "has_text_frame", False) and shape.has_text_frame and shape.text_frame.text.strip():
            return "text"
        return "autoshape" if st in (MSO_SHAPE_TYPE.AUTO_SHAPE, MSO_SHAPE_TYPE.PLACEHOLDER) else "other"

    def fill_of(shape) -> tuple[bool, tuple[int, int, int] | None]:
        try:
            fill = shape.fill
            if fill.type is None:
                return False, None
            rgb = fill.fore_color.rgb if fill.type == 1 else None
            return True, None if rgb is None else (rgb[0], rgb[1], rgb[2])
        except (AttributeError, TypeError, ValueError, NotImplementedError):
            return False, None

    def opaque(shape) -> bool:
        alpha = shape._element.xpath("./*[local-name()='spPr']/*[local-name()='solidFill']/*/*[local-name()='alpha']/@val")
        try:
            return not alpha or int(alpha[0]) >= 90_000
        except ValueError:
            return True

    def lined(shape) -> bool:
        try:
            return shape.line.fill.type not in (None, 5) and (shape.line.width or 1) > 0
        except (AttributeError, TypeError, ValueError, NotImplementedError):
            return False

    def visit(shape, slide_idx, transform):
        scale_x, scale_y, off_x, off_y = transform
        try:
            x0 = off_x + _px(shape.left) * scale_x
            y0 = off_y + _px(shape.top) * scale_y
            box = (x0, y0, x0 + _px(shape.width) * scale_x, y0 + _px(shape.height) * scale_y)
        except (TypeError, ValueError):
            return
        kind = kind_of(shape)
        if kind == "group":
            xfrm = shape._element.grpSpPr.find("{http://schemas.openxmlformats.org/drawingml/2006/main}xfrm")
            child = (shape.left, shape.top, shape.width, shape.height)
            if xfrm is not None and xfrm.find("{http://schemas.openxmlformats.org/drawingml/2006/main}chOff") is not None:
                ch_off = xfrm.find("{http://schemas.openxmlformats.org/drawingml/2006/main}chOff")
                ch_ext = xfrm.find("{http://schemas.openxmlformats.org/drawingml/2006/main}chExt")
                child = (int(ch_off.get("x")), int(ch_off.get("y")), int(ch_ext.get("cx")) or 1,
                         int(ch_ext.get("cy")) or 1)
            sx = scale_x * (shape.width or 1) / (child[2] or 1)
            sy = scale_y * (shape.height or 1) / (child[3] or 1)
            inner = (sx, sy, box[0] - _px(child[0]) * sx, box[1] - _px(child[1]) * sy)
            for sub in shape.shapes:
                visit(sub, slide_idx, inner)
            return
        filled, rgb = fill_of(shape)
        if kind == "table":
            text = "\n".join(cell.text for row in shape.table.rows for cell in row.cells)
        elif getattr(shape, "has_text_frame", False) and shape.has_text_frame:
            text = shape.text_frame.text
        else:
            text = ""
        area = max(0.0, box[2] - box[0]) * max(0.0, box[3] - box[1])
        shapes.append(ShapeInfo(slide=slide_idx, shape_id=shape.shape_id, name=shape.name, kind=kind,
                                box=box, text=text, filled=filled, fill_rgb=rgb, lined=lined(shape),
                                backdrop=area >= 0.9 * width * height and not text.strip(),
                                opaque=opaque(shape)))

    for slide_idx, slide in enumerate(prs.slides):
        if slide_idx >= max_slides:
            break
        try:
            fill = slide.background.fill
            if fill.type == 1 and fill.fore_color.rgb is not None:
                rgb = fill.fore_color.rgb
                backgrounds[slide_idx] = (rgb[0], rgb[1], rgb[2])
        except (AttributeError, TypeError, ValueError, NotImplementedError):
            pass
        for shape in slide.shapes:
            visit(shape, slide_idx, (1.0, 1.0, 0.0, 0.0))
    return width, height, len(prs.slides), shapes, backgrounds


def read_spans(pdf: bytes, max_pages: int) -> list[TextSpan]:
    """Text spans per page in slide pixels (PDF points scaled to 96 dpi)."""
    import pymupdf

    spans: list[TextSpan] = []
    scale = DPI / 72.0
    with pymupdf.open(stream=pdf, filetype="pdf") as doc:
        for page_idx, page in enumerate(doc):
            if page_idx >= max_pages:
                break
            for block in page.get_text("dict")["blocks"]:
                for line in block.get("lines", []):
                    for span in line.get("spans", []):
                        text = span.get("text", "").strip()
                        if not text:
                            continue
                        x0, y0, x1, y1 = span["bbox"]
                        c = int(span.get("color", 0))
                        spans.append(TextSpan(slide=page_idx, box=(x0 * scale, y0 * scale, x1 * scale, y1 * scale),
                                              text=text, size_pt=float(span.get("size", 12.0)),
                                              bold=bool(span.get("flags", 0) & 16) or "bold" in span.get("font", "").lower(),
                                              rgb=((c >> 16) & 255, (c >> 8) & 255, c & 255)))
    return spans


def assign_spans(view: DeckView) -> None:
    """Give each PDF span to the shape that wrote it: same text first; then a frame that holds
    it; a span outside every such frame is text that outgrew its frame, which LibreOffice writes
    right after the frame's other lines: the shape of the span before it when that one could
    have written it (a line cut at the slide's edge leaves single letters, found in many shapes'
    texts), else a frame whose columns hold it (wrapped text grows down), else the nearest."""
    by_slide: dict[int, list[int]] = {}
    for k, shape in enumerate(view.shapes):
        if shape.text.strip():
            by_slide.setdefault(shape.slide, []).append(k)

    def distance(box: Box, span: TextSpan) -> tuple[bool, float]:
        cx, cy = (span.box[0] + span.box[2]) / 2, (span.box[1] + span.box[3]) / 2
        dx = max(box[0] - cx, 0.0, cx - box[2])
        dy = max(box[1] - cy, 0.0, cy - box[3])
        return dx > 0, dx * dx + dy * dy

    previous: TextSpan | None = None
    for span in view.spans:
        candidates = by_slide.get(span.slide, [])
        needle = " ".join(span.text.split())
        same_text = [k for k in candidates if needle in " ".join(view.shapes[k].text.split())]
        pool = same_text or candidates
        if pool:
            best = min(pool, key=lambda k: distance(view.shapes[k].box, span))
            outside = distance(view.shapes[best].box, span)[1] > 0
            flows_on = previous is not None and previous.slide == span.slide and previous.shape in pool
            span.shape = previous.shape if outside and flows_on else best
        previous = span
