"""Authentication: from a request's `Authorization` header to the subject
the broker checks Nakadi's authorization lists against.

Three authenticators, one per [auth] mode: `off` names every caller
`unauthenticated` (and the broker enforces no list for it), `tokens` looks
the bearer token up among the configured ones, `jwt` verifies a JSON Web
Token and takes the subject from a claim. A caller without credentials, or
with credentials that prove nothing, gets `Unauthenticated`, which the app
answers with 401 and `WWW-Authenticate: Bearer`.

No I/O and no HTTP framework here. A token never leaves this module: it is
in no message, no exception (PyJWT's are replaced by fixed sentences, and
not chained) and no log line; static tokens are kept as SHA-256 digests and
compared with `hmac.compare_digest`, against every entry, so the time taken
says nothing about how much of a token was right or which entry matched.
"""

from __future__ import annotations

import hashlib
import hmac
from typing import Protocol

import jwt

from broker.authorization import UNAUTHENTICATED, Subject

from .auth_config import TOKEN_SHAPE, AuthConfig, JwtConfig, TokenConfig

MISSING = "Full authentication is required to access this resource"
NOT_BEARER = "Only Bearer tokens are accepted"
MALFORMED = "The Authorization header must be 'Bearer <token>'"
INVALID = "The token is not valid"

# PyJWT's failures, most specific first, each with a sentence of our own.
_JWT_FAILURES: tuple[tuple[type[jwt.PyJWTError], str], ...] = (
    (jwt.ExpiredSignatureError, "The token has expired"),
    (jwt.ImmatureSignatureError, "The token is not valid yet"),
    (jwt.InvalidSignatureError, "The token's signature is not valid"),
    (jwt.InvalidAlgorithmError, "The token's algorithm is not accepted"),
    (jwt.InvalidAudienceError, "The token's audience is not accepted"),
    (jwt.InvalidIssuerError, "The token's issuer is not accepted"),
)


class Unauthenticated(Exception):
    """The caller has not proven who it is: 401.

    `detail` is a fixed sentence (never the token); `error` is RFC 6750's
    code for the `WWW-Authenticate` challenge: "" when no bearer token was
    presented, `invalid_request` for a malformed header, `invalid_token`
    for a token that proves nothing.
    """

    def __init__(self, detail: str, error: str = "") -> None:
        super().__init__(detail)
        self.detail = detail
        self.error = error


class Authenticator(Protocol):
    def authenticate(self, authorization: str | None) -> Subject:
        """The subject of a request whose `Authorization` header is
        `authorization` (None when absent); raises `Unauthenticated`."""
        ...


class AuthenticationOff:
    """Mode `off`: every caller is `unauthenticated`, whatever it sends."""

    def authenticate(self, authorization: str | None) -> Subject:
        return UNAUTHENTICATED


AUTHENTICATION_OFF = AuthenticationOff()


class TokenAuthenticator:
    """Mode `tokens`: static bearer tokens, each standing for a subject."""

    def __init__(self, tokens: tuple[TokenConfig, ...], admins: frozenset[tuple[str, str]]) -> None:
        assert tokens
        self._entries = tuple(
            (_digest(entry.token),
             Subject(entry.data_type, entry.value, admin=entry.admin or (entry.data_type, entry.value) in admins))
            for entry in tokens)

    def authenticate(self, authorization: str | None) -> Subject:
        digest = _digest(bearer_token(authorization))
        found = None
        for expected, subject in self._entries:
            if hmac.compare_digest(digest, expected):
                found = subject
        if found is None:
            raise Unauthenticated(INVALID, "invalid_token")
        return found


class JwtAuthenticator:
    """Mode `jwt`: a token signed with the configured key by one of the
    configured algorithms, within its `exp` and `nbf` (give or take the
    leeway), carrying the required claims, the audience and issuer when
    configured, and a non-empty string in the subject claim."""

    def __init__(self, config: JwtConfig, admins: frozenset[tuple[str, str]]) -> None:
        self._config = config
        self._admins = admins
        # Parsed once: a PEM key is not read again for every request.
        self._key = jwt.get_algorithm_by_name(config.algorithms[0]).prepare_key(config.key)
        self._options: jwt.types.Options = {
            "require": sorted({*config.required_claims, config.subject_claim}),
            "enforce_minimum_key_length": True,
        }

    def authenticate(self, authorization: str | None) -> Subject:
        config, token = self._config, bearer_token(authorization)
        try:
            claims = jwt.decode(token, self._key, algorithms=list(config.algorithms),
                                options=self._options, audience=config.audience or None,
                                issuer=config.issuer or None, leeway=config.leeway_seconds)
        except jwt.MissingRequiredClaimError as error:
            raise Unauthenticated(f"The token has no {error.claim!r} claim", "invalid_token") from None
        except (jwt.PyJWTError, ValueError, TypeError) as error:
            raise Unauthenticated(_jwt_failure(error), "invalid_token") from None
        value = claims.get(config.subject_claim)
        if not isinstance(value, str) or not value:
            raise Unauthenticated(f"The token's {config.subject_claim!r} claim is not a non-empty string",
                                  "invalid_token")
        subject = (config.subject_data_type, value)
        return Subject(*subject, admin=subject in self._admins)


def authenticator(config: AuthConfig) -> Authenticator:
    """The authenticator of the configured mode."""
    if config.mode == "tokens":
        return TokenAuthenticator(config.tokens, config.admins)
    if config.mode == "jwt":
        assert config.jwt is not None
        return JwtAuthenticator(config.jwt, config.admins)
    assert config.mode == "off", config.mode
    return AUTHENTICATION_OFF


def bearer_token(authorization: str | None) -> str:
    """The token of an `Authorization: Bearer <token>` header (the scheme
    in any case, RFC 7235); raises `Unauthenticated` for anything else."""
    if authorization is None or not authorization.strip():
        raise Unauthenticated(MISSING)
    scheme, _, credentials = authorization.strip().partition(" ")
    if scheme.lower() != "bearer":
        raise Unauthenticated(NOT_BEARER)
    token = credentials.strip()
    if not TOKEN_SHAPE.fullmatch(token):
        raise Unauthenticated(MALFORMED, "invalid_request")
    return token


def _digest(token: str) -> bytes:
    return hashlib.sha256(token.encode("utf-8", "surrogatepass")).digest()


def _jwt_failure(error: Exception) -> str:
    for failure, sentence in _JWT_FAILURES:
        if isinstance(error, failure):
            return sentence
    return INVALID
