"""Region sign-in for the web console (ledger.sessions holds every rule): a challenge,
the session it opens as an HttpOnly, SameSite=Strict cookie (Secure over TLS), who is
signed in, and signing out."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, Request, Response
from pydantic import BaseModel, ConfigDict, Field, ValidationError
from starlette.concurrency import run_in_threadpool

from api.deps import SESSION_COOKIE, ReaderDep, ServicesDep, read_body
from ledger.sessions import SESSION_PREFIX
from schemas.entry import KEY_ID_PATTERN
from schemas.errors import MalformedError, SignatureError
from schemas.limits import SESSION_SIGN_IN_BYTES_MAX

router = APIRouter(prefix="/v1/session", tags=["session"])

REGION_PATTERN = r"^[1-9][0-9]$"
NONCE_PATTERN = r"^[A-Za-z0-9_-]{16,64}$"


class ChallengeWire(BaseModel):
    nonce: str
    expires: int = Field(description="Unix seconds after which the challenge is refused")
    message: str = Field(description="What to sign, with <region> and <key> to fill in")


class SignInWire(BaseModel):
    model_config = ConfigDict(strict=True, extra="forbid", frozen=True)

    region: Annotated[str, Field(pattern=REGION_PATTERN)]
    key: Annotated[str, Field(pattern=KEY_ID_PATTERN)]
    nonce: Annotated[str, Field(pattern=NONCE_PATTERN)]
    sig: Annotated[str, Field(min_length=88, max_length=88)]


class SessionWire(BaseModel):
    role: str
    region: str | None = None
    expires: int | None = None


@router.post("/challenge", response_model=ChallengeWire)
def challenge(services: ServicesDep) -> ChallengeWire:
    """A nonce to sign with the region's key (single use, SESSION_CHALLENGE_TTL_S)."""
    issued = services.sessions.challenge(services.clock())
    template = f"{SESSION_PREFIX}\\n{issued.nonce}\\nregion:<region>\\n<key>\\n"
    return ChallengeWire(nonce=issued.nonce, expires=issued.expires_s, message=template)


def _sign_in_body() -> dict[str, Any]:
    schema = SignInWire.model_json_schema()
    return {"requestBody": {"required": True, "content": {"application/json": {"schema": schema}}}}


async def _sign_in_wire(request: Request) -> SignInWire:
    """The body, read no further than SESSION_SIGN_IN_BYTES_MAX (413 past it): anyone
    may post here, so FastAPI's own body parameter (read whole first) is not used."""
    raw = await read_body(request, SESSION_SIGN_IN_BYTES_MAX)
    try:
        return SignInWire.model_validate_json(raw)
    except ValidationError as exc:
        first = exc.errors()[0]  # a ValidationError holds at least one
        field = ".".join(str(part) for part in first["loc"]) or None
        message = first["msg"]
        raise MalformedError(f"{field or 'request'}: {message}", field=field) from None


@router.post("", response_model=SessionWire, openapi_extra=_sign_in_body())
async def sign_in(services: ServicesDep, request: Request, response: Response) -> SessionWire:
    """Open a session for `region` if `sig` is its current key's Ed25519 signature over
    the challenge message; sets the session cookie."""
    body = await _sign_in_wire(request)
    lookup = services.ledger.reads().key
    token, session = await run_in_threadpool(
        services.sessions.sign_in,
        body.region,
        body.key,
        body.nonce,
        body.sig,
        lookup,
        services.clock(),
    )
    previous = request.cookies.get(SESSION_COOKIE)
    if previous:  # one browser, one session: the cookie replaced ends its session too
        services.sessions.sign_out(previous)
    response.set_cookie(
        SESSION_COOKIE,
        token,
        max_age=services.sessions.session_ttl_s,
        path="/",
        secure=request.url.scheme == "https",
        httponly=True,
        samesite="strict",
    )
    return SessionWire(role="region", region=session.reader.principal, expires=session.expires_s)


@router.get("", response_model=SessionWire)
def whoami(services: ServicesDep, request: Request, reader: ReaderDep) -> SessionWire:
    """Who the request reads as: a region while its session lasts, else public."""
    token = request.cookies.get(SESSION_COOKIE)
    lookup = services.ledger.reads().key
    session = services.sessions.reader(token, services.clock(), lookup) if token else None
    if session is None:
        return SessionWire(role=reader.role, region=None)
    return SessionWire(role="region", region=session.reader.principal, expires=session.expires_s)


@router.delete("", status_code=204)
def sign_out(services: ServicesDep, request: Request, response: Response) -> None:
    """End the session of the cookie, if any, and clear the cookie."""
    token = request.cookies.get(SESSION_COOKIE)
    if token:
        services.sessions.sign_out(token)
    response.delete_cookie(SESSION_COOKIE, path="/", httponly=True, samesite="strict")


def signed_in_region(reader: ReaderDep) -> str:
    """The region a desk read is for: a region's session or signed request, else 401."""
    if reader.role != "region" or reader.principal is None:
        raise SignatureError("the regulator desk needs a region's session")
    return reader.principal


RegionDep = Annotated[str, Depends(signed_in_region)]
