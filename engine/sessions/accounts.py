"""Creating an account, or recovering one on a new installation (spec §7.6, identity.md)."""

from __future__ import annotations

from dataclasses import dataclass

from ..identity import identity_from_phrase, installation_id, new_recovery_phrase, normalize_recovery_phrase
from ..protocol.entropy import BytesPurpose, Entropy
from ..store.port import SessionStore
from .errors import AccountExists
from .records import ACCOUNT_META, Account, account_to_bytes, load_account

PHRASE_ENTROPY_BYTES = 16
"""128 bits: a 12-word recovery phrase, as Status makes."""


@dataclass(frozen=True, slots=True)
class NewAccount:
    """A created or recovered account; ``recovery_phrase`` is shown to the user once and never stored."""

    account: Account
    recovery_phrase: str

    def __repr__(self) -> str:  # never print the phrase
        return f"NewAccount({self.account!r})"


def create_account(store: SessionStore, entropy: Entropy, now_ns: int, *, recovery_phrase: str | None = None,
                   display_name: str = "", device_name: str = "", device_type: str = "desktop") -> NewAccount:
    """Write a new installation's account into an empty store.

    Without ``recovery_phrase`` a new 12-word phrase is drawn; with one (validated: ``InvalidRecoveryPhrase``)
    the account is recovered: same identity, a **fresh installation id** and empty encryption state, so
    contacts re-key to it instead of resuming sessions it cannot read (spec §7.6 MUST).
    """
    if load_account(store) is not None:
        raise AccountExists()
    phrase = recovery_phrase
    if phrase is None:
        phrase = new_recovery_phrase(entropy.random_bytes(PHRASE_ENTROPY_BYTES, BytesPurpose.RECOVERY_PHRASE))
    identity = identity_from_phrase(phrase)
    account = Account(identity.chat_key, installation_id(entropy.random_bytes(16, BytesPurpose.INSTALLATION_ID)),
                      now_ns, display_name, device_name, device_type)
    with store.transaction() as writer:
        if load_account(writer) is not None:
            raise AccountExists()
        writer.put_meta(ACCOUNT_META, account_to_bytes(account))
    return NewAccount(account, normalize_recovery_phrase(phrase))
