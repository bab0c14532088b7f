"""Bitcoin address validation: Base58Check and Bech32/Bech32m, vectors from BIP 173/350 (sipa/bech32)."""

from __future__ import annotations

import pytest

from collector.addresses import is_valid_btc_address, normalize_address

MAINNET_VALID = [
    "1A1zP1eP5QGefi2DMPTfTL5SLmv7DivfNa",  # P2PKH (the genesis coinbase)
    "1BvBMSEYstWetqTFn5Au4m4GFg7xJaNVN2",  # P2PKH
    "1BgGZ9tcN4rm9KBzDn7KprQz87SZ26SAMH",  # P2PKH of the BIP 173 test key hash 751e76e8...
    "3J98t1WpEZ73CNmQviecrnyiWrnqRhWNLy",  # P2SH
    "bc1qw508d6qejxtdg4y5r3zarvary0c5xw7kv8f3t4",  # P2WPKH, bech32 v0
    "BC1QW508D6QEJXTDG4Y5R3ZARVARY0C5XW7KV8F3T4",  # the same, all upper case
    "bc1qrp33g0q5c5txsp9arysrx4k6zdkfs4nce4xj0gdcccefvpysxf3qccfmv3",  # P2WSH, bech32 v0
    "bc1p0xlxvlhemja6c4dqv22uapctqupfhlxm9h8z3k2e72q4k9hcz7vqzk5jj0",  # P2TR, bech32m v1
    "bc1pw508d6qejxtdg4y5r3zarvary0c5xw7kw508d6qejxtdg4y5r3zarvary0c5xw7kt5nd6y",  # v1, 40-byte program
    "BC1SW50QGDZ25J",  # v16, 2-byte program
    "bc1zw508d6qejxtdg4y5r3zarvaryvaxxpcs",  # v2, 16-byte program
]

# P2PKH addresses whose hash160 starts with zero bytes start with more than one "1" (one per zero byte).
LEADING_ZERO_P2PKH = [
    "11eivc4Jib37eJS8WnTaCyFtDofm9isPh",  # hash160 = 00 || 19 bytes
    "1111111111111111111114oLvT2",  # hash160 = 20 zero bytes
]

TESTNET_VALID = [
    "tb1qrp33g0q5c5txsp9arysrx4k6zdkfs4nce4xj0gdcccefvpysxf3q0sl5k7",
    "tb1pqqqqp399et2xygdj5xreqhjjvcmzhxw4aywxecjdzew6hylgvsesf3hn0c",
    "mipcBbFg9gMiCh81Kj8tqqdgoZub1ZJRfn",
    "2MzQwSSnBHWHqSAqtTVQ6v47XtaisrJa1Vc",
]

INVALID = [
    ("bc1qw508d6qejxtdg4y5r3zarvary0c5xw7kv8f3t5", "bech32 checksum"),
    ("bc1p0xlxvlhemja6c4dqv22uapctqupfhlxm9h8z3k2e72q4k9hcz7vqh2y7hd", "v1 with bech32 instead of bech32m"),
    ("BC1S0XLXVLHEMJA6C4DQV22UAPCTQUPFHLXM9H8Z3K2E72Q4K9HCZ7VQ54WELL", "v16 with bech32 instead of bech32m"),
    ("bc1qw508d6qejxtdg4y5r3zarvary0c5xw7kemeawh", "v0 with bech32m instead of bech32"),
    ("bc1p38j9r5y49hruaue7wxjce0updqjuyyx0kh56v8s25huc6995vvpql3jow4", "invalid character in checksum"),
    ("BC130XLXVLHEMJA6C4DQV22UAPCTQUPFHLXM9H8Z3K2E72Q4K9HCZ7VQ7ZWS8R", "witness version 17"),
    ("bc1pw5dgrnzv", "1-byte program"),
    ("bc1p0xlxvlhemja6c4dqv22uapctqupfhlxm9h8z3k2e72q4k9hcz7v8n0nx0muaewav253zgeav", "41-byte program"),
    ("BC1QR508D6QEJXTDG4Y5R3ZARVARYV98GJ9P", "16-byte program for v0"),
    ("bc1p0xlxvlhemja6c4dqv22uapctqupfhlxm9h8z3k2e72q4k9hcz7v07qwwzcrf", "more than 4 padding bits"),
    ("bc1gmk9yu", "empty data"),
    ("tc1p0xlxvlhemja6c4dqv22uapctqupfhlxm9h8z3k2e72q4k9hcz7vq5zuyut", "unknown hrp"),
    ("Bc1qw508d6qejxtdg4y5r3zarvary0c5xw7kv8f3t4", "mixed case"),
    ("bc1qw508d6qejxtdg4y5r3zarvary0c5xw7Kv8f3t4", "mixed case in the data"),
    ("1A1zP1eP5QGefi2DMPTfTL5SLmv7DivfNb", "base58 checksum"),
    ("3J98t1WpEZ73CNmQviecrnyiWrnqRhWNLz", "base58 checksum"),
    ("1A1zP1eP5QGefi2DMPTfTL5SLmv7DivfN0", "0 is not base58"),
    ("11A1zP1eP5QGefi2DMPTfTL5SLmv7DivfNa", "extra leading 1"),
    (" 1A1zP1eP5QGefi2DMPTfTL5SLmv7DivfNa", "leading space"),
    ("", "empty"),
    ("bc1", "hrp only"),
    ("LVuDpNCSSj6pQ7t9Pv6d6sUkLKoqDEVUnJ", "Litecoin P2PKH (version 0x30, checksum valid)"),
]


@pytest.mark.parametrize("address", MAINNET_VALID)
def test_valid_mainnet_addresses(address: str) -> None:
    assert is_valid_btc_address(address)


@pytest.mark.parametrize("address", LEADING_ZERO_P2PKH)
def test_p2pkh_with_leading_zero_bytes_is_valid(address: str) -> None:
    assert is_valid_btc_address(address)


@pytest.mark.parametrize(("address", "why"), INVALID, ids=[why for _, why in INVALID])
def test_invalid_addresses(address: str, why: str) -> None:
    assert not is_valid_btc_address(address)
    assert not is_valid_btc_address(address, allow_testnet=True)


@pytest.mark.parametrize("address", TESTNET_VALID)
def test_testnet_is_refused_unless_allowed(address: str) -> None:
    assert not is_valid_btc_address(address)
    assert is_valid_btc_address(address, allow_testnet=True)


def test_normalize_lowercases_bech32_but_not_base58() -> None:
    assert (
        normalize_address(" BC1QW508D6QEJXTDG4Y5R3ZARVARY0C5XW7KV8F3T4 ")
        == "bc1qw508d6qejxtdg4y5r3zarvary0c5xw7kv8f3t4"
    )
    assert normalize_address("3J98t1WpEZ73CNmQviecrnyiWrnqRhWNLy") == "3J98t1WpEZ73CNmQviecrnyiWrnqRhWNLy"
