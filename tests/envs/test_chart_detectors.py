"""Chart detectors on hand-made scenes: each fires on its defect, stays quiet on the near-miss
that is not one, and names the lines of the elements involved."""
from __future__ import annotations

import dataclasses

import numpy as np
import pytest

from envs.chart.detectors import ChartDetectorConfig, detect
from envs.chart.scene import AxesItem, ChartScene, LegendItem, MarkGeometry, MarkItem, TextItem
from envs.geometry import box_corners, rotated_rect

W, H = 400, 300


def scene(**items) -> ChartScene:
    image = items.pop("image", np.full((H, W, 3), 255, dtype=np.uint8))
    axes = items.pop("axes", [axes_item((50, 30, 350, 250))])
    return ChartScene(width=W, height=H, image=image, figure_boxes=[(0, 0, W, H)], axes=axes, **items)


def axes_item(box, grid=(0, 0, 0, 0, 0), lines=((5, 5),), kind="axes") -> AxesItem:
    return AxesItem(box=box, position=box, figure=0, grid=grid, kind=kind, visible_frame=True, lines=lines)


def text(box, content="label", role="text", lines=((9, 9),), rgba=(0, 0, 0, 1), corners=None, **kw) -> TextItem:
    return TextItem(box=box, corners=corners or box_corners(box), text=content, rgba=rgba, size_pt=10,
                    bold=False, role=role, axes=kw.pop("axes", 0), figure=0, lines=lines,
                    color_lines=kw.pop("color_lines", lines), **kw)


def kinds(found) -> list[str]:
    return sorted(d.kind for d in found)


def test_overlapping_texts_are_reported_with_both_statements():
    found = detect(scene(texts=[text((100, 100, 160, 115), lines=((3, 3),)),
                                text((140, 104, 200, 119), lines=((8, 9),))]))
    assert kinds(found) == ["overlap"]
    assert found[0].lines == ((3, 3), (8, 9)) and found[0].region == (100, 100, 200, 119)


def test_touching_texts_and_tiny_overlaps_are_not_defects():
    found = detect(scene(texts=[text((100, 100, 160, 115)), text((160, 100, 220, 115)),
                                text((100, 120, 160, 135)), text((159, 121, 220, 136))]))
    assert kinds(found) == []


def test_rotated_labels_whose_boxes_overlap_but_glyphs_do_not_are_clean():
    def label(cx):  # 45-degree labels 12 px apart: axis-aligned boxes overlap, rectangles do not
        corners = rotated_rect(cx, 260, 60, 10, 45)
        xs, ys = zip(*corners)
        return text((min(xs), min(ys), max(xs), max(ys)), role="tick_label", axis="x", corners=corners)
    assert kinds(detect(scene(texts=[label(100 + 14 * i) for i in range(6)]))) == []
    crowded = [label(100 + 4 * i) for i in range(6)]
    found = detect(scene(texts=crowded))
    assert kinds(found) == ["overlap"] and found[0].severity == 1.0


def test_tick_collisions_are_one_defect_per_axis_with_the_share_of_labels_involved():
    labels = [text((60 + 30 * i, 255, 100 + 30 * i, 265), f"t{i}", role="tick_label", axis="x")
              for i in range(4)]
    labels += [text((300, 255, 330, 265), "far", role="tick_label", axis="x")]
    found = detect(scene(texts=labels))
    assert kinds(found) == ["overlap"]
    assert found[0].severity == pytest.approx(4 / 5)


def test_text_cut_by_the_figure_edge_is_clipped_text():
    found = detect(scene(texts=[text((370, 10, 430, 25), "Wide title", role="title")]))
    assert kinds(found) == ["clipped_text"] and "50% outside the figure" in found[0].message


def test_data_label_past_its_clipping_axes_is_clipped_text():
    found = detect(scene(texts=[text((330, 100, 380, 112), clip=(50, 30, 350, 250))]))
    assert kinds(found) == ["clipped_text"] and "outside its axes" in found[0].message


def test_axes_partly_outside_the_figure_overflows():
    found = detect(scene(axes=[axes_item((250, 30, 480, 250), lines=((12, 12),))]))
    assert kinds(found) == ["overflow"] and found[0].lines == ((12, 12),)


