"""Wire models of the entry envelope, `submitted` and `record` (DESIGN §3, contract).

The wire dict is the source of truth: models validate it strictly (no coercion, no
extra fields) and the canonical bytes are computed from the dict itself, so what is
signed is exactly what was sent.
"""

from __future__ import annotations

import functools
import re
from datetime import UTC, datetime
from typing import Annotated, Any, Literal, get_args

from pydantic import BaseModel, ConfigDict, Field, StringConstraints, TypeAdapter, ValidationError
from typing_extensions import TypedDict

from schemas.canonical import parse_json
from schemas.errors import MalformedError
from schemas.limits import PARSED_TIMES_MAX, SIGNATURES_PER_ENTRY_MAX

ENTRY_VERSION = 1

Kind = Literal[
    "region.genesis",
    "policy.adopted",
    "member.enrolled",
    "member.suspended",
    "member.reinstated",
    "member.withdrawn",
    "member.keys_changed",
    "member.stores_changed",
    "member.commitment_changed",
    "member.network_changed",
    "region.joined",
    "region.keys_changed",
    "operator.keys_changed",
    "return.recorded",
    "advance.paid",
    "claim.disputed",
    "dispute.resolved",
    "endorsement",
    "reconciliation.closed",
    "settlement.paid",
    "settlement.confirmed",
    "credit.notice",
    "credit.objection",
    "credit.penalty",
    "credit.restored",
]
# The tuple is read off the Literal, so the two can never disagree.
KINDS: tuple[str, ...] = get_args(Kind)

# ASCII digits only: \d would also match other scripts' digits.
RFC3339_PATTERN = (
    r"^[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}"
    r"(\.[0-9]{1,9})?(Z|[+-][0-9]{2}:[0-9]{2})$"
)
UUID_PATTERN = r"^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$"
KEY_ID_PATTERN = r"^[0-9a-f]{32}$"
# A principal: an 18-character USCC, "region:NN" or "operator".
PRINCIPAL_PATTERN = r"^([0-9A-HJ-NP-RTUW-Y]{18}|region:[1-9][0-9]|operator)$"
BASE64_PATTERN = r"^[A-Za-z0-9+/]+={0,2}$"
# Free text (names, reasons): any character but the C0 controls U+0000-U+001F and DEL.
# PostgreSQL text cannot hold NUL, and no control character belongs in a name; both
# backends must refuse the same entries, before a seq is given. Every other string of
# an entry has a pattern of printable ASCII (tests/schemas/test_strict_values.py).
PRINTABLE_TEXT_PATTERN = r"^[^\x00-\x1f\x7f]*$"
CONTROL_CHARACTERS_MESSAGE = "control characters (U+0000-U+001F, U+007F) are not allowed"

_rfc3339 = re.compile(RFC3339_PATTERN)

Rfc3339 = Annotated[str, StringConstraints(pattern=RFC3339_PATTERN)]
EntryId = Annotated[str, StringConstraints(pattern=UUID_PATTERN)]
KeyId = Annotated[str, StringConstraints(pattern=KEY_ID_PATTERN)]
Principal = Annotated[str, StringConstraints(pattern=PRINCIPAL_PATTERN)]
Base64 = Annotated[str, StringConstraints(pattern=BASE64_PATTERN, max_length=128)]


class WireModel(BaseModel):
    """Strict wire model: no coercion, no unknown fields, immutable."""

    model_config = ConfigDict(strict=True, extra="forbid", frozen=True)


class KeyModel(WireModel):
    key: KeyId
    pub: Base64


# The envelope is validated as typed dicts, not models: the writer checks every
# submission's envelope, and a TypedDict validates in about half the time of the same
# fields as nested models (no model objects are built: the wire dict itself is what
# is kept, canonicalized and logged). Same strictness: no coercion, no unknown fields.
_ENVELOPE_CONFIG = ConfigDict(strict=True, extra="forbid")


class SignatureFields(TypedDict):
    __pydantic_config__ = _ENVELOPE_CONFIG  # type: ignore[misc]

    key: KeyId
    sig: Base64


class EntryFields(TypedDict):
    __pydantic_config__ = _ENVELOPE_CONFIG  # type: ignore[misc]

    # Not Literal[1]: a Literal compares by equality, so it took true and 1.0 for 1.
    v: Annotated[int, Field(ge=ENTRY_VERSION, le=ENTRY_VERSION)]
    kind: Kind
    id: EntryId
    time: Rfc3339
    signer: Principal
    body: dict[str, Any]


class SubmittedFields(TypedDict):
    __pydantic_config__ = _ENVELOPE_CONFIG  # type: ignore[misc]

    entry: EntryFields
    signatures: Annotated[
        list[SignatureFields], Field(min_length=1, max_length=SIGNATURES_PER_ENTRY_MAX)
    ]


SUBMITTED = TypeAdapter(SubmittedFields)


class RecordModel(WireModel):
    seq: Annotated[int, Field(ge=0)]
    logged: Rfc3339
    entry: EntryFields
    signatures: list[SignatureFields]


def parse_time(text: str, *, field: str = "time") -> datetime:
    """An RFC 3339 timestamp with an explicit offset, as an aware datetime."""
    if not isinstance(text, str) or not _rfc3339.match(text):
        raise MalformedError(f"{field} must be an RFC 3339 time with offset", field=field)
    return _parse_valid_time(text, field)


# An entry's time is parsed when its envelope is checked and again when it is judged;
# remembering the last few thousand spares the second parse. Datetimes are immutable.
@functools.lru_cache(maxsize=PARSED_TIMES_MAX)
def _parse_valid_time(text: str, field: str) -> datetime:
    try:
        # fromisoformat accepts at most microseconds; trim extra fraction digits.
        trimmed = re.sub(r"(\.\d{6})\d+", r"\1", text)
        return datetime.fromisoformat(trimmed)
    except ValueError as exc:
        raise MalformedError(f"{field} is not a valid time: {exc}", field=field) from exc


def format_utc(moment: datetime) -> str:
    """The log's own time format: UTC, microseconds, `Z`."""
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def first_error(exc: ValidationError, prefix: str = "") -> MalformedError:
    """The MalformedError naming the first field ``exc`` refused."""
    error = exc.errors()[0]
    where = prefix + ".".join(str(part) for part in error["loc"])
    message = error["msg"]
    if error.get("ctx", {}).get("pattern") == PRINTABLE_TEXT_PATTERN:
        message = CONTROL_CHARACTERS_MESSAGE
    return MalformedError(f"{where}: {message}", field=where or None)


def validate_submitted(value: Any) -> SubmittedFields:
    """Validate the envelope of a `submitted` object (bodies are checked per kind)."""
    if not isinstance(value, dict):
        raise MalformedError("a submission is a JSON object {entry, signatures}")
    try:
        fields = SUBMITTED.validate_python(value)
    except ValidationError as exc:
        raise first_error(exc) from exc
    parse_time(fields["entry"]["time"])
    return fields


def parse_record(leaf: bytes) -> tuple[dict[str, Any], RecordModel]:
    value = parse_json(leaf)
    if not isinstance(value, dict):
        raise MalformedError("a record is a JSON object")
    try:
        return value, RecordModel.model_validate(value)
    except ValidationError as exc:
        raise first_error(exc) from exc
