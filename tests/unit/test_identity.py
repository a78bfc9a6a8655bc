"""Identity module: recovery phrases, chat key forms, hashes and names."""

from __future__ import annotations

import base64
import contextlib
import json
import zlib
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from engine.conformance.runner import run_file
from engine.crypto.keys import CURVE_ORDER, KeyPair, uncompress
from engine.errors import SottovoceError
from engine.identity import (
    CHAT_KEY_PATH,
    BadChecksum,
    ContactNames,
    Identity,
    IdentityError,
    InvalidChatKey,
    InvalidDerivationPath,
    InvalidDisplayName,
    InvalidEntropy,
    InvalidRecoveryPhrase,
    UnknownWord,
    WrongWordCount,
    alias,
    chat_key_text,
    color_hash,
    color_id,
    customization_color_id,
    customization_color_name,
    derive_private_key,
    emoji_hash,
    identicon_data_url,
    identity_from_phrase,
    identity_from_seed,
    initials,
    installation_id,
    is_alias,
    is_valid_recovery_phrase,
    new_recovery_phrase,
    normalize_recovery_phrase,
    parse_chat_key,
    phrase_seed,
    profile_link,
    short_chat_key,
    validate_display_name,
)
from engine.identity import errors as identity_errors
from engine.identity.base58 import b58decode, b58encode
from engine.identity.derivation import parse_derivation_path
from engine.identity.errors import InvalidSeed
from engine.identity.multiformat import go_hex_decode, read_uvarint
from engine.identity.text import go_fields
from engine.identity.wordlists import adjectives, animals, emoji_alphabet

VECTORS = Path(__file__).resolve().parents[2].parent / "shared" / "vectors" / "status-go" / "identity-vectors.json"

private_keys = st.integers(min_value=1, max_value=CURVE_ORDER - 1).map(lambda d: d.to_bytes(32, "big"))
entropies = st.sampled_from([16, 20, 24, 28, 32]).flatmap(lambda n: st.binary(min_size=n, max_size=n))


def vector(case_id: str) -> dict[str, Any]:
    cases = json.loads(VECTORS.read_text(encoding="utf-8"))["cases"]
    found: dict[str, Any] = next(c for c in cases if c["id"] == case_id)
    return found


# --- conformance -----------------------------------------------------------------------------------------------


def test_identity_vectors_all_pass() -> None:
    assert VECTORS.is_file(), f"vector file missing: {VECTORS}"
    result = run_file(VECTORS)
    failures = [f"{r.case_id}: {r.reason}" for r in result.results if not r.ok]
    assert failures == []
    assert result.passed == 119


# --- word lists ------------------------------------------------------------------------------------------------


def test_word_lists_keep_duplicates_and_cut_the_emoji_reserve() -> None:
    assert len(adjectives()) == 1389
    assert len(set(adjectives())) == 1372
    assert len(animals()) == 1704
    assert len(emoji_alphabet()) == 2757
    assert all(entry and entry == entry.strip() for entry in emoji_alphabet())


# --- recovery phrases ------------------------------------------------------------------------------------------


def test_new_phrase_from_zero_entropy_is_the_bip39_vector() -> None:
    case = vector("bip39_seed-01")
    assert new_recovery_phrase(bytes.fromhex(case["entropy"])) == case["mnemonic"]


@pytest.mark.parametrize("length", [0, 15, 17, 33, 64])
def test_new_phrase_rejects_bad_entropy_length(length: int) -> None:
    with pytest.raises(InvalidEntropy):
        new_recovery_phrase(bytes(length))


@given(entropies)
def test_new_phrase_has_the_right_word_count_and_validates(entropy: bytes) -> None:
    phrase = new_recovery_phrase(entropy)
    assert len(phrase.split(" ")) == len(entropy) * 3 // 4
    assert is_valid_recovery_phrase(phrase)
    assert normalize_recovery_phrase(phrase) == phrase