def test_legend_over_a_line_is_reported_and_a_legend_in_free_space_is_not():
    line = np.column_stack([np.linspace(60, 340, 50), np.linspace(240, 40, 50)])
    mark = MarkItem(kind="line", box=(60, 40, 340, 240), axes=0, figure=0, clipped=True, lines=((6, 6),),
                    geometry=MarkGeometry(polylines=[line], half_width=3.0))
    on_data = detect(scene(legends=[LegendItem((170, 110, 230, 170), 0, 0, ((14, 14),))], marks=[mark]))
    assert kinds(on_data) == ["legend_over_data"] and on_data[0].lines == ((6, 6), (14, 14))
    free = detect(scene(legends=[LegendItem((280, 180, 345, 245), 0, 0, ((14, 14),))], marks=[mark]))
    assert kinds(free) == []


def test_a_legend_over_a_full_axes_backdrop_is_not_over_data_but_over_a_heatmap_it_is():
    backdrop = MarkItem(kind="patch", box=(50, 30, 350, 250), axes=0, figure=0, clipped=True,
                        geometry=MarkGeometry(polygons=[np.array(box_corners((50, 30, 350, 250)))]))
    assert kinds(detect(scene(legends=[LegendItem((170, 110, 230, 170), 0, 0)], marks=[backdrop]))) == []
    heatmap = MarkItem(kind="image", box=(50, 30, 350, 250), axes=0, figure=0, clipped=True,
                       geometry=MarkGeometry(rects=[(50, 30, 350, 250)]))
    assert kinds(detect(scene(legends=[LegendItem((170, 110, 230, 170), 0, 0)], marks=[heatmap]))) == \
        ["legend_over_data"]


def test_a_legend_on_reference_lines_bands_or_under_a_twin_axes_hides_no_data():
    legend = LegendItem((170, 110, 240, 170), 0, 0)
    edges = [MarkItem(kind="line", box=(x, 30, x + 1, 250), axes=0, figure=0, clipped=True,
                      geometry=MarkGeometry(polylines=[np.array([[x, 30.0], [x, 250.0]])]))
             for x in (180.0, 200.0, 220.0)]  # axvline bin edges across the axes
    band = MarkItem(kind="patch", box=(150, 30, 260, 250), axes=0, figure=0, clipped=True,
                    geometry=MarkGeometry(polygons=[np.array(box_corners((150, 30, 260, 250)))]))  # axvspan
    assert kinds(detect(scene(legends=[legend], marks=[*edges, band]))) == []
    curve = MarkGeometry(polylines=[np.array([[60.0, 240.0], [200.0, 140.0], [340.0, 40.0]])])
    twin = [axes_item((50, 30, 350, 250)), axes_item((50, 30, 350, 250))]
    later = MarkItem(kind="line", box=(60, 40, 340, 240), axes=1, figure=0, clipped=True, geometry=curve)
    assert kinds(detect(scene(axes=twin, legends=[legend], marks=[later]))) == [], "the twin paints over it"
    same = dataclasses.replace(later, axes=0)
    assert kinds(detect(scene(axes=twin, legends=[legend], marks=[same]))) == ["legend_over_data"]


def test_a_single_hidden_marker_is_hidden_data():
    points = MarkItem(kind="collection", box=(60, 40, 340, 240), axes=0, figure=0, clipped=True,
                      geometry=MarkGeometry(points=np.array([[80.0, 60.0], [200.0, 140.0], [320.0, 220.0]]),
                                            radii=np.full(3, 3.0)))
    found = detect(scene(legends=[LegendItem((170, 110, 240, 170), 0, 0)], marks=[points]))
    assert kinds(found) == ["legend_over_data"] and "1 markers" in found[0].message


def test_text_in_the_background_colour_is_low_contrast():
    image = np.full((H, W, 3), 255, dtype=np.uint8)
    image[100:112, 100:150] = 244  # the glyphs, drawn almost in the background's colour
    faint = text((98, 98, 152, 114), rgba=(244 / 255, 244 / 255, 244 / 255, 1), color_lines=((21, 21),))
    found = detect(scene(image=image, texts=[faint]))
    assert kinds(found) == ["low_contrast"] and found[0].lines == ((21, 21),)
    assert found[0].severity > 0.9


def test_readable_grey_text_below_wcag_is_an_advisory_note():
    image = np.full((H, W, 3), 255, dtype=np.uint8)
    image[100:112, 100:150] = 128  # 3.9:1 on white: below WCAG's 4.5:1, easy to read
    found = detect(scene(image=image, texts=[text((98, 98, 152, 114), rgba=(128 / 255,) * 3 + (1,))]))
    assert kinds(found) == ["low_contrast"] and found[0].advisory and "WCAG asks 4.5:1" in found[0].message


