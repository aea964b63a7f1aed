"""ChartMimic judge client against a scripted OpenAI-compatible server on loopback that the test
starts: good, refused, malformed, slow, flaky and unauthorised replies; no item is ever lost."""
from __future__ import annotations

import base64
import time

import pytest
from judge_server import GEN, REF, Scripted, serve

from sdpo_jax import judge as judge_lib


@pytest.fixture
def server():
    with serve() as url:
        yield url


def _judge(url: str, model: str, **kw) -> judge_lib.ChartJudge:
    options = dict(timeout_s=5.0, max_attempts=3, retry_delay_s=0.01, api_key_env="TEST_JUDGE_KEY")
    options.update(kw)
    return judge_lib.ChartJudge(judge_lib.JudgeConfig(url=url, model=model, **options))


def test_a_good_reply_is_scored_and_the_request_follows_chartmimic(server, monkeypatch):
    monkeypatch.setenv("TEST_JUDGE_KEY", "sk-test")
    result = _judge(server, "good").judge(REF, GEN)
    assert (result.score, result.reason, result.attempts) == (85.0, None, 1)
    sent = Scripted.requests[0]
    assert sent["path"] == "/v1/chat/completions" and sent["auth"] == "Bearer sk-test"
    content = sent["body"]["messages"][0]["content"]
    assert content[0] == {"type": "text", "text": judge_lib.RUBRIC}
    urls = [part["image_url"]["url"] for part in content[1:]]
    assert all(url.startswith("data:image/png;base64,") for url in urls) and len(urls) == 2
    sent_images = [base64.b64decode(url.split(",", 1)[1]) for url in urls]
    assert sent_images == [REF, GEN], "the reference goes first, the generated chart second"
    assert sent["body"]["temperature"] == 0.0


def test_score_extraction_follows_vlmevalkit():
    assert judge_lib.extract_score("Score: **91/100**\nScore: 3") == 91
    assert judge_lib.extract_score("Data: 15 ...\nFinal Score: 40\nScore: 72") == 72
    assert judge_lib.extract_score("no number here") is None


@pytest.mark.parametrize("model, reason, attempts", [
    ("refuse", "refused: I can't help", 3),
    ("filtered", "content filter", 3),
    ("garbage", "malformed response body", 3),
    ("no-score", "no 'Score: N'", 3),
    ("out-of-range", "outside 0-100", 3),
    ("denied", "HTTP 401", 1),          # a wrong key does not get better by retrying
])
def test_bad_replies_give_no_score_a_reason_and_bounded_retries(server, model, reason, attempts):
    result = _judge(server, model).judge(REF, GEN)
    assert result.score is None and reason in result.reason, result
    assert result.attempts == attempts == Scripted.calls[model]


def test_a_slow_judge_times_out_and_a_flaky_one_is_retried(server):
    started = time.monotonic()
    slow = _judge(server, "slow", timeout_s=0.3, max_attempts=2).judge(REF, GEN)
    assert slow.score is None and "did not answer within 0.3 s" in slow.reason
    assert slow.attempts == 2 and time.monotonic() - started < 5
    flaky = _judge(server, "flaky").judge(REF, GEN)
    assert (flaky.score, flaky.attempts) == (85.0, 2)


def test_an_unreachable_judge_is_reported_not_raised():
    result = _judge("http://127.0.0.1:9/v1", "good", max_attempts=2).judge(REF, GEN)
    assert result.score is None and "cannot reach the judge" in result.reason


def test_judge_all_returns_one_result_per_item_in_order(server):
    judges = {m: _judge(server, m) for m in ("good", "markdown", "refuse")}
    pairs = [(REF, GEN)] * 4
    scores = [r.score for r in judges["good"].judge_all(pairs, max_workers=3)]
    assert scores == [85.0] * 4
    assert [r.score for r in judges["markdown"].judge_all(pairs[:2])] == [91.0, 91.0]
    refused = judges["refuse"].judge_all(pairs[:2], max_workers=2)
    assert [r.score for r in refused] == [None, None] and all(r.reason for r in refused)


def test_bad_settings_are_refused_with_the_flag_to_fix():
    with pytest.raises(ValueError, match="--judge-url"):
        judge_lib.JudgeConfig(url="localhost:8000", model="m")
    with pytest.raises(ValueError, match="--judge-model"):
        judge_lib.JudgeConfig(url="http://localhost:8000", model="")
