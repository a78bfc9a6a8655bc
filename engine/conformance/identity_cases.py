"""Checkers for the identity vector cases (``vectors/status-go/identity-vectors.json``).

Every expected value is read from the case. Expected objects are checked key by key and an unknown key fails
the case, so no stated value is silently skipped.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from ..crypto.keys import KeyPair, uncompress
from ..identity import derivation, multiformat
from ..identity.address import ethereum_address, key_uid
from ..identity.alias import alias, alias_from_seed
from ..identity.bigbase import key_slices, to_big_base
from ..identity.colorhash import color_hash, to_color_hash
from ..identity.emojihash import emoji_hash, to_emoji_hash
from ..identity.identicon import identicon
from ..identity.identity import identity_from_phrase, identity_from_seed
from ..identity.mnemonic import phrase_seed
from ..identity.names import ContactNames, initials
from ..identity.wordlists import emoji_alphabet
from .expect import equal, rejects, unhex
from .runner import Case, CaseFailure, Checker


def _int(value: str | int) -> int:
    """A number stated as an int, a decimal string or a ``0x`` hex string."""
    return value if isinstance(value, int) else int(value, 0)


def _outcome(case: Case, what: str, action: Callable[[], Any]) -> Any:
    """Run ``action`` as the case's ``expected_error`` demands; return its result when it must succeed.

    ``expected_error`` true: any typed rejection; a string: a typed rejection with exactly that message;
    false or absent: success.
    """
    expected_error = case.get("expected_error", False)
    if expected_error is False:
        return action()
    error = rejects(what, None, action)
    if isinstance(expected_error, str):
        equal(f"{what} error text", str(error), expected_error)
    return None


def _expected_fields(case: Case, known: set[str]) -> dict[str, Any]:
    expected = case["expected"]
    if not isinstance(expected, dict):
        raise CaseFailure("expected is not an object")
    unknown = set(expected) - known
    if unknown:
        raise CaseFailure(f"checker does not know expected field(s) {sorted(unknown)}")
    return expected


def _equal_ci(what: str, got: str, expected: str) -> None:
    equal(what, got.lower(), expected.lower())


def _prefix_ci(what: str, got: str, prefix: str) -> None:
    if not got.lower().startswith(prefix.lower()):
        raise CaseFailure(f"{what}: got {got[:40]}..., expected prefix {prefix}")


# --- BIP39 / BIP32 ---------------------------------------------------------------------------------------------


def check_bip39_seed(case: Case) -> None:
    expected = _expected_fields(case, {"seed", "master_xprv"})
    seed = phrase_seed(case["mnemonic"], case["passphrase"])
    if "seed" in expected:
        equal("seed", seed, unhex(expected["seed"]))
    if "master_xprv" in expected:
        equal("master xprv", derivation.master_xprv(seed), expected["master_xprv"])


def check_derivation_path(case: Case) -> None:
    parsed = _outcome(case, "path", lambda: derivation.parse_derivation_path(case["path"]))
    if parsed is None:
        return
    equal("indexes", list(parsed.indexes), case["expected"])
    equal("starting point", parsed.start.value, case["expected_starting_point"])


def check_mnemonic_derivation(case: Case) -> None:
    expected = _expected_fields(
        case, {"private_key", "public_key", "public_key_compressed", "address", "address_case_insensitive"}
    )
    seed = phrase_seed(case["mnemonic"], case["passphrase"])
    pair = KeyPair.from_private(derivation.derive_private_key(seed, case["path"]))
    for name, value in expected.items():
        if name == "private_key":
            equal("private key", pair.private, unhex(value))
        elif name == "public_key":
            equal("public key", uncompress(pair.public), unhex(value))
        elif name == "public_key_compressed":
            equal("compressed public key", pair.public, unhex(value))
        elif name == "address":
            equal("address", ethereum_address(pair.public), value)
        else:
            _equal_ci("address", ethereum_address(pair.public), value)


def check_mnemonic_chatkey(case: Case) -> None:
    expected = _expected_fields(
        case,
        {
            "key_uid",
            "chat_path",
            "chat_address_case_insensitive",
            "chat_public_key_prefix_case_insensitive",
            "alias",
            "wallet_path",
            "wallet_address_case_insensitive",
            "wallet_public_key_prefix_case_insensitive",
        },
    )
    identity = identity_from_phrase(case["mnemonic"], case["passphrase"])
    equal("identity from seed", identity_from_seed(phrase_seed(case["mnemonic"], case["passphrase"])), identity)
    seed = phrase_seed(case["mnemonic"], case["passphrase"])
    wallet = KeyPair.from_private(derivation.derive_private_key(seed, expected.get("wallet_path", "m")))
    for name, value in expected.items():
        if name == "key_uid":
            equal("key UID", identity.key_uid, value)
        elif name == "chat_path":
            equal("chat key path", derivation.CHAT_KEY_PATH, value)
        elif name == "chat_address_case_insensitive":
            _equal_ci("chat address", identity.chat_address, value)
        elif name == "chat_public_key_prefix_case_insensitive":
            _prefix_ci("chat public key", identity.public_key_hex, value)
        elif name == "alias":
            equal("three-word name", identity.name, value)
        elif name == "wallet_path":
            equal("default wallet path", derivation.DEFAULT_WALLET_PATH, value)
        elif name == "wallet_address_case_insensitive":
            _equal_ci("wallet address", identity.wallet_address, value)
            _equal_ci("wallet address at wallet_path", ethereum_address(wallet.public), value)
        else:
            _prefix_ci("wallet public key", "0x" + uncompress(wallet.public).hex(), value)


def check_key_uid(case: Case) -> None:
    equal("key UID", key_uid(unhex(case["master_public_key"])), case["expected"])


def check_privkey_pubkey(case: Case) -> None:
    expected = _expected_fields(case, {"public_key", "address", "address_case_insensitive"})
    pair = KeyPair.from_private(unhex(case["private_key"]))
    for name, value in expected.items():
        if name == "public_key":
            equal("public key", uncompress(pair.public), unhex(value))
        elif name == "address":
            equal("address", ethereum_address(pair.public), value)
        else:
            _equal_ci("address", ethereum_address(pair.public), value)


# --- chat key forms --------------------------------------------------------------------------------------------


def check_chatkey_zq3(case: Case) -> None:
    function = case["function"]
    action: Callable[[], str]
    if function == "SerializePublicKey":
        action = lambda: multiformat.serialize_public_key(case["key"], case["out_base"])  # noqa: E731
    elif function == "SerializeLegacyKey":
        action = lambda: multiformat.serialize_legacy_key(case["key"])  # noqa: E731
    else:
        raise CaseFailure(f"unknown function {function!r}")
    got = _outcome(case, function, action)
    if got is not None:
        equal(function, got, case["expected"])


def check_chatkey_from_zq3(case: Case) -> None:
    function = case["function"]
    action: Callable[[], str]
    if function == "DeserializePublicKey":
        action = lambda: multiformat.deserialize_public_key(case["key"], case["out_base"])  # noqa: E731
    elif function in ("DeserializeAndCompressKey", "zQ3 to compressed hex"):
        action = lambda: multiformat.deserialize_and_compress_key(case["key"])  # noqa: E731
    else:
        raise CaseFailure(f"unknown function {function!r}")
    got = _outcome(case, function, action)
    if got is not None:
        equal(function, got, case["expected"])


# --- hashes and names ------------------------------------------------------------------------------------------


def check_emojihash(case: Case) -> None:
    got = _outcome(case, "emoji hash", lambda: emoji_hash(case["pubkey"]))
    if got is None:
        return
    equal("emoji hash", got, case["expected"])
    if "expected_alphabet_indexes" in case:
        alphabet = emoji_alphabet()
        equal("emoji by index", [alphabet[i] for i in case["expected_alphabet_indexes"]], case["expected"])


def check_emojihash_core(case: Case) -> None:
    alphabet = case.get("alphabet") or [str(i) for i in range(case["alphabet_size"])]
    got = _outcome(case, "emoji hash", lambda: to_emoji_hash(_int(case["value"]), case["hash_len"], alphabet))
    if "expected" in case:
        equal("emoji hash", got, case["expected"])


def check_to_big_base(case: Case) -> None:
    digits = to_big_base(_int(case["value"]), case["base"])
    if "expected" in case:
        equal("digits", digits, case["expected"])
    if "expected_length" in case:
        equal("digit count", len(digits), case["expected_length"])


def check_key_slices(case: Case) -> None:
    slices = _outcome(case, "key slices", lambda: key_slices(unhex(case["compressed_key"])))
    if slices is None:
        return
    expected = _expected_fields(case, {"cutoff_a", "emoji", "color", "cutoff_b"})
    for name, value in expected.items():
        equal(name, getattr(slices, name), _int(value))


def _pairs(value: list[tuple[int, int]]) -> list[list[int]]:
    return [list(pair) for pair in value]


def check_colorhash(case: Case) -> None:
    got = _outcome(case, "colour hash", lambda: color_hash(case["pubkey"]))
    if got is not None:
        equal("colour hash", _pairs(got), case["expected"])


def check_colorhash_core(case: Case) -> None:
    got = to_color_hash(_int(case["value"]), case["units"], case["colors"])
    equal("colour hash", _pairs(got), case["expected"])


def check_alias_seed(case: Case) -> None:
    equal("three-word name", alias_from_seed(_int(case["seed"])), case["expected"])


def check_alias(case: Case) -> None:
    got = _outcome(case, "three-word name", lambda: alias(case["pubkey"]))
    if got is not None:
        equal("three-word name", got, case["expected"])


def check_identicon(case: Case) -> None:
    expected = _expected_fields(case, {"pattern", "bitmap"})
    icon = identicon(case["input"])
    if "pattern" in expected:
        equal("pattern", list(icon.pattern), expected["pattern"])
    if "bitmap" in expected:
        equal("fill map", [int(f) for f in icon.filled], expected["bitmap"])


def check_initials(case: Case) -> None:
    equal("initials", initials(case["full_name"], case["amount"]), case["expected"])


def check_primary_name(case: Case) -> None:
    contact = case["contact"]
    names = ContactNames(
        alias=contact.get("alias", ""),
        display_name=contact.get("display_name", ""),
        ens_name=contact.get("ens_name", ""),
        ens_verified=contact.get("ens_verified", False),
        local_nickname=contact.get("local_nickname", ""),
    )
    equal("primary name", names.primary_name, case["expected_primary"])
    if "expected_secondary" in case:
        equal("secondary name", names.secondary_name, case["expected_secondary"])


CHECKERS: dict[str, Checker] = {
    "bip39_seed": check_bip39_seed,
    "derivation_path": check_derivation_path,
    "mnemonic_derivation": check_mnemonic_derivation,
    "mnemonic_chatkey": check_mnemonic_chatkey,
    "key_uid": check_key_uid,
    "privkey_pubkey": check_privkey_pubkey,
    "chatkey_zq3": check_chatkey_zq3,
    "chatkey_from_zq3": check_chatkey_from_zq3,
    "emojihash": check_emojihash,
    "emojihash_core": check_emojihash_core,
    "to_big_base": check_to_big_base,
    "key_slices": check_key_slices,
    "colorhash": check_colorhash,
    "colorhash_core": check_colorhash_core,
    "alias_seed": check_alias_seed,
    "alias": check_alias,
    "identicon": check_identicon,
    "initials": check_initials,
    "primary_name": check_primary_name,
}
