"""prepare_data on small fixtures in each release's official layout (written here, malformed rows
included) and on the real benchmark files of the data folder: what is kept, what is dropped and
why, and that sdpo_jax.data reads every output."""
from __future__ import annotations

import base64
import io
import json

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from PIL import Image

from sdpo_jax.data import Source, load_tasks
from sdpo_jax.prepare_data import SourceError, prepare
from sdpo_jax.prepare_data.__main__ import main

CHART = """import matplotlib.pyplot as plt
fig, ax = plt.subplots(figsize=(5, 3))
ax.bar(["a", "b"], [1, 2], color="#1F77B4")
ax.set_title("Sales")
plt.savefig("{name}.pdf", bbox_inches="tight")
"""
PAGE = "<html><body><h1>Hello</h1><p>World</p></body></html>"


def _png(color=(200, 30, 30), size=(16, 12)) -> bytes:
    out = io.BytesIO()
    Image.new("RGB", size, color).save(out, format="PNG")
    return out.getvalue()


def _jpg() -> bytes:
    out = io.BytesIO()
    Image.new("RGB", (16, 9), (10, 20, 30)).save(out, format="JPEG")
    return out.getvalue()


def _rows(path) -> list[dict]:
    return [json.loads(line) for line in path.read_text().splitlines()]


def _image_of(out_path, row) -> Image.Image:
    return Image.open(out_path.parent / row["image"])


def test_chartmimic_ori_500_folder(tmp_path):
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    src = tmp_path / "ori_500"
    src.mkdir()
    (src / "bar_1.py").write_text(CHART.format(name="bar_1"))
    (src / "bar_1.png").write_bytes(_png())
    (src / "line_12.py").write_text(CHART.format(name="line_12"))
    fig = plt.figure(figsize=(2, 1))
    fig.savefig(src / "line_12.pdf")
    plt.close(fig)
    (src / "pie_3.py").write_text(CHART.format(name="pie_3"))          # no target at all
    (src / "box_4.py").write_text("plt.plot([1, 2)\n")                 # not Python
    (src / "box_4.png").write_bytes(_png())
    (src / "area_5.py").write_text("   \n")                              # empty
    (src / "area_5.png").write_bytes(_png())
    (src / "hist_6.py").write_text(CHART.format(name="hist_6"))
    (src / "hist_6.png").write_bytes(b"\x89PNG not really")            # broken target
    out = tmp_path / "out" / "chartmimic.jsonl"
    report = prepare("chartmimic", str(src), str(out))
    assert report.kept == 2 and report.total == 6, report.summary()
    assert report.dropped == {"no target image (<id>.png or <id>.pdf)": 1,
                              "program is not valid Python (SyntaxError)": 1,
                              "empty program": 1,
                              "target image is not a readable PNG/JPEG": 1}
    rows = {r["id"]: r for r in _rows(out)}
    assert rows["line_12"]["chart_type"] == "line" and rows["bar_1"]["figsize"] == [5.0, 3.0]
    assert _image_of(out, rows["line_12"]).size == (240, 120), "PDF rasterised at 120 dpi"
    assert _image_of(out, rows["bar_1"]).getpixel((0, 0)) == (200, 30, 30)
    assert [t.task_id for t in load_tasks(Source(str(out), "chartmimic"))] == ["bar_1", "line_12"]
    assert json.loads((tmp_path / "out" / "chartmimic.jsonl.report.json").read_text())["kept"] == 2


