"""Salesforce record ids derived deterministically from the world's integer ids.

A Salesforce id is 15 case-sensitive characters (3-character key prefix of the object, 2 characters of
pod, 1 reserved, 9 characters of record number) plus a 3-character suffix that makes it safe in
case-insensitive contexts (the 18-character form the APIs return). The sandbox writes the record number
in base 62 with a fixed width, so for one object the ids sort exactly as the integers do: a connector that
pages with `WHERE Id > :last ORDER BY Id` meets the order it would meet for real.
"""

from __future__ import annotations

from dataclasses import dataclass

BASE62_DIGITS = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"
POD = "8d"  # an instance/pod marker, as real ids carry one
RESERVED = "0"
NUMBER_WIDTH = 9
SUFFIX_ALPHABET = "ABCDEFGHIJKLMNOPQRSTUVWXYZ012345"
MAX_RECORD_NUMBER = 62**NUMBER_WIDTH - 1


class InvalidIdError(ValueError):
    """The text is not a Salesforce id (wrong length, characters or checksum)."""


@dataclass(frozen=True)
class DecodedId:
    prefix: str
    number: int


def checksum_suffix(id15: str) -> str:
    """The 3-character suffix: for each block of 5 characters, a bit per upper-case letter."""
    suffix = ""
    for block_start in range(0, 15, 5):
        bits = 0
        for position, char in enumerate(id15[block_start : block_start + 5]):
            if "A" <= char <= "Z":
                bits |= 1 << position
        suffix += SUFFIX_ALPHABET[bits]
    return suffix


def encode_number(number: int) -> str:
    if number < 0 or number > MAX_RECORD_NUMBER:
        raise ValueError(f"record number {number} does not fit a Salesforce id (0..{MAX_RECORD_NUMBER})")
    digits = ""
    while number:
        number, remainder = divmod(number, 62)
        digits = BASE62_DIGITS[remainder] + digits
    return digits.rjust(NUMBER_WIDTH, "0")


def make_id(prefix: str, number: int) -> str:
    """The 18-character id of record `number` of the object with key prefix `prefix`."""
    if len(prefix) != 3:
        raise ValueError(f"key prefix {prefix!r} must have 3 characters")
    id15 = prefix + POD + RESERVED + encode_number(number)
    return id15 + checksum_suffix(id15)


def decode_id(text: str) -> DecodedId:
    """Key prefix and record number of a 15- or 18-character id the sandbox issued.

    18-character ids are matched case-insensitively through their suffix, as Salesforce does.
    """
    if len(text) not in (15, 18) or not text.isalnum() or not text.isascii():
        raise InvalidIdError(text)
    id15 = text[:15]
    if len(text) == 18:
        id15 = _restore_case(id15, text[15:].upper())
        if id15 is None:
            raise InvalidIdError(text)
    body = id15[3:]
    if not body.startswith(POD + RESERVED):
        # A well-formed id the sandbox never issued: it matches no record.
        return DecodedId(prefix=id15[:3], number=-1)
    number = 0
    for char in body[len(POD) + len(RESERVED) :]:
        number = number * 62 + BASE62_DIGITS.index(char)
    return DecodedId(prefix=id15[:3], number=number)


def _restore_case(id15: str, suffix: str) -> str | None:
    if any(char not in SUFFIX_ALPHABET for char in suffix):
        return None
    chars = list(id15)
    for block, suffix_char in enumerate(suffix):
        bits = SUFFIX_ALPHABET.index(suffix_char)
        for position in range(5):
            index = block * 5 + position
            if chars[index].isalpha():
                chars[index] = chars[index].upper() if bits & (1 << position) else chars[index].lower()
    restored = "".join(chars)
    return restored
