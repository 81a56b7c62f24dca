"""``HttpClient``: a node's ``LogClient`` over the HTTP API (``alliance serve``).

Reads that need a role are signed (RFC 9421, signing.http) with the node's own key: a
region's key for its endorsement node, an auditor's (for now the operator's) for the
audit. Nothing a server answers is trusted here: the nodes verify every checkpoint,
leaf, proof and key before use. A refusal comes back as the typed error of its problem
document (schemas.errors), a server that cannot be reached as NotReadyError.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

import httpx

from ledger.merkle.tiles import entries_path, parse_entry_bundle
from schemas import errors
from schemas.canonical import parse_json
from schemas.errors import AllianceError, ConfigError, NotReadyError, VerificationError
from schemas.limits import ENTRY_BUNDLE_SIZE, NODE_HTTP_TIMEOUT_S
from signing.http import signed_headers
from signing.keys import PrivateKey, b64decode

Json = dict[str, Any]


def _utc_now() -> datetime:
    return datetime.now(UTC)


class HttpClient:
    """The log at ``url``, read and written over HTTP; ``key`` signs reads that need a
    role (None: public reads only). ``clock`` gives ``created`` (the server's clock must
    be within its skew of it)."""

    def __init__(
        self,
        url: str,
        key: PrivateKey | None = None,
        clock: Callable[[], datetime] = _utc_now,
        timeout_s: float = NODE_HTTP_TIMEOUT_S,
    ) -> None:
        self.url = url.rstrip("/")
        self.key = key
        self.clock = clock
        self.http = httpx.Client(base_url=self.url, timeout=timeout_s)

    def close(self) -> None:
        self.http.close()

    def __enter__(self) -> HttpClient:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    # --- the LogClient protocol ------------------------------------------------------

    def checkpoint(self) -> str:
        return self._send("GET", "/checkpoint").text

    def leaves(self, start: int, end: int) -> list[bytes]:
        """Leaves start ≤ seq < end from the entry bundles (C2SP tlog-tiles), which the
        log serves to auditors and the operator only."""
        leaves: list[bytes] = []
        index = start // ENTRY_BUNDLE_SIZE
        while start + len(leaves) < end:
            first = index * ENTRY_BUNDLE_SIZE
            width = min(ENTRY_BUNDLE_SIZE, end - first)
            data = self._send("GET", "/" + entries_path(index, width), signed=True).content
            bundle = parse_entry_bundle(data)
            if len(bundle) != width:
                raise VerificationError(f"bundle {index} holds {len(bundle)} leaves, not {width}")
            leaves += bundle[max(0, start - first) :]
            index += 1
        return leaves

    def consistency(self, old: int, new: int) -> list[bytes]:
        if old in (0, new):
            return []
        proof = self._json("GET", "/v1/proofs/consistency", params={"old": old, "new": new})
        return [b64decode(h, size=32, what="proof hash") for h in proof["hashes"]]

    def awaiting(self, region: str) -> list[int]:
        return [int(item["seq"]) for item in self.pending(region)["entries"]]

    def submit(self, document: Json) -> Json:
        return self._json("POST", "/v1/entries", body=document)

    def cosigned(self, region: str) -> str | None:
        """Over HTTP the log pushes checkpoints to its witnesses (tlog-witness): a
        witness keeps what it cosigned itself and asks the log for nothing."""
        return None

    def add_cosignature(self, region: str, size: int, line: str, timestamp_s: int) -> None:
        raise ConfigError(
            "over HTTP the log sends checkpoints to its witnesses: run `alliance witness "
            "--listen` and `alliance serve --witness REGION=URL`"
        )

    # --- further reads ---------------------------------------------------------------

    def pending(self, region: str, after: int = -1) -> Json:
        params = {"region": region, "after": after}
        return self._json("GET", "/v1/endorsements/pending", params=params, signed=True)

    def inclusion(self, seq: int, tree_size: int) -> list[bytes]:
        params = {"seq": seq, "tree_size": tree_size}
        proof = self._json("GET", "/v1/proofs/inclusion", params=params)
        return [b64decode(h, size=32, what="proof hash") for h in proof["hashes"]]

    def entry(self, seq: int) -> Json:
        return self._json("GET", f"/v1/entries/{seq}", signed=self.key is not None)

    def keys(self, key_ids: list[str]) -> Json:
        """The log's rows of ``key_ids`` (at most KEYS_PAGE_MAX), each with its declaring
        entry and that entry's inclusion proof."""
        return self._json("GET", "/v1/keys", params={"key": key_ids})

    def public_member(self, uscc: str) -> Json:
        return self._json("GET", f"/v1/public/members/{uscc}")

    def obligations(self, uscc: str) -> Json:
        """The obligations ``uscc`` owes or is owed (its region, auditors, the operator)."""
        return self._json("GET", f"/v1/members/{uscc}/obligations", signed=True)

    def night(self, day: str) -> Json:
        return self._json("GET", f"/v1/reconciliations/{day}", signed=True)

    # --- the wire --------------------------------------------------------------------

    def _json(
        self,
        method: str,
        path: str,
        *,
        params: dict[str, Any] | None = None,
        body: Json | None = None,
        signed: bool = False,
    ) -> Json:
        response = self._send(method, path, params=params, body=body, signed=signed)
        value = parse_json(response.content)
        if not isinstance(value, dict):
            raise VerificationError(f"{path} answered JSON that is not an object")
        return value

    def _send(
        self,
        method: str,
        path: str,
        *,
        params: dict[str, Any] | None = None,
        body: Json | None = None,
        signed: bool = False,
    ) -> httpx.Response:
        request = self.http.build_request(method, path, params=params, json=body)
        if signed:
            if self.key is None:
                raise ConfigError(f"{path} needs a signed request: give the node its key")
            created = int(self.clock().timestamp())
            added = signed_headers(
                method, str(request.url), self.key, created=created, body=request.content
            )
            request.headers.update(added)
        try:
            response = self.http.send(request)
        except httpx.TransportError as exc:
            raise NotReadyError(f"the log at {self.url} cannot be reached: {exc}") from exc
        if response.is_success:
            return response
        raise problem_error(response)


def problem_error(response: httpx.Response) -> AllianceError:
    """The typed error a problem document (RFC 9457) names, with its detail; an answer
    that is no problem document is a VerificationError (the server misbehaves)."""
    try:
        problem = response.json()
        slug = str(problem["type"]).rsplit("/", 1)[-1]
        detail = str(problem.get("detail", problem.get("title", "")))
    except (ValueError, KeyError, TypeError):
        return VerificationError(f"the server answered {response.status_code} without a problem")
    for value in vars(errors).values():
        if (
            isinstance(value, type)
            and issubclass(value, AllianceError)
            and value.type_slug == slug
            and value.status == response.status_code
        ):
            return value(detail)
    return VerificationError(f"the server answered {response.status_code} {slug}: {detail}")


__all__ = ["HttpClient", "problem_error"]