def test_heatmap_numbers_white_on_a_saturated_cell_read_but_black_on_a_dark_cell_do_not():
    def cell(ground, ink):
        image = np.full((H, W, 3), ground, dtype=np.uint8)
        image[100:112, 100:150] = ink
        return detect(scene(image=image, texts=[text((98, 98, 152, 114), rgba=(*(c / 255 for c in ink), 1))]),
                      ChartDetectorConfig(kinds=("low_contrast",)))
    white_on_pink = cell((248, 141, 141), (255, 255, 255))  # WCAG 2.3:1, APCA Lc -50: the audit read it
    black_on_blue = cell((59, 76, 192), (0, 0, 0))  # WCAG 3.0:1, APCA Lc 20: the audit could not
    assert white_on_pink and all(d.advisory for d in white_on_pink)
    assert black_on_blue and not black_on_blue[0].advisory and "hard to read" in black_on_blue[0].message


def test_dark_text_on_white_has_enough_contrast():
    image = np.full((H, W, 3), 255, dtype=np.uint8)
    image[100:112, 100:150] = 30
    assert kinds(detect(scene(image=image, texts=[text((98, 98, 152, 114), rgba=(0.1, 0.1, 0.1, 1))]))) == []


def test_a_subplot_moved_off_its_row_is_misaligned_but_jitter_and_a_resize_are_not():
    row = [axes_item((10 + 130 * i, 30, 120 + 130 * i, 250), grid=(0, 0, 0, i, i), lines=((3 + i, 3 + i),))
           for i in range(3)]
    assert kinds(detect(scene(axes=row))) == []
    nudged = row[:2] + [axes_item((270, 33, 380, 253), grid=(0, 0, 0, 2, 2), lines=((17, 17),))]
    found = detect(scene(axes=nudged))
    assert kinds(found) == ["misalignment"], "one translation, reported once"
    assert all(d.lines == ((17, 17),) for d in found), "only the nudged subplot is to blame"
    pair = detect(scene(axes=[row[0], nudged[2]]))
    assert kinds(pair) == ["misalignment"] and pair[0].lines == ((3, 3), (17, 17)), \
        "with two subplots neither is the reference: both are named"
    far = row[:2] + [axes_item((270, 45, 380, 265), grid=(0, 0, 0, 2, 2), lines=((17, 17),))]
    assert kinds(detect(scene(axes=far))) == ["misalignment"], "moved off its row however far"
    jitter = row[:2] + [axes_item((270, 31.5, 380, 251.5), grid=(0, 0, 0, 2, 2))]
    assert kinds(detect(scene(axes=jitter))) == [], "1.5 px is invisible"
    deliberate = row[:2] + [axes_item((270, 80, 380, 200), grid=(0, 0, 0, 2, 2))]
    assert kinds(detect(scene(axes=deliberate))) == []


def test_enabled_kinds_and_caps_come_from_the_config():
    texts = [text((100, 100 + 2 * i, 160, 115 + 2 * i), f"t{i}") for i in range(8)]
    assert len(detect(scene(texts=texts), ChartDetectorConfig(max_per_kind=3))) == 3
    assert detect(scene(texts=texts), ChartDetectorConfig(kinds=("low_contrast",))) == []


def test_apca_minimum_follows_the_font_lookup_for_size_and_weight():
    from envs.color import apca_fluent_minimum, apca_spot_minimum, hard_to_read
    assert apca_fluent_minimum(16, False) == 90 and apca_fluent_minimum(24, False) == 60
    assert apca_fluent_minimum(14, True) == 75 and apca_fluent_minimum(200, False) == 25
    assert apca_spot_minimum(15, False) == 65 and apca_spot_minimum(24, False) == 45
    assert apca_spot_minimum(8, False) == 75, "tiny text: the most the lookup asks"
    sizes = [10, 12, 14, 16, 20, 24, 32, 48, 96]
    assert all(apca_spot_minimum(a, b) >= apca_spot_minimum(c, b) for b in (False, True)
               for a, c in zip(sizes, sizes[1:])), "bigger text never needs more contrast"
    assert all(apca_spot_minimum(s, True) <= apca_spot_minimum(s, False) for s in sizes)
    white, blue = (255, 255, 255), (107, 174, 214)  # WCAG 2.4:1, APCA Lc -53
    assert hard_to_read(2.43, 4.5, white, blue, size_px=14.6)
    assert not hard_to_read(2.43, 4.5, white, blue, size_px=24.0)
    assert not hard_to_read(2.43, 4.5, white, blue), "no size: the 24-px level, Lc 45"
    assert not hard_to_read(3.2, 4.5, white, blue, size_px=10.0), "above two thirds of WCAG"
