"""Project-wide fixtures: the default run settings, and the real benchmark artifacts of the data
folder.

Tests that need them take `benchmark_rows` / `benchmark_file`; without the file they skip and
say which folder to fill (`$SDPO_DATA_DIR`, see the README's data section). CI points the
variable at its copy of the benchmark data, so there they run.
"""
from __future__ import annotations

import json
import pathlib

import pytest

from envs.data_folder import DATA_DIR_VARIABLE, data_folder


def _require(name: str) -> pathlib.Path:
    path = pathlib.Path(data_folder()) / name
    if not path.is_file():
        pytest.skip(f"{name} is not in the data folder {data_folder()}: set ${DATA_DIR_VARIABLE} "
                    f"to a folder holding the benchmark artifacts (README, 'Data')")
    return path


@pytest.fixture(scope="session")
def default_run():
    """configs/default.py read by the run config: the one source of default settings."""
    from configs.default import get_config
    from sdpo_jax.run_config import RunConfig
    return RunConfig.from_config(get_config())


@pytest.fixture(scope="session")
def benchmark_file():
    """benchmark_file(name): the path of a data-folder file, or a skip naming the folder."""
    return _require


@pytest.fixture(scope="session")
def benchmark_rows():
    """benchmark_rows(name): the JSON rows of a data-folder JSONL file (cached per session)."""
    cache: dict[str, list[dict]] = {}

    def rows(name: str) -> list[dict]:
        if name not in cache:
            with _require(name).open(encoding="utf-8") as f:
                cache[name] = [json.loads(line) for line in f if line.strip()]
        return cache[name]
    return rows
