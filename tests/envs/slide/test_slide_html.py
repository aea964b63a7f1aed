"""HTML slides (AeSlides examples) at 1280x720 in real Chromium (one browser for the module)."""
import random

import pytest

from envs.feedback import split_advisories
from envs.slide.aeslides import MEASURES
from envs.slide.html_slide import HtmlSlideEnv, collision_defects
from envs.task import Task
from envs.web.env import to_defects
from envs.eval.web_inject import KINDS, inject
from envs.eval.injection import already_defective, new_defects


@pytest.fixture(scope="module")
def slides(benchmark_rows):
    return {row["id"]: row["html"] for row in benchmark_rows("aeslides_examples.jsonl")}


@pytest.fixture(scope="module")
def env():
    slide_env = HtmlSlideEnv()
    yield slide_env
    slide_env.close()


def task():
    return Task(domain="slide_html", task_id="s", instruction="", width=1280, height=720)


@pytest.mark.parametrize("slide_id", ["deck01/page_01", "deck02/page_03"])
def test_example_slides_get_all_four_measures(env, slides, slide_id):
    fb = env.step(task(), slides[slide_id])
    assert fb.ok, fb.error
    assert fb.render_size == (1280, 720)
    for measure in MEASURES:
        value = fb.reward_parts[f"{measure}_reward"]
        assert 0.0 <= value <= 1.0, f"{slide_id}: {measure} reward {value}"
    assert fb.reward_parts["aspect_ratio"] == pytest.approx(1280 / 720, rel=1e-3), (
        "a 1280x720 slide has a 16:9 content box")


def test_a_slide_taller_than_the_canvas_loses_aspect_ratio_and_overflows(env):
    tall = ("<body style='margin:0'><div style='width:1280px;height:1100px;background:#eef'>"
            "<h1 style='margin-top:900px'>Late title</h1></div></body>")
    fb = env.step(task(), tall)
    assert fb.ok and fb.reward_parts["aspect_ratio_reward"] < 0.2
    assert any(d.kind == "overflow" for d in fb.defects), [d.message for d in fb.defects]


def test_injected_defects_on_a_slide_are_detected_and_traced(env, slides):
    def judge(html):
        judged, items, _ = env.judge(html, 1280, 720)
        return judged, split_advisories(to_defects(judged))[0] + collision_defects(judged, items)

    clean_page, clean = judge(slides["deck01/page_03"])
    rng = random.Random(3)
    tried = 0
    for kind in KINDS:
        injection = inject(clean_page.source, clean_page.layout, kind, rng, viewport_only=True,
                           avoid=already_defective(clean_page, kind))
        if injection is None:
            continue
        tried += 1
        found = new_defects(clean, judge(injection.html)[1], kind)
        assert found, f"injected {kind} at line {injection.line} was not detected"
        assert any(a <= injection.line <= b for d in found for a, b in d.lines), (kind, injection.line)
    assert tried >= 3, "the slide should offer targets for most kinds"
