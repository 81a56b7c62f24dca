"""Identifiers of the domain: USCC (GB 32100-2015), GB/T 2260 division codes and
receipt numbers.

USCC validation goes through python-stdnum (`stdnum.cn.uscc`), which only accepts a
numeric registration-department code (first character). GB 32100-2015 also assigns
letter department codes (A–N, Y: e.g. Y for "other"), and real certificates carry them.
We accept those too: the first character must be one of the standard's department
letters, the second a category digit, and the check character must match stdnum's
own weighted mod-31 check, computed on the same alphabet. Everything else is stdnum's
verdict.
"""

from __future__ import annotations

import base64
import hashlib
import unicodedata
from operator import mul

from stdnum import exceptions as stdnum_exceptions
from stdnum.cn import uscc as stdnum_uscc

from schemas.errors import MalformedError

USCC_LENGTH = 18
# Registration departments with letter codes in GB 32100-2015 table 1 (I, O, S, V, Z
# are never used, as in the rest of the code).
DEPARTMENT_LETTERS = frozenset("ABCDEFGHJKLMNY")


# stdnum.cn.uscc's alphabet (GB 32100-2015: digits and 21 letters, no I O S V Z).
USCC_CHARACTERS = "0123456789ABCDEFGHJKLMNPQRTUWXY"
USCC_ALPHABET = frozenset(USCC_CHARACTERS)
# GB 32100-2015 check character: weights 3^i mod 31 over the first 17 characters.
USCC_WEIGHTS = (1, 3, 9, 27, 19, 26, 16, 17, 20, 29, 25, 13, 8, 24, 10, 30, 28)
_USCC_VALUE = {character: value for value, character in enumerate(USCC_CHARACTERS)}


def uscc_check_character(first17: str) -> str:
    """The check character of a USCC whose first 17 characters are ``first17`` (all in
    USCC_ALPHABET), computed directly: the same as ``stdnum.cn.uscc.calc_check_digit``
    without its cleaning pass (tests/schemas/test_identifiers.py proves them equal)."""
    if len(first17) != len(USCC_WEIGHTS):
        raise ValueError(f"a USCC check character covers {len(USCC_WEIGHTS)} characters")
    # map() in C, not a generator: twice as fast, and every enrolment and peer passes here.
    total = sum(map(mul, map(_USCC_VALUE.__getitem__, first17), USCC_WEIGHTS))
    return USCC_CHARACTERS[-total % 31]


def validate_uscc(code: str, *, field: str = "member") -> str:
    """Return ``code`` if it is a valid USCC, else raise MalformedError.

    A code already in stdnum's compact form (the wire pattern guarantees it for entries)
    is checked by computing its check character directly, instead of ``validate()``'s
    three passes through its generic cleaner; anything else, and every
    failure, goes through ``stdnum.cn.uscc.validate`` for its verdict and message.
    tests/schemas/test_identifiers.py proves the two paths agree."""
    if (
        len(code) == USCC_LENGTH
        and code[:8].isascii()
        and code[:8].isdigit()
        and USCC_ALPHABET.issuperset(code[8:])
        and uscc_check_character(code[:-1]) == code[-1]
    ):
        return code
    try:
        return str(stdnum_uscc.validate(code))
    except stdnum_exceptions.InvalidChecksum as exc:
        raise MalformedError(f"USCC {code} has a wrong check character", field=field) from exc
    except stdnum_exceptions.ValidationError as exc:
        if _valid_letter_department(code):
            return code
        raise MalformedError(f"{code} is not a valid USCC: {exc}", field=field) from exc


def _valid_letter_department(code: str) -> bool:
    if len(code) != USCC_LENGTH or code[0] not in DEPARTMENT_LETTERS:
        return False
    if not code[1].isdigit() or not code[2:8].isdigit():
        return False
    try:
        # stdnum's check digit over its own alphabet, which contains the letters.
        return bool(stdnum_uscc.calc_check_digit(code[:-1]) == code[-1])
    except ValueError:
        return False


def make_uscc(prefix17: str) -> str:
    """A USCC from its first 17 characters (demo and tests)."""
    return prefix17 + str(stdnum_uscc.calc_check_digit(prefix17))


def division_region(division: str) -> str:
    """The provincial prefix of a 6-digit GB/T 2260 division code."""
    return division[:2]


def normalise_receipt_number(text: str) -> str:
    """The form in which receipt numbers are compared: two spellings of one number are
    the same receipt, so it cannot be refunded twice by writing it differently.

    One documented normalisation, in this order:
    1. Unicode NFKC: compatibility forms fold to their plain form, e.g. full-width
       ``ＲＥＣ－００１`` becomes ``REC-001`` and the ideographic space a plain space;
    2. ``str.casefold()``: case is ignored (``REC-001`` and ``rec-001`` are one receipt);
    3. NFKC again, because case folding can yield a few characters that are not in NFKC
       form (so the function is idempotent);
    4. surrounding whitespace is stripped.
    """
    folded = unicodedata.normalize("NFKC", text).casefold()
    return unicodedata.normalize("NFKC", folded).strip()


RECEIPT_REF_PREFIX = b"alliance-ledger/v1/receipt\n"


def receipt_ref(merchant: str, store: str, number: str) -> str:
    """A receipt's identifier on the log (DESIGN §3a): base64url, unpadded, of
    SHA-256("alliance-ledger/v1/receipt\\n" ‖ merchant ‖ "\\n" ‖ store ‖ "\\n" ‖ number
    normalised by normalise_receipt_number()), UTF-8. The seller and the accepting
    store both hold the paper receipt, so both compute it; the log never sees the number,
    which with the store and the time could single out a consumer (PIPL art. 4)."""
    message = RECEIPT_REF_PREFIX + "\n".join(
        (merchant, store, normalise_receipt_number(number))
    ).encode("utf-8")
    digest = hashlib.sha256(message).digest()
    return base64.urlsafe_b64encode(digest).rstrip(b"=").decode("ascii")
