"""Shared fixtures for env tests: one warm chart env per test session, the ChartMimic programs."""
from __future__ import annotations

import pytest


@pytest.fixture(scope="session")
def chartmimic(benchmark_rows) -> list[dict]:
    """The 397 ChartMimic Direct-Mimic reference programs ({id, chart_type, code})."""
    return benchmark_rows("chartmimic_direct_v1.jsonl")


@pytest.fixture(scope="session")
def chart_env():
    """A warm ChartEnv (its sandbox server preloads matplotlib once for the whole session)."""
    from envs.chart.env import ChartEnv
    env = ChartEnv()
    yield env
    env.close()


@pytest.fixture(scope="session")
def spread_sample(chartmimic):
    """sample(n): n ChartMimic programs spread over the chart types, deterministically (the
    first of every type, then the second of every type, ...)."""
    by_type: dict[str, list[dict]] = {}
    for program in chartmimic:
        by_type.setdefault(program["chart_type"], []).append(program)

    def sample(n: int) -> list[dict]:
        picked, round_ = [], 0
        while len(picked) < n and any(len(v) > round_ for v in by_type.values()):
            for kind in sorted(by_type):
                if len(by_type[kind]) > round_ and len(picked) < n:
                    picked.append(by_type[kind][round_])
            round_ += 1
        return picked
    return sample
