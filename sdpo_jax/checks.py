"""Field checks shared by the config dataclasses, so every section words its errors alike."""
from __future__ import annotations

from collections.abc import Iterable
from typing import Any


def require_positive_ints(owner: str, config: Any, names: Iterable[str]) -> None:
    """Raise a ValueError naming `owner.name` for each field that is not an int >= 1 (a bool is
    not a count)."""
    for name in names:
        value = getattr(config, name)
        if isinstance(value, bool) or not isinstance(value, int) or value < 1:
            raise ValueError(f"{owner}.{name} = {value!r} is invalid: expected a positive integer")
