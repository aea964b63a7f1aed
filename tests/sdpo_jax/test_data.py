"""Task datasets: real benchmark files load, bad files stop with file:line, mixing resumes exactly."""
import json

import pytest

from sdpo_jax.data import DataError, DataState, Source, TaskMixture, load_tasks, slide_brief_from_html


def test_real_benchmark_files_load_into_tasks_of_their_domain(benchmark_file):
    charts = load_tasks(Source(str(benchmark_file("chartmimic_direct_v1.jsonl")), "chartmimic"))
    slides = load_tasks(Source(str(benchmark_file("aeslides_examples.jsonl")), "aeslides"))
    assert len(charts) == 397 and {t.domain for t in charts} == {"chart"}
    assert all(t.target and "matplotlib" in t.target for t in charts)
    assert len(slides) == 71 and {t.domain for t in slides} == {"slide_html"}
    assert all((t.width, t.height) == (1280, 720) for t in slides)
    # the brief is the slide's visible text, not its markup
    assert "<div" not in slides[0].instruction and "富春山居图" in slides[0].instruction


def test_brief_skips_scripts_and_styles():
    page = "<html><head><style>p{color:red}</style></head><body><h1>Q3 results</h1>" \
           "<script>var x=1;</script><p>Revenue up  12%</p></body></html>"
    assert slide_brief_from_html(page) == "Q3 results | Revenue up 12%"


@pytest.mark.parametrize("content, needle", [
    ('{"id": 1, "code": "x=1"}\n{"id": 2, "code": \n', ":2: not valid JSON"),
    ('{"id": 1}\n', ":1: missing or empty field 'code'"),
    ('[1, 2]\n', ":1: expected a JSON object"),
    ('\n\n', "no records"),
])
def test_malformed_file_names_file_and_line(tmp_path, content, needle):
    path = tmp_path / "bad.jsonl"
    path.write_text(content)
    with pytest.raises(DataError) as err:
        TaskMixture([Source(str(path), "chartmimic")], seed=0)
    assert str(path) in str(err.value) and needle in str(err.value)


def test_missing_file_and_unknown_format_are_named(tmp_path):
    with pytest.raises(DataError, match="nope.jsonl: no such file"):
        load_tasks(Source(str(tmp_path / "nope.jsonl"), "chartmimic"))
    path = tmp_path / "a.jsonl"
    path.write_text('{"code": "x"}\n')
    with pytest.raises(DataError, match="unknown format 'csv'"):
        load_tasks(Source(str(path), "csv"))


def _write(tmp_path, name, n, field="code"):
    path = tmp_path / name
    path.write_text("".join(json.dumps({"id": f"{name}{i}", field: f"print({i})"}) + "\n"
                            for i in range(n)))
    return str(path)


def test_mixture_follows_weights_and_covers_each_epoch(tmp_path):
    a = _write(tmp_path, "a", 5)
    b = _write(tmp_path, "b", 7, field="instruction")
    mix = TaskMixture([Source(a, "chart2code", 3.0), Source(b, "slide_instructions", 1.0)], seed=1)
    tasks = mix.next_batch(400)
    share_a = sum(t.domain == "chart" for t in tasks) / len(tasks)
    assert 0.68 < share_a < 0.82, f"source a should get ~75% of prompts, got {share_a:.2f}"
    first_epoch = [t.task_id for t in tasks if t.domain == "chart"][:5]
    assert sorted(first_epoch) == [f"a{i}" for i in range(5)], "an epoch must visit every item once"


def test_resume_from_state_replays_the_same_stream(tmp_path):
    a = _write(tmp_path, "a", 5)
    b = _write(tmp_path, "b", 3)
    sources = [Source(a, "chart2code", 1.0), Source(b, "chart2code", 2.0)]
    full = TaskMixture(sources, seed=7)
    first = [t.task_id for t in full.next_batch(9)]
    saved = DataState.from_json(json.loads(json.dumps(full.state.to_json())))
    rest = [t.task_id for t in full.next_batch(11)]
    resumed = TaskMixture(sources, seed=7)
    resumed.state = saved
    assert [t.task_id for t in resumed.next_batch(11)] == rest
    assert first != rest[:9]


def test_bad_weights_are_refused(tmp_path):
    a = _write(tmp_path, "a", 2)
    with pytest.raises(DataError, match="weights must be >= 0"):
        TaskMixture([Source(a, "chart2code", -1.0)], seed=0)
