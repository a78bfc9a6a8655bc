"""Typed errors of the Messenger facade (each one a readable line for the user)."""

from __future__ import annotations

from ..errors import SottovoceError


class MessengerError(SottovoceError):
    code = "messenger_error"
    default_message = "the messenger failed"


class NotStarted(MessengerError):
    code = "not_started"
    default_message = "the messenger is not connected: call start() first"


class MessengerClosed(MessengerError):
    code = "messenger_closed"
    default_message = "the messenger is closed"


class SyncTimeout(MessengerError):
    code = "sync_timeout"
    default_message = "the relay did not answer in time: is it reachable?"


class SendTimeout(MessengerError):
    code = "send_timeout"
    default_message = ("the relay has not acknowledged the message yet; it stays queued and is sent as soon as "
                       "the relay is reachable")


class WrongAccount(MessengerError):
    code = "wrong_account"
    default_message = "this pairing code belongs to another account: pair only installations of your own account"


class OwnInstallation(MessengerError):
    code = "own_installation"
    default_message = "this is this installation's own pairing code: read it on another installation"
