"""Fixtures shared by the test modules."""

from __future__ import annotations

from collections.abc import Iterator
from concurrent.futures import Executor

import pytest

from greenwave.scenarios.runner import default_executor


@pytest.fixture(scope="module")
def pool() -> Iterator[Executor]:
    """Two worker processes shared by a module's SUMO runs (spawned once per module)."""
    ex = default_executor(2)
    try:
        yield ex
    finally:
        ex.shutdown(wait=True, cancel_futures=True)
