"""Fixtures of the fault-injection suite (helpers live in ``faultkit.py``)."""

from __future__ import annotations

import os
import time
from collections.abc import Iterator

import pytest

from tests.acceptance.faultkit import Faults
from tests.conftest import Project


@pytest.fixture
def faults(project: Project) -> Iterator[Faults]:
    """A project with the fault tasks module; ``LITEQUEUE_FAULT_SEED`` replays a run."""
    seed = int(os.environ.get("LITEQUEUE_FAULT_SEED") or time.time_ns() % 1_000_000)
    yield Faults(project, seed)
