"""app.gui's run path for an existing passphrase profile: the unlock prompt (asked again after a wrong
passphrase, without a nested event loop), then the main window painted, and everything closed on exit."""

from __future__ import annotations

import asyncio
from pathlib import Path

from PySide6.QtWidgets import QApplication, QInputDialog

from app import gui
from app.gui import AppController
from engine.messenger import Messenger
from engine.transport.relay import RelayProcess
from tests.integration.nats_fixtures import CUSTODY, PASSPHRASE, requires_nats, until
from tests.ui.conftest import run_in
from ui.main_window import MainWindow


def _prompt() -> QInputDialog | None:
    return next((w for w in QApplication.topLevelWidgets() if isinstance(w, QInputDialog) and w.isVisible()), None)


@requires_nats
def test_unlock_prompt_then_the_main_window(tmp_path: Path, nats_relay: RelayProcess,
                                            qloop: asyncio.AbstractEventLoop,
                                            capsys: object) -> None:
    async def main() -> int:
        made = await Messenger.create(tmp_path / "p", display_name="dora_the", passphrase=PASSPHRASE,
                                      custody=CUSTODY, transport_url=nats_relay.url)
        await made.close()
        controller = AppController(tmp_path / "p", nats_relay.url, custody=CUSTODY)
        run = asyncio.ensure_future(gui._run(controller, smoke=True))
        await until(lambda: _prompt() is not None, 10, "the unlock prompt")
        first = _prompt()
        assert first is not None
        first.setTextValue("not the passphrase")
        first.accept()
        await until(lambda: _prompt() not in (None, first), 10, "asked again after a wrong passphrase")
        second = _prompt()
        assert second is not None
        second.setTextValue(PASSPHRASE)
        second.accept()
        code = await asyncio.wait_for(run, 20)
        assert isinstance(controller.main_window, MainWindow)
        assert controller.messenger is None and controller.finished.is_set()  # closed by _run on exit
        return code

    assert run_in(qloop, main(), 60) == 0
    out = capsys.readouterr().out  # type: ignore[attr-defined]
    assert out.startswith("window_ms=")


def test_cancelling_the_prompt_exits_with_1(tmp_path: Path, qloop: asyncio.AbstractEventLoop) -> None:
    async def main() -> int:
        made = await Messenger.create(tmp_path / "p", display_name="dora_the", passphrase=PASSPHRASE,
                                      custody=CUSTODY)
        await made.close()
        controller = AppController(tmp_path / "p", None, custody=CUSTODY)
        run = asyncio.ensure_future(gui._run(controller, smoke=True))
        await until(lambda: _prompt() is not None, 10, "the unlock prompt")
        prompt = _prompt()
        assert prompt is not None
        prompt.reject()
        return await asyncio.wait_for(run, 10)

    assert run_in(qloop, main(), 30) == 1
