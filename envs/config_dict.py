"""Checking plain config dicts against the dataclass they configure, in one place.

Configs are data (ml_collections / JSON): a misspelt key must fail loudly with the valid names,
not be silently ignored. Never imports jax.
"""
from __future__ import annotations

import dataclasses
from typing import Any


def checked(cls: type, values: dict[str, Any] | None, what: str) -> dict[str, Any]:
    """A copy of `values` after checking every key is a field of dataclass `cls`."""
    values = dict(values or {})
    known = {f.name for f in dataclasses.fields(cls)}
    unknown = sorted(set(values) - known)
    if unknown:
        raise ValueError(f"unknown {what} option(s) {unknown}; valid: {sorted(known)}")
    return values
