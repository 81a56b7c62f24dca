"""The one exception tree of Alliance Ledger.

Every error a user can cause is an ``AllianceError`` with a stable ``type`` slug (the
RFC 9457 problem ``type`` suffix) and an HTTP status, so the CLI prints a message and the
API maps it to problem+json in one handler. Domain code never imports an HTTP framework.

Two families are kept apart, after Sunlight:

* ``RejectedError`` and its children fail one submission (or one batch) and leave the
  log untouched: the writer goes on.
* ``HaltError`` means the writer's view of the log can no longer be trusted (an invariant
  broke, the database disagrees with the tree); the writer must stop.
"""

from __future__ import annotations

from typing import ClassVar

PROBLEM_TYPE_BASE = "https://alliance-ledger.cn/problems/"


class AllianceError(Exception):
    """Base of every error raised by Alliance Ledger."""

    type_slug: ClassVar[str] = "error"
    status: ClassVar[int] = 400
    title: ClassVar[str] = "Alliance Ledger error"

    def __init__(self, detail: str, *, seq: int | None = None, field: str | None = None) -> None:
        super().__init__(detail)
        self.detail = detail
        self.seq = seq
        self.field = field

    @property
    def problem_type(self) -> str:
        return self.problem_type_of()

    @classmethod
    def problem_type_of(cls) -> str:
        """The RFC 9457 ``type`` URI of this error class."""
        return PROBLEM_TYPE_BASE + cls.type_slug

    def problem(self) -> dict[str, object]:
        """The RFC 9457 problem document for this error."""
        body: dict[str, object] = {
            "type": self.problem_type,
            "title": self.title,
            "status": self.status,
            "detail": self.detail,
        }
        if self.seq is not None:
            body["seq"] = self.seq
        if self.field is not None:
            body["field"] = self.field
        return body

    def __str__(self) -> str:
        where = f" (field {self.field})" if self.field else ""
        return f"{self.type_slug}: {self.detail}{where}"


# --- errors that reject one submission; nothing is written ---------------------------


class RejectedError(AllianceError):
    type_slug = "rejected"
    title = "Submission rejected"
    status = 422


class MalformedError(RejectedError):
    """Not JSON, not the schema, not canonical, or a float where integers belong."""

    type_slug = "malformed"
    title = "Malformed submission"
    status = 400


class SignatureError(RejectedError):
    """A signature does not verify, or is by a key its principal did not hold."""

    type_slug = "bad-signature"
    title = "Signature does not verify"
    status = 401


class UnknownPrincipalError(RejectedError):
    type_slug = "unknown-principal"
    title = "Unknown or inactive principal"
    status = 403


class PolicyError(RejectedError):
    """The entry is well formed and signed but breaks a rule of the alliance."""

    type_slug = "policy-violation"
    title = "Alliance rule violated"
    status = 422


class ConflictError(RejectedError):
    """The same entry id was already logged with different bytes."""

    type_slug = "conflict"
    title = "Entry id already used"
    status = 409


class StaleSizeError(ConflictError):
    """A tlog-witness add-checkpoint whose old size is not the size the witness last
    cosigned; ``size`` is that size (answered as text/x.tlog.size)."""

    type_slug = "stale-size"
    title = "Not the size this witness last cosigned"
    status = 409

    def __init__(self, detail: str, *, size: int = 0) -> None:
        super().__init__(detail)
        self.size = size


class LimitError(RejectedError):
    """A named limit was exceeded (batch size, entry size, targets per endorsement)."""

    type_slug = "limit-exceeded"
    title = "Limit exceeded"
    status = 413


# --- errors of a read or a command, not of a submission ---------------------------------


class NotFoundError(AllianceError):
    """What was asked for does not exist (a seq beyond the log, a missing file). Not a
    rejected submission: nothing was submitted."""

    type_slug = "not-found"
    title = "Not found"
    status = 404


class ForbiddenError(AllianceError):
    """The reader may not see what it asked for: outside its scope (ledger.access; an
    unsigned request is the public's)."""

    type_slug = "forbidden"
    title = "Not readable by this reader"
    status = 403


class MethodNotAllowedError(AllianceError):
    """An HTTP method the route does not take (the API's only use of it)."""

    type_slug = "method-not-allowed"
    title = "Method not allowed"
    status = 405


class AlreadyInitialisedError(AllianceError):
    """`alliance init` on a database or key folder that already holds a ledger."""

    type_slug = "already-initialised"
    title = "Already initialised"
    status = 409


class SlowClientError(AllianceError):
    """The request body did not arrive within the server's deadline: the connection is
    closed rather than held for a client that sends a byte at a time."""

    type_slug = "request-timeout"
    title = "Request body too slow"
    status = 408


# --- retryable: the submission was fine, the service could not take it now --------------


class RetryableError(AllianceError):
    """Nothing was written; the same request may succeed later (HTTP 503 with
    Retry-After)."""

    type_slug = "retry"
    title = "Try again later"
    status = 503
    retry_after_s: ClassVar[int] = 1


class QueueFullError(RetryableError):
    type_slug = "queue-full"
    title = "Writer queue full"


class BatchFailedError(RetryableError):
    """The database refused or lost a batch; nothing of it was committed. Retry."""

    type_slug = "batch-failed"
    title = "Batch not committed"


class LogBusyError(RetryableError):
    """Another writer or import holds the log's lock (`alliance import` refuses at once
    rather than wait, perhaps for hours, behind another import's audit)."""

    type_slug = "log-busy"
    title = "Log held by another writer"


class NotReadyError(RetryableError):
    """The server does not hold the log (yet): its writer cannot sync its state."""

    type_slug = "not-ready"
    title = "Not ready"


class DeadlineError(RetryableError):
    """The caller's wait for the writer passed its deadline. The entry may still be
    appended: submitting the same signed entry again answers with its seq."""

    type_slug = "deadline"
    title = "Deadline passed"


class InternalError(AllianceError):
    """A bug: what the API answers, without a traceback, for an exception outside this
    tree. Never raised on purpose; the tests require that no request causes it."""

    type_slug = "internal"
    title = "Internal error"
    status = 500


class KeyFileError(AllianceError):
    type_slug = "key-file"
    title = "Key file unreadable"
    status = 400


class ConfigError(AllianceError):
    type_slug = "config"
    title = "Configuration invalid"
    status = 500


# --- verification failures (audit, proofs, notes) ---------------------------------------


class VerificationError(AllianceError):
    """A proof, note, checkpoint or log did not verify. Verifiers raise; they never
    return a bool."""

    type_slug = "verification-failed"
    title = "Verification failed"
    status = 422


# --- errors that must halt the writer --------------------------------------------------


class HaltError(AllianceError):
    type_slug = "halted"
    title = "Writer halted"
    status = 503


class InvariantError(HaltError):
    type_slug = "invariant"
    title = "Invariant broken"
    status = 500


class TamperedError(HaltError):
    """The database holds something the writer did not write and cannot verify (a leaf
    that breaks the rules, tiles that disagree with the leaves, a checkpoint that does
    not verify). The writer stops; `alliance doctor` names the damage."""

    type_slug = "tampered"
    title = "Log database tampered with"
    status = 503


class OperatorKeyError(ConfigError):
    """The operator key given is not a key the log declared for its operator."""

    type_slug = "wrong-operator-key"
    title = "Not the log's operator key"


def invariant(condition: bool, message: str) -> None:
    """Check an invariant. Unlike ``assert`` this survives ``python -O``."""
    if not condition:
        raise InvariantError(message)
