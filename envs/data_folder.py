"""Where prepared datasets and real benchmark artifacts live: `$SDPO_DATA_DIR`, else `data/` in
the repository. The one definition the loader, the tests, the benchmarks and the evaluation tools
read, so none of them names a machine's path. Never imports jax.
"""
from __future__ import annotations

import os

DATA_DIR_VARIABLE = "SDPO_DATA_DIR"
_REPOSITORY = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def data_folder() -> str:
    return os.path.abspath(os.environ.get(DATA_DIR_VARIABLE) or os.path.join(_REPOSITORY, "data"))


def data_file(name: str) -> str:
    """The path of `name` in the data folder; FileNotFoundError naming the folder and the fix."""
    path = os.path.join(data_folder(), name)
    if not os.path.isfile(path):
        raise FileNotFoundError(f"{name} is not in the data folder {data_folder()}: set "
                                f"${DATA_DIR_VARIABLE} to a folder that holds it (README, 'Data')")
    return path