@pytest.mark.parametrize(
    ("phrase", "error"),
    [
        ("", WrongWordCount),
        ("abandon " * 11 + "about extra", WrongWordCount),
        ("abandon " * 11, WrongWordCount),
        ("Abandon " + "abandon " * 10 + "about", UnknownWord),
        ("abandon " * 11 + "abcdef", UnknownWord),
        ("abandon " * 11 + "abandon", BadChecksum),
        ("test " * 12, BadChecksum),
    ],
)
def test_invalid_phrases_are_rejected_with_typed_errors(phrase: str, error: type[Exception]) -> None:
    with pytest.raises(error) as info:
        identity_from_phrase(phrase)
    assert isinstance(info.value, InvalidRecoveryPhrase)
    assert info.value.code
    assert "\n" not in str(info.value)
    assert not is_valid_recovery_phrase(phrase)


def test_unknown_word_message_names_its_position() -> None:
    with pytest.raises(UnknownWord, match="word 12"):
        normalize_recovery_phrase("abandon " * 11 + "abcdef")


def test_validation_tolerates_white_space_but_the_raw_seed_does_not() -> None:
    phrase = vector("mnemonic_chatkey-01")["mnemonic"]
    spaced = "  " + phrase.replace(" ", " \t\u3000 ") + "\n"
    assert normalize_recovery_phrase(spaced) == phrase
    assert identity_from_phrase(spaced) == identity_from_phrase(phrase)
    assert phrase_seed(spaced) != phrase_seed(phrase)


def test_status_go_restores_a_checksum_invalid_phrase_through_the_raw_seed() -> None:
    seed = phrase_seed("test " * 11 + "test")
    assert isinstance(identity_from_seed(seed), Identity)


def test_identity_matches_the_real_status_profile() -> None:
    case = vector("mnemonic_chatkey-01")
    expected = case["expected"]
    identity = identity_from_phrase(case["mnemonic"])
    assert identity.key_uid == expected["key_uid"]
    assert identity.name == expected["alias"]
    assert identity.chat_address.lower() == expected["chat_address_case_insensitive"].lower()
    assert identity.wallet_address.lower() == expected["wallet_address_case_insensitive"].lower()
    assert identity.public_key_hex.lower().startswith(expected["chat_public_key_prefix_case_insensitive"].lower())
    assert expected["chat_path"] == CHAT_KEY_PATH


def test_identity_repr_hides_the_private_key() -> None:
    identity = identity_from_phrase(vector("mnemonic_chatkey-01")["mnemonic"])
    assert identity.private_key.hex() not in repr(identity)
    assert len(identity.private_key) == 32
    assert len(identity.public_key) == 65


@settings(max_examples=25, deadline=None)
@given(entropies)
def test_phrase_to_identity_is_deterministic_and_consistent(entropy: bytes) -> None:
    phrase = new_recovery_phrase(entropy)
    first, second = identity_from_phrase(phrase), identity_from_phrase(phrase)
    assert first == second
    assert first == identity_from_seed(phrase_seed(phrase))
    assert first.chat_key == KeyPair.from_private(derive_private_key(phrase_seed(phrase), CHAT_KEY_PATH))
    assert parse_chat_key(first.chat_key_text) == first.public_key
    assert len(first.emoji_hash) == 14
    assert first.name == alias(first.public_key_hex)


@given(st.text(max_size=200))
def test_arbitrary_text_as_phrase_is_valid_or_a_typed_error(text: str) -> None:
    with contextlib.suppress(InvalidRecoveryPhrase):
        normalize_recovery_phrase(text)


@given(entropies, st.integers(min_value=0, max_value=2047))
def test_changing_the_last_word_mostly_breaks_the_checksum(entropy: bytes, replacement: int) -> None:
    from mnemonic import Mnemonic

    words = new_recovery_phrase(entropy).split(" ")
    words[-1] = Mnemonic("english").wordlist[replacement]
    with contextlib.suppress(BadChecksum):
        normalize_recovery_phrase(" ".join(words))


# --- derivation ------------------------------------------------------------------------------------------------


