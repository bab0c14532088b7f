"""Bitcoin address checks for declared payout addresses: Base58Check (P2PKH/P2SH) and Bech32/Bech32m (BIP 173/350).

Written out here (about 60 lines from the BIP reference code) because the PyPI `bech32` package predates
Bech32m and would reject every Taproot address.
"""

from __future__ import annotations

import hashlib

_BASE58 = "123456789ABCDEFGHJKLMNPQRSTUVWXYZabcdefghijkmnopqrstuvwxyz"
_BECH32 = "qpzry9x8gf2tvdw0s3jn54khce6mua7l"
_BECH32_CONST = 1
_BECH32M_CONST = 0x2BC830A3
_MAINNET_VERSIONS = {0x00, 0x05}
_TESTNET_VERSIONS = {0x6F, 0xC4}


def is_valid_btc_address(address: str, *, allow_testnet: bool = False) -> bool:
    """Whether `address` is a well-formed Bitcoin address with a correct checksum."""
    hrps = ("bc", "tb", "bcrt") if allow_testnet else ("bc",)
    if address[:3].lower().startswith(tuple(h + "1" for h in hrps)) or address.lower().startswith("bcrt1"):
        return _is_valid_segwit(address, hrps)
    versions = _MAINNET_VERSIONS | (_TESTNET_VERSIONS if allow_testnet else set())
    return _base58check_version(address) in versions


def normalize_address(address: str) -> str:
    """The form two addresses are compared in: Bech32 is case-insensitive, Base58 is not."""
    stripped = address.strip()
    return stripped.lower() if stripped.lower().startswith(("bc1", "tb1", "bcrt1")) else stripped


def _base58check_version(address: str) -> int | None:
    number = 0
    for char in address:
        index = _BASE58.find(char)
        if index < 0:
            return None
        number = number * 58 + index
    if number.bit_length() > 200:
        return None
    raw = number.to_bytes(25, "big")
    # Each leading "1" stands for one leading zero byte; the count must match exactly.
    leading_ones = len(address) - len(address.lstrip("1"))
    if leading_ones != len(raw) - len(raw.lstrip(b"\0")):
        return None
    payload, checksum = raw[:-4], raw[-4:]
    if hashlib.sha256(hashlib.sha256(payload).digest()).digest()[:4] != checksum:
        return None
    return payload[0]


def _polymod(values: list[int]) -> int:
    generator = (0x3B6A57B2, 0x26508E6D, 0x1EA119FA, 0x3D4233DD, 0x2A1462B3)
    checksum = 1
    for value in values:
        top = checksum >> 25
        checksum = (checksum & 0x1FFFFFF) << 5 ^ value
        for i in range(5):
            checksum ^= generator[i] if (top >> i) & 1 else 0
    return checksum


def _hrp_expand(hrp: str) -> list[int]:
    return [ord(c) >> 5 for c in hrp] + [0] + [ord(c) & 31 for c in hrp]


def _convert_bits(data: list[int], from_bits: int, to_bits: int) -> list[int] | None:
    acc = bits = 0
    out: list[int] = []
    for value in data:
        acc = (acc << from_bits) | value
        bits += from_bits
        while bits >= to_bits:
            bits -= to_bits
            out.append((acc >> bits) & ((1 << to_bits) - 1))
    if bits >= from_bits or (acc << (to_bits - bits)) & ((1 << to_bits) - 1):
        return None
    return out


def _is_valid_segwit(address: str, hrps: tuple[str, ...]) -> bool:
    if address.lower() != address and address.upper() != address:
        return False
    address = address.lower()
    hrp, sep, data_part = address.rpartition("1")
    if not sep or hrp not in hrps or not 6 <= len(data_part) <= 90 or len(address) > 90:
        return False
    if any(c not in _BECH32 for c in data_part):
        return False
    data = [_BECH32.index(c) for c in data_part]
    const = _polymod(_hrp_expand(hrp) + data)
    if const not in (_BECH32_CONST, _BECH32M_CONST) or not data[:-6]:
        return False
    version, program = data[0], _convert_bits(data[1:-6], 5, 8)
    if program is None or version > 16 or not 2 <= len(program) <= 40:
        return False
    if version == 0 and (len(program) not in (20, 32) or const != _BECH32_CONST):
        return False
    return version == 0 or const == _BECH32M_CONST
