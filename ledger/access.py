"""Who may read what: the one place a read's scope is checked (issue 9, "Who may read
what"). Every read of the API that is not public by nature asks here first.

Requests are not authenticated yet, so every reader is ``PUBLIC``. When RFC 9421
signatures land, the API's one reader dependency (api.deps.reader) will build a
``Reader`` of the verified principal and role, and these checks will widen to the scope
table of the issue (a member: entries it is party to; a region: those touching it;
auditors and the operator: everything). Nothing else changes: routes already pass the
reader in.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from schemas.errors import ForbiddenError

Role = Literal["public", "member", "region", "auditor", "operator"]

# Kinds whose disclosure is their purpose (DESIGN §7): the genesis, policies, membership,
# credit, and the log's own region and operator declarations.
PUBLIC_KIND_PREFIXES = ("policy.", "member.", "credit.", "region.", "operator.")


@dataclass(frozen=True, slots=True)
class Reader:
    """Who is reading: a role and, for members and regions, which one."""

    role: Role
    principal: str | None = None


PUBLIC = Reader("public")


def is_public_kind(kind: str) -> bool:
    return kind.startswith(PUBLIC_KIND_PREFIXES)


def check_entry(reader: Reader, seq: int, kind: str) -> None:
    """Refuse ``reader`` the entry at ``seq`` unless its kind is public (or, once readers
    are authenticated, the entry lies in the reader's scope)."""
    if is_public_kind(kind) or reader.role in ("auditor", "operator"):
        return
    raise ForbiddenError(
        f"seq {seq} is a {kind}: only public kinds are served until requests are signed",
        seq=seq,
    )


def check_entry_bundles(reader: Reader) -> None:
    """Entry bundles (/tile/entries/…) hold every leaf, public or not.

    TODO(issue 9, authentication): serve them to auditors and the operator only, once
    RFC 9421 request signatures identify them: raise ForbiddenError for every other
    reader here. Until then they are served to everyone, as the export is."""
    del reader  # everyone, for now


__all__ = ["PUBLIC", "Reader", "check_entry", "check_entry_bundles", "is_public_kind"]
