"""Test credentials: static tokens, an HS256 secret and JWTs made with it,
and the configurations that accept them. Every secret here is test-only;
`ALL_SECRETS` lists them for the log scans."""

from __future__ import annotations

import time

import jwt

from api.auth_config import AuthConfig, JwtConfig, TokenConfig

# 64 bytes and more: long enough for HS512 too.
JWT_SECRET = "test-only-hmac-secret-" + "0123456789abcdef" * 3
OTHER_SECRET = "another-test-only-hmac-secret-" + "fedcba9876543210" * 3

ALICE_TOKEN = "test-token-alice-0123456789abcdef"
BOB_TOKEN = "test-token-bob-0123456789abcdef01"
MALLORY_TOKEN = "test-token-mallory-0123456789abcd"
UNKNOWN_TOKEN = "test-token-unknown-0123456789abcd"

TOKENS = (TokenConfig(ALICE_TOKEN, "user", "alice", admin=True),
          TokenConfig(BOB_TOKEN, "user", "bob"),
          TokenConfig(MALLORY_TOKEN, "user", "mallory"))
TOKENS_AUTH = AuthConfig("tokens", tokens=TOKENS)
JWT_SETTINGS = JwtConfig(JWT_SECRET, ("HS256",))
JWT_AUTH = AuthConfig("jwt", admins=frozenset({("user", "alice")}), jwt=JWT_SETTINGS)


def jwt_for(subject: str | None, *, key: str = JWT_SECRET, algorithm: str = "HS256", expires_in: float = 300,
            **claims: object) -> str:
    """A JWT for `subject` (no `sub` claim when None) expiring in `expires_in` seconds."""
    payload: dict[str, object] = {"exp": int(time.time() + expires_in), **claims}
    if subject is not None:
        payload["sub"] = subject
    return jwt.encode(payload, key, algorithm=algorithm)


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def unverified_jwts() -> tuple[str, str]:
    """An expired JWT and one signed with the wrong key, both for bob."""
    return jwt_for("bob", expires_in=-600), jwt_for("bob", key=OTHER_SECRET)


ALL_SECRETS = (JWT_SECRET, OTHER_SECRET, ALICE_TOKEN, BOB_TOKEN, MALLORY_TOKEN, UNKNOWN_TOKEN)
