"""USCC validation agrees with python-stdnum, plus the letter department codes that
GB 32100-2015 allows and stdnum refuses; division prefixes."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from stdnum.cn import uscc as stdnum_uscc

from schemas.errors import MalformedError
from schemas.identifiers import (
    DEPARTMENT_LETTERS,
    USCC_ALPHABET,
    division_region,
    make_uscc,
    uscc_check_character,
    validate_uscc,
)

ALPHABET = "".join(sorted(USCC_ALPHABET))
codes = st.text(st.sampled_from(ALPHABET + "IOSVZa-٣"), min_size=16, max_size=19)


def stdnum_accepts(code: str) -> bool:
    return bool(stdnum_uscc.is_valid(code)) and stdnum_uscc.compact(code) == code


@settings(max_examples=2000, deadline=None)
@given(codes)
def test_agrees_with_stdnum_on_numeric_departments(code: str) -> None:
    if code[:1] in DEPARTMENT_LETTERS:
        return  # covered below: we accept what stdnum refuses there
    try:
        accepted = validate_uscc(code) == code
    except MalformedError:
        accepted = False
    assert accepted == stdnum_accepts(code)


@settings(max_examples=500, deadline=None)
@given(st.text(st.sampled_from("0123456789"), min_size=16, max_size=16), st.booleans())
def test_valid_codes_pass_and_a_changed_check_character_fails(digits: str, tamper: bool) -> None:
    code = make_uscc("9" + digits)
    assert stdnum_uscc.is_valid(code)
    assert validate_uscc(code) == code
    if tamper:
        wrong = next(c for c in ALPHABET if c != code[-1])
        with pytest.raises(MalformedError, match="check character"):
            validate_uscc(code[:-1] + wrong)


def test_letter_department_codes_are_accepted_when_their_check_matches() -> None:
    code = make_uscc("Y1310000MA1FL1234")
    assert not stdnum_uscc.is_valid(code)  # stdnum's verdict
    assert validate_uscc(code) == code
    with pytest.raises(MalformedError):
        validate_uscc(code[:-1] + ("0" if code[-1] != "0" else "1"))
    with pytest.raises(MalformedError):
        validate_uscc("I1310000MA1FL12340")  # I is no department letter


def test_division_region_is_the_provincial_prefix() -> None:
    assert division_region("310118") == "31"
    assert division_region("430102") == "43"


@given(st.text(alphabet="0123456789ABCDEFGHJKLMNPQRTUWXY", min_size=17, max_size=17))
def test_the_direct_check_character_equals_stdnums(first17: str) -> None:
    assert uscc_check_character(first17) == stdnum_uscc.calc_check_digit(first17)


@pytest.mark.parametrize("first", ["", "91310000MA1FL000", "91310000MA1FL00000"])
def test_the_check_character_covers_exactly_17_characters(first: str) -> None:
    with pytest.raises(ValueError, match="17 characters"):
        uscc_check_character(first)
