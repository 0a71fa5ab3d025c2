"""Fixtures shared by several test files."""

import pytest


@pytest.fixture()
def registries_restored():
    """The task and reward registries as they were before the test (tests that register their own use it)."""
    from grpo_course.rewards import registry
    from grpo_course.tasks import TASKS

    saved = [(d, dict(d)) for d in (TASKS, registry._ENTRIES, registry._CALLABLES)]
    yield
    for d, before in saved:
        d.clear()
        d.update(before)
