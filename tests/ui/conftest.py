"""UI test fixtures: a qasync loop on pytest-qt's QApplication, and the integration tests' relay on 127.0.0.1."""

from __future__ import annotations

import asyncio
import os
from collections.abc import Coroutine, Iterator
from typing import Any, TypeVar

import pytest

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")

from PySide6.QtWidgets import QApplication

from tests.integration.nats_fixtures import nats_relay  # noqa: F401  (fixture)

R = TypeVar("R")


@pytest.fixture
def qloop(qapp: QApplication) -> Iterator[asyncio.AbstractEventLoop]:
    """A qasync event loop driving Qt and asyncio together, as the app runs."""
    import qasync

    from ui import theme

    theme.apply(qapp, dark=False)
    qapp.setQuitOnLastWindowClosed(False)  # as run_gui: closing windows must not stop the loop under a test
    loop = qasync.QEventLoop(qapp)
    asyncio.set_event_loop(loop)
    try:
        yield loop
    finally:
        leftover = [t for t in asyncio.all_tasks(loop) if not t.done()]  # e.g. a closed NATS client's own tasks
        for task in leftover:
            task.cancel()
        if leftover:
            loop.run_until_complete(asyncio.gather(*leftover, return_exceptions=True))
        asyncio.set_event_loop(None)
        loop.close()


def run_in(loop: asyncio.AbstractEventLoop, coro: Coroutine[Any, Any, R], timeout: float = 90.0) -> R:
    return loop.run_until_complete(asyncio.wait_for(coro, timeout))
