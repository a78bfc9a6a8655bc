"""A Status profile derived from its recovery phrase (identity spec sections 1.4-1.5 and 7)."""

from __future__ import annotations

from dataclasses import dataclass, field

from ..crypto.keys import KeyPair, uncompress
from .address import ethereum_address, key_uid
from .alias import alias
from .chatkey import chat_key_text
from .colorhash import ColorHash, color_hash
from .derivation import CHAT_KEY_PATH, DEFAULT_WALLET_PATH, derive_private_key, master_public_key
from .emojihash import emoji_hash
from .mnemonic import normalize_recovery_phrase, phrase_seed


@dataclass(frozen=True, slots=True)
class Identity:
    """A messaging identity: the chat key pair plus the values status-go stores with the profile.

    ``chat_key.public`` is the 33-byte compressed key; :attr:`public_key` is the 65-byte uncompressed one.
    ``repr()`` never shows the private key.
    """

    chat_key: KeyPair
    key_uid: str = field(repr=False)
    master_address: str = field(repr=False)
    """EIP-55 address of the BIP32 master key: the profile's ``address`` setting."""
    wallet_address: str = field(repr=False)
    """EIP-55 address of the default wallet account ``m/44'/60'/0'/0/0``."""

    @property
    def private_key(self) -> bytes:
        """The 32-byte chat private key (signs and decrypts messages)."""
        return self.chat_key.private

    @property
    def public_key(self) -> bytes:
        """The 65-byte uncompressed chat public key (``0x04...`` on the wire and in JSON)."""
        return uncompress(self.chat_key.public)

    @property
    def public_key_hex(self) -> str:
        """``0x04...``: the contact id / message ``from`` form."""
        return "0x" + self.public_key.hex()

    @property
    def chat_key_text(self) -> str:
        """The ``zQ3sh...`` form shown and shared as "chat key"."""
        return chat_key_text(self.chat_key.public)

    @property
    def chat_address(self) -> str:
        """EIP-55 address of the chat key."""
        return ethereum_address(self.chat_key.public)

    @property
    def name(self) -> str:
        """The default three-word name."""
        return alias(self.chat_key.public)

    @property
    def emoji_hash(self) -> list[str]:
        return emoji_hash(self.chat_key.public)

    @property
    def color_hash(self) -> ColorHash:
        return color_hash(self.chat_key.public)


def identity_from_seed(seed: bytes) -> Identity:
    """The identity of a 16..64-byte BIP32 seed (chat key at ``m/43'/60'/1581'/0'/0``)."""
    chat = KeyPair.from_private(derive_private_key(seed, CHAT_KEY_PATH))
    wallet = KeyPair.from_private(derive_private_key(seed, DEFAULT_WALLET_PATH))
    master = master_public_key(seed)
    return Identity(
        chat_key=chat,
        key_uid=key_uid(master),
        master_address=ethereum_address(master),
        wallet_address=ethereum_address(wallet.public),
    )


def identity_from_phrase(phrase: str, passphrase: str = "") -> Identity:
    """The identity of a recovery phrase, as the Status app restores it.

    The phrase is validated (:class:`InvalidRecoveryPhrase` and subclasses on a wrong word count, an unknown
    word or a bad checksum) and its words are joined with single spaces before the seed is computed.
    ``passphrase`` is always ``""`` in Status's own flows.
    """
    return identity_from_seed(phrase_seed(normalize_recovery_phrase(phrase), passphrase))