def test_chart2code_keeps_only_programs_that_run(tmp_path):
    (tmp_path / "images").mkdir()
    (tmp_path / "images" / "0.png").write_bytes(_png())
    turn = lambda code: [{"from": "human", "value": "<image>\nRedraw this chart."},  # noqa: E731
                         {"from": "gpt", "value": f"```python\n{code}```"}]
    rows = [
        {"id": "c0", "image": "images/0.png", "conversations": turn(CHART.format(name="c0"))},
        {"id": "c1", "image": "images/missing.png", "code": CHART.format(name="c1")},
        {"id": "c2", "conversations": turn("import matplotlib.pyplot as plt\n1 / 0\n")},
        {"id": "c3", "conversations": turn("plt.plot(\n")},
        {"id": "c4", "conversations": [{"from": "human", "value": "hi"}]},
        "not an object",
    ]
    src = tmp_path / "chart2code_160k.json"
    src.write_text(json.dumps(rows))
    out = tmp_path / "c2c.jsonl"
    report = prepare("chart2code", str(src), str(out), workers=1)
    assert [r["id"] for r in _rows(out)] == ["c0", "c1"], report.summary()
    assert report.dropped["does not run in the chart env (ZeroDivisionError)"] == 1
    assert report.dropped["program is not valid Python (SyntaxError)"] == 1
    assert report.dropped["no program (neither `code` nor a gpt turn in `conversations`)"] == 1
    assert sum(report.dropped.values()) == 4 and report.notes, report.summary()
    kept = _rows(out)
    assert "image" in kept[0] and "image" not in kept[1] and "```" not in kept[0]["code"]
    assert len(load_tasks(Source(str(out), "chart2code"))) == 2


def test_design2code_testset_folder(tmp_path):
    src = tmp_path / "testset_final"
    src.mkdir()
    (src / "rick.jpg").write_bytes(_jpg())
    for stem, page, shot in (("2", PAGE, _png()), ("10", PAGE, _png()), ("3", PAGE, None),
                             ("4", "just words", _png()), ("5", PAGE, b"garbage")):
        (src / f"{stem}.html").write_text(page)
        if shot is not None:
            (src / f"{stem}.png").write_bytes(shot)
    out = tmp_path / "d2c.jsonl"
    report = prepare("design2code", str(src), str(out))
    assert [r["id"] for r in _rows(out)] == ["2", "10"], "pages in numeric order"
    assert report.dropped == {"no screenshot <n>.png beside the page": 1,
                              "page has no HTML markup": 1,
                              "target image is not a readable PNG/JPEG": 1}
    assert [t.task_id for t in load_tasks(Source(str(out), "design2code"))] == ["2", "10"]


def _parquet(path, columns: dict) -> None:
    pq.write_table(pa.table(columns), path)


def test_websight_parquet_shards(tmp_path):
    (tmp_path / "v0.2").mkdir()
    image = lambda data: {"bytes": data, "path": None}  # noqa: E731 - an HF Image cell
    _parquet(tmp_path / "v0.2" / "train-00000-of-00002.parquet", {
        "image": [image(_png()), image(_jpg()), image(b"not an image")],
        "text": [PAGE, PAGE.replace("Hello", "Bye"), PAGE],
        "llm_generated_idea": ["A bakery site", "", "x"]})
    _parquet(tmp_path / "v0.2" / "train-00001-of-00002.parquet", {
        "image": [image(_png()), image(None)], "text": ["", PAGE], "llm_generated_idea": ["", ""]})
    out = tmp_path / "websight.jsonl"
    report = prepare("websight", str(tmp_path / "v0.2"), str(out))
    rows = _rows(out)
    assert len(rows) == 2 and rows[0]["idea"] == "A bakery site" and "idea" not in rows[1]
    assert rows[1]["image"].endswith(".jpg") and _image_of(out, rows[1]).size == (16, 9)
    assert report.dropped == {"target image is not a readable PNG/JPEG": 1,
                              "missing or empty text / html": 1, "no target image": 1}
    assert len(load_tasks(Source(str(out), "websight"))) == 2
    assert prepare("websight", str(tmp_path / "v0.2"), str(out), limit=1).total == 1