def test_derivation_needs_an_absolute_path_and_a_sane_seed() -> None:
    seed = phrase_seed("abandon " * 11 + "about")
    with pytest.raises(InvalidDerivationPath):
        derive_private_key(seed, "0/1")
    with pytest.raises(InvalidDerivationPath):
        derive_private_key(seed, "m/1x")
    with pytest.raises(InvalidSeed):
        derive_private_key(b"\x01" * 15, "m")
    with pytest.raises(InvalidSeed):
        derive_private_key(b"\x01" * 65, "m")


@given(st.text(max_size=40))
def test_any_path_text_parses_or_raises_the_typed_error(text: str) -> None:
    try:
        parse_derivation_path(text)
    except InvalidDerivationPath as exc:
        assert str(exc).startswith(f"error parsing derivation path {text}; at position ")


def test_huge_path_index_is_a_typed_error() -> None:
    with pytest.raises(InvalidDerivationPath, match="lower than 2"):
        parse_derivation_path("m/" + "9" * 5000)


# --- chat key forms --------------------------------------------------------------------------------------------


@given(private_keys)
def test_zq3_round_trip_for_any_key(private: bytes) -> None:
    pair = KeyPair.from_private(private)
    text = chat_key_text(pair.public)
    assert len(text) == 49
    assert text.startswith("zQ3sh")
    assert chat_key_text(uncompress(pair.public)) == text
    assert parse_chat_key(text) == uncompress(pair.public)
    assert parse_chat_key(" " + "0x" + uncompress(pair.public).hex() + "\n") == uncompress(pair.public)
    assert emoji_hash(pair.public) == emoji_hash("0x" + uncompress(pair.public).hex())
    assert color_hash(pair.public) == color_hash("0x" + uncompress(pair.public).hex().upper())
    assert 1 <= len(color_hash(pair.public)) <= 11


def test_parse_chat_key_rejects_other_forms() -> None:
    pub = uncompress(KeyPair.from_private(b"\x01" * 32).public)
    compressed_hex = "0x" + KeyPair.from_private(b"\x01" * 32).public.hex()
    bad = [
        "",
        "hello",
        compressed_hex,  # status-go does not accept 0x02/0x03 here either
        chat_key_text(pub)[:-1],
        chat_key_text(pub)[:-1] + "0",  # '0' is not base58
        "0x05" + pub.hex()[2:],
        "0x04" + "00" * 64,
        "zz" * 66,
    ]
    for text in bad:
        with pytest.raises(InvalidChatKey):
            parse_chat_key(text)


@given(st.text(max_size=140))
def test_arbitrary_chat_key_text_is_accepted_or_a_typed_error(text: str) -> None:
    with contextlib.suppress(InvalidChatKey):
        assert len(parse_chat_key(text)) == 65


@given(st.binary(max_size=60))
def test_base58_round_trip(data: bytes) -> None:
    assert b58decode(b58encode(data)) == data


def test_go_hex_and_varint_errors_follow_go() -> None:
    with pytest.raises(InvalidChatKey, match="odd length"):
        go_hex_decode("abc")
    with pytest.raises(InvalidChatKey, match=r"U\+00C3 'Ã'"):
        go_hex_decode("é0")
    assert read_uvarint(b"\xe7\x01") == (0xE7, 2)
    with pytest.raises(InvalidChatKey, match="minimally"):
        read_uvarint(b"\x81\x00")
    with pytest.raises(InvalidChatKey):
        read_uvarint(b"\x80")


def test_short_key_and_profile_link() -> None:
    case = vector("chatkey_zq3-08")
    assert short_chat_key(case["expected"]) == case["expected"][:3] + "..." + case["expected"][-6:]
    assert short_chat_key("zQ3abc") == ""
    pub = parse_chat_key(case["expected"])
    assert profile_link(pub) == "https://status.app/u#" + case["expected"]


