"""Identifiers of the domain: USCC (GB 32100-2015) and GB/T 2260 division codes.

USCC validation goes through python-stdnum (`stdnum.cn.uscc`), which only accepts a
numeric registration-department code (first character). GB 32100-2015 also assigns
letter department codes (A–N, Y: e.g. Y for "other"), and real certificates carry them.
We accept those too: the first character must be one of the standard's department
letters, the second a category digit, and the check character must match stdnum's
own weighted mod-31 check, computed on the same alphabet. Everything else is stdnum's
verdict.
"""

from __future__ import annotations

from stdnum import exceptions as stdnum_exceptions
from stdnum.cn import uscc as stdnum_uscc

from schemas.errors import MalformedError

USCC_LENGTH = 18
# Registration departments with letter codes in GB 32100-2015 table 1 (I, O, S, V, Z
# are never used, as in the rest of the code).
DEPARTMENT_LETTERS = frozenset("ABCDEFGHJKLMNY")


# stdnum.cn.uscc's alphabet (GB 32100-2015: digits and 21 letters, no I O S V Z).
USCC_ALPHABET = frozenset("0123456789ABCDEFGHJKLMNPQRTUWXY")


def validate_uscc(code: str, *, field: str = "member") -> str:
    """Return ``code`` if it is a valid USCC, else raise MalformedError.

    A code already in stdnum's compact form (the wire pattern guarantees it for entries)
    is checked with stdnum's own check-character function once, instead of
    ``validate()``'s three passes through its generic cleaner; anything else, and every
    failure, goes through ``stdnum.cn.uscc.validate`` for its verdict and message.
    tests/schemas/test_identifiers.py proves the two paths agree."""
    if (
        len(code) == USCC_LENGTH
        and code[:8].isascii()
        and code[:8].isdigit()
        and USCC_ALPHABET.issuperset(code[8:])
        and stdnum_uscc.calc_check_digit(code[:-1]) == code[-1]
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
