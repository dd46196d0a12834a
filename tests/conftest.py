"""Longest files first: with `-n 2 --dist loadfile` the two end-to-end pipeline tests (minutes each) start at once,
one per worker, and the short files fill in behind them."""

from __future__ import annotations

import pytest

SLOWEST_FIRST = ("test_pipeline_pretrained.py", "test_pipeline.py", "test_serve.py", "test_trainers.py")


def pytest_collection_modifyitems(session: pytest.Session, config: pytest.Config, items: list[pytest.Item]) -> None:
    rank = {name: i for i, name in enumerate(SLOWEST_FIRST)}
    items.sort(key=lambda item: rank.get(item.path.name, len(rank)))  # stable: the rest keep their order