# --- hashes, names, identicon ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "text", ["abc", "0x01", "0x02" + "11" * 32, "zQ3shPyZJnxZK4Bwyx9QsaksNKDYTPmpwPvGSjMYVHoXHeEgB"]
)
def test_hashes_reject_non_uncompressed_text_with_typed_errors(text: str) -> None:
    for function in (emoji_hash, color_hash, alias):
        with pytest.raises(InvalidChatKey):
            function(text)


def test_alias_of_a_key_is_recognised_as_an_alias() -> None:
    name = alias(KeyPair.from_private(b"\x07" * 32).public)
    assert is_alias(name)
    assert is_alias(name.lower())
    assert not is_alias("Alice Bob")
    with pytest.raises(InvalidDisplayName):
        validate_display_name(name)


@pytest.mark.parametrize(
    ("name", "ok"),
    [
        ("", True),
        ("  Alice  ", True),
        ("Bob_the-2nd", True),
        ("Abcd", False),
        ("A" * 25, False),
        ("Zoë Smith", False),
        ("alice_eth", False),
        ("alice-eth", False),
    ],
)
def test_display_name_rules(name: str, ok: bool) -> None:
    if ok:
        assert validate_display_name(name) == name.strip()
    else:
        with pytest.raises(InvalidDisplayName):
            validate_display_name(name)


def test_initials_of_non_ascii_names_use_the_replacement_character() -> None:
    assert initials("Émile Zola", 2) == "\ufffd"  # U+FFFD is already 3 bytes >= 2
    assert initials("zoë émile", 4) == "Z\ufffd"
    assert initials("a\x1cb", 2) == "A"  # U+001C is not white space for Go


def test_go_fields_matches_str_split_on_ordinary_space() -> None:
    assert go_fields(" a  b\tc\n") == ["a", "b", "c"]
    assert go_fields("a\u00a0b\u3000c") == ["a", "b", "c"]


def test_contact_names_without_alias() -> None:
    assert ContactNames(alias="").primary_name == ""
    assert ContactNames(alias="x", local_nickname="nick").secondary_name == "x"


def test_identicon_is_a_png_data_url() -> None:
    url = identicon_data_url("0x04" + "ab" * 64)
    png = base64.b64decode(url.removeprefix("data:image/png;base64,"))
    assert png.startswith(b"\x89PNG\r\n\x1a\n")
    idat = png[png.index(b"IDAT") + 4 :]
    assert len(zlib.decompressobj().decompress(idat)) == 50 * (1 + 50 * 4)


@given(private_keys)
def test_color_id_is_the_whole_key_modulo_11(private: bytes) -> None:
    pub_hex = "0x" + uncompress(KeyPair.from_private(private).public).hex()
    assert color_id(pub_hex) == int(pub_hex, 16) % 11 == color_id(KeyPair.from_private(private).public)


def test_profile_values() -> None:
    text = installation_id(bytes(range(16)))
    assert len(text) == 36
    assert text[14] == "4"
    assert text[19] in "89ab"
    with pytest.raises(IdentityError):
        installation_id(bytes(15))
    assert customization_color_name(1) == "purple"
    assert customization_color_name(99) == "blue"
    assert customization_color_id("yinyang") == 16
    assert customization_color_id("nope") == 4


def test_master_address_is_the_master_key_address() -> None:
    from engine.identity.address import ethereum_address
    from engine.identity.derivation import master_public_key

    phrase = vector("mnemonic_chatkey-01")["mnemonic"]
    identity = identity_from_phrase(phrase)
    assert identity.master_address == ethereum_address(master_public_key(phrase_seed(phrase)))
    assert identity.master_address != identity.chat_address != identity.wallet_address


# --- errors ----------------------------------------------------------------------------------------------------


def test_every_identity_error_is_typed_with_a_code_and_one_line() -> None:
    classes = [
        obj for obj in vars(identity_errors).values() if isinstance(obj, type) and issubclass(obj, IdentityError)
    ]
    assert len(classes) > 10
    for cls in classes:
        error = cls()
        assert isinstance(error, SottovoceError)
        assert cls.code and cls.code != "error"
        assert str(error) and "\n" not in str(error)
