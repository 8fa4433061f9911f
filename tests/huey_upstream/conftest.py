"""Mark the upstream tests litequeue does not pass as strict xfails, with their reason."""

from __future__ import annotations

import pytest

from tests.huey_upstream.expected_failures import EXPECTED_FAILURES


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    for item in items:
        if "huey_upstream" not in str(item.path) or item.cls is None:
            continue
        backend = item.path.stem.removeprefix("test_")
        key = f"{item.cls.__name__}::{item.name}"
        reason = EXPECTED_FAILURES.get(key) or EXPECTED_FAILURES.get(f"{backend}:{key}")
        if reason:
            item.add_marker(pytest.mark.xfail(reason=reason, strict=True))
