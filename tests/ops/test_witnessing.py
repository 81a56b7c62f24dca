"""`alliance serve --witness REGION=URL` options, read before anything is served."""

from __future__ import annotations

import pytest

from ops.witnessing import parse_witnesses
from schemas.errors import MalformedError


def test_witness_options_name_a_region_and_an_http_url() -> None:
    found = parse_witnesses(["31=http://127.0.0.1:7031/", "32=https://w.example/w"])
    assert found == {"31": "http://127.0.0.1:7031", "32": "https://w.example/w"}


@pytest.mark.parametrize("option", ["31", "=http://x", "31=ftp://x", "31=127.0.0.1:7031"])
def test_a_bad_witness_option_is_a_clean_error(option: str) -> None:
    with pytest.raises(MalformedError):
        parse_witnesses([option])