def test_webcode2m_parquet_and_jsonl_copies(tmp_path):
    _parquet(tmp_path / "00000.parquet", {"image": [{"bytes": _png(), "path": None}] * 2,
                                          "text": [PAGE, PAGE], "lang": ["en", "de"]})
    out = tmp_path / "w.jsonl"
    assert prepare("webcode2m", str(tmp_path / "00000.parquet"), str(out)).kept == 2
    assert [r["lang"] for r in _rows(out)] == ["en", "de"]
    lines = [json.dumps({"id": "a", "text": PAGE, "image": base64.b64encode(_png()).decode()}),
             json.dumps({"id": "a", "text": PAGE, "image": base64.b64encode(_png()).decode()}),
             "{broken json", json.dumps({"id": "b", "text": PAGE, "image": "no/such/file.png"})]
    (tmp_path / "copy.jsonl").write_text("\n".join(lines) + "\n")
    report = prepare("webcode2m", str(tmp_path / "copy.jsonl"), str(tmp_path / "w2.jsonl"))
    assert report.kept == 1 and report.dropped["duplicate id"] == 1, report.summary()
    assert any(reason.startswith("not valid JSON") for reason in report.dropped)
    assert any("neither a file nor base64" in reason for reason in report.dropped)


def test_aeslides_example_decks_and_instruction_rows(tmp_path):
    deck = tmp_path / "aeslides" / "examples" / "deck" / "deck01"
    (deck / "slides").mkdir(parents=True)
    (deck / "renders").mkdir()
    (deck / "slides" / "page_01.html").write_text(PAGE)
    (deck / "renders" / "page_01.jpg").write_bytes(_jpg())
    (deck / "slides" / "page_02.html").write_text(PAGE)                 # no render: kept
    (deck / "slides" / "page_03.html").write_text("no markup here")     # dropped
    out = tmp_path / "slides.jsonl"
    report = prepare("aeslides", str(tmp_path / "aeslides"), str(out))
    rows = _rows(out)
    assert [r["id"] for r in rows] == ["deck01/page_01", "deck01/page_02"]
    assert rows[0]["deck"] == "deck01" and "image" in rows[0] and "image" not in rows[1]
    assert report.dropped == {"page has no HTML markup": 1} and report.notes
    instructions = tmp_path / "prompts.jsonl"
    instructions.write_text("\n".join([json.dumps({"id": "p1", "instruction": "A slide on tea"}),
                                       json.dumps({"prompt": "Quarterly results, 3 bullets"}),
                                       json.dumps({"id": "p3", "title": "nothing usable"}),
                                       "[1, 2]"]) + "\n")
    out2 = tmp_path / "prompts_out.jsonl"
    report = prepare("aeslides", str(instructions), str(out2))
    assert [r.get("instruction") for r in _rows(out2)] == ["A slide on tea",
                                                          "Quarterly results, 3 bullets"]
    assert sum(report.dropped.values()) == 2
    tasks = load_tasks(Source(str(out2), "aeslides"))
    assert "A slide on tea" in tasks[0].instruction


def test_cli_defaults_to_the_data_folder_and_reports_bad_sources(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("SDPO_DATA_DIR", str(tmp_path / "data"))
    (tmp_path / "rows.jsonl").write_text(json.dumps({"id": "x", "text": PAGE, "image":
                                                     base64.b64encode(_png()).decode()}) + "\n")
    assert main(["websight", str(tmp_path / "rows.jsonl")]) == 0
    assert (tmp_path / "data" / "websight.jsonl").is_file()
    assert '"kept": 1' in capsys.readouterr().out
    assert main(["websight", str(tmp_path / "nowhere")]) == 2
    assert "nothing is downloaded" in capsys.readouterr().err
    with pytest.raises(SourceError, match="unknown dataset"):
        prepare("imagenet", str(tmp_path))


@pytest.mark.parametrize("name, file, rows_format", [
    ("chartmimic", "chartmimic_direct_v1.jsonl", "chartmimic"),
    ("design2code", "design2code_testset.jsonl", "design2code"),
    ("aeslides", "aeslides_examples.jsonl", "aeslides"),
])
def test_real_benchmark_files_are_kept_whole(name, file, rows_format, benchmark_file,
                                             benchmark_rows, tmp_path):
    out = tmp_path / f"{name}.jsonl"
    report = prepare(name, str(benchmark_file(file)), str(out))
    print(report.summary())
    assert report.kept == len(benchmark_rows(file)) and not report.dropped, report.summary()
    assert len(load_tasks(Source(str(out), rows_format))) == report.kept
    if name == "chartmimic":
        assert np.mean(["figsize" in r for r in _rows(out)]) > 0.9
