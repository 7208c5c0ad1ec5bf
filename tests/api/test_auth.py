"""api.auth: bearer headers, static tokens and JWTs to subjects, every
failure an `Unauthenticated` with a fixed sentence that holds no token."""

import hashlib
import hmac
import time

import jwt
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

from api.auth import (
    AUTHENTICATION_OFF,
    JwtAuthenticator,
    TokenAuthenticator,
    Unauthenticated,
    authenticator,
    bearer_token,
)
from api.auth_config import AuthConfig, JwtConfig, auth_config
from broker.authorization import UNAUTHENTICATED, Subject

from .auth_helpers import (
    ALICE_TOKEN,
    BOB_TOKEN,
    JWT_AUTH,
    JWT_SECRET,
    OTHER_SECRET,
    TOKENS_AUTH,
    UNKNOWN_TOKEN,
    jwt_for,
)


def refused(auth, header):
    with pytest.raises(Unauthenticated) as raised:
        auth.authenticate(header)
    error = raised.value
    assert error.__cause__ is None and error.__suppress_context__ or error.__context__ is None
    if header:
        token = header.partition(" ")[2].strip()
        assert not token or token not in str(error) and token not in error.detail
    return error.detail, error.error


@pytest.fixture
def tokens():
    return authenticator(TOKENS_AUTH)


@pytest.fixture
def jwts():
    return authenticator(JWT_AUTH)


def test_auth_off_names_every_caller_unauthenticated():
    assert authenticator(AuthConfig()) is AUTHENTICATION_OFF
    for header in (None, "", "Bearer x", "Basic dXNlcjpwYXNz"):
        assert AUTHENTICATION_OFF.authenticate(header) == UNAUTHENTICATED


def test_auth_bearer_token_scheme_is_case_insensitive_and_space_tolerant():
    assert bearer_token(f"Bearer {BOB_TOKEN}") == BOB_TOKEN
    assert bearer_token(f"bearer   {BOB_TOKEN}  ") == BOB_TOKEN
    assert bearer_token(f"BEARER {BOB_TOKEN}") == BOB_TOKEN


@pytest.mark.parametrize(("header", "detail", "error"), [
    (None, "Full authentication is required to access this resource", ""),
    ("", "Full authentication is required to access this resource", ""),
    ("   ", "Full authentication is required to access this resource", ""),
    ("Basic dXNlcjpwYXNzd29yZA==", "Only Bearer tokens are accepted", ""),
    (BOB_TOKEN, "Only Bearer tokens are accepted", ""),
    ("Bearer", "The Authorization header must be 'Bearer <token>'", "invalid_request"),
    ("Bearer ", "The Authorization header must be 'Bearer <token>'", "invalid_request"),
    (f"Bearer {BOB_TOKEN} {BOB_TOKEN}", "The Authorization header must be 'Bearer <token>'", "invalid_request"),
    ("Bearer a\"b", "The Authorization header must be 'Bearer <token>'", "invalid_request"),
    (f"Bearer {UNKNOWN_TOKEN}", "The token is not valid", "invalid_token"),
    (f"Bearer {BOB_TOKEN}x", "The token is not valid", "invalid_token"),
    (f"Bearer {BOB_TOKEN[:-1]}", "The token is not valid", "invalid_token"),
    (f"Bearer {jwt_for('bob')}", "The token is not valid", "invalid_token"),
])
def test_auth_tokens_refusals(tokens, header, detail, error):
    assert refused(tokens, header) == (detail, error)


def test_auth_tokens_map_to_their_subjects_and_admin_rights(tokens):
    assert tokens.authenticate(f"Bearer {ALICE_TOKEN}") == Subject("user", "alice", admin=True)
    assert tokens.authenticate(f"Bearer {BOB_TOKEN}") == Subject("user", "bob")


def test_auth_tokens_admins_list_grants_admin_rights():
    auth = auth_config({"mode": "tokens", "admins": [{"data_type": "service", "value": "ops"}],
                        "tokens": [{"token": BOB_TOKEN, "data_type": "service", "value": "ops"}]}, {})
    assert authenticator(auth).authenticate(f"Bearer {BOB_TOKEN}") == Subject("service", "ops", admin=True)


def test_auth_tokens_from_environment_and_file_authenticate(tmp_path):
    (tmp_path / "token").write_text(f"  {BOB_TOKEN}\n")
    tokens = [{"token_env": "ALICE_SECRET", "value": "alice"},
              {"token_file": str(tmp_path / "token"), "data_type": "service", "value": "bob"}]
    auth = authenticator(auth_config({"mode": "tokens", "tokens": tokens}, {"ALICE_SECRET": ALICE_TOKEN}))
    assert isinstance(auth, TokenAuthenticator)
    assert auth.authenticate(f"Bearer {ALICE_TOKEN}") == Subject("user", "alice")
    assert auth.authenticate(f"Bearer {BOB_TOKEN}") == Subject("service", "bob")


def test_auth_tokens_are_compared_with_compare_digest_against_every_entry(tokens, monkeypatch):
    calls = []
    real = hmac.compare_digest

    def counting(a, b):
        calls.append((a, b))
        return real(a, b)
    monkeypatch.setattr(hmac, "compare_digest", counting)
    tokens.authenticate(f"Bearer {ALICE_TOKEN}")
    assert len(calls) == len(TOKENS_AUTH.tokens)
    assert all(len(a) == len(b) == 32 for a, b in calls)


def test_auth_jwt_maps_the_subject_claim_and_the_admins(jwts):
    assert isinstance(jwts, JwtAuthenticator)
    assert jwts.authenticate(f"Bearer {jwt_for('bob')}") == Subject("user", "bob")
    assert jwts.authenticate(f"Bearer {jwt_for('alice')}") == Subject("user", "alice", admin=True)


@pytest.mark.parametrize(("token", "detail"), [
    (lambda: jwt_for("bob", expires_in=-600), "The token has expired"),
    (lambda: jwt_for("bob", nbf=int(time.time()) + 600), "The token is not valid yet"),
    (lambda: jwt_for("bob", key=OTHER_SECRET), "The token's signature is not valid"),
    (lambda: jwt_for("bob", algorithm="HS512"), "The token's algorithm is not accepted"),
    (lambda: jwt.encode({"sub": "bob", "exp": int(time.time()) + 60}, None, algorithm="none"),
     "The token's algorithm is not accepted"),
    (lambda: jwt_for(None), "The token has no 'sub' claim"),
    (lambda: jwt.encode({"sub": "bob"}, JWT_SECRET, algorithm="HS256"), "The token has no 'exp' claim"),
    (lambda: jwt_for("bob", aud="someone-else"), "The token's audience is not accepted"),
    (lambda: jwt_for(""), "The token's 'sub' claim is not a non-empty string"),
    (lambda: "not.a.jwt", "The token is not valid"),
    (lambda: UNKNOWN_TOKEN, "The token is not valid"),
    (lambda: jwt_for("bob")[:-2], "The token is not valid"),
])
def test_auth_jwt_refusals(jwts, token, detail):
    assert refused(jwts, f"Bearer {token()}") == (detail, "invalid_token")


@pytest.mark.parametrize("header", [None, "Basic dXNlcjpwYXNz", "Bearer"])
def test_auth_jwt_missing_or_malformed_header_is_refused_as_for_tokens(jwts, tokens, header):
    assert refused(jwts, header) == refused(tokens, header)


def test_auth_jwt_subject_claim_data_type_audience_issuer_and_leeway():
    settings = JwtConfig(JWT_SECRET, ("HS256",), subject_claim="uid", subject_data_type="service",
                         audience="nakadi", issuer="https://issuer.test", leeway_seconds=120,
                         required_claims=("exp", "iat"))
    auth = authenticator(AuthConfig("jwt", jwt=settings))
    now = int(time.time())
    claims = {"uid": "shop", "aud": "nakadi", "iss": "https://issuer.test", "iat": now}
    assert auth.authenticate(f"Bearer {jwt_for(None, expires_in=-60, **claims)}") == Subject("service", "shop")
    assert refused(auth, f"Bearer {jwt_for(None, expires_in=-600, **claims)}")[0] == "The token has expired"
    assert refused(auth, f"Bearer {jwt_for(None, **{**claims, 'iss': 'other'})}")[0] == \
        "The token's issuer is not accepted"
    assert refused(auth, f"Bearer {jwt_for(None, **{**claims, 'aud': 'other'})}")[0] == \
        "The token's audience is not accepted"
    no_iat = {key: value for key, value in claims.items() if key != "iat"}
    assert refused(auth, f"Bearer {jwt_for(None, **no_iat)}")[0] == "The token has no 'iat' claim"
    assert refused(auth, f"Bearer {jwt_for('shop', iat=now)}")[0] == "The token has no 'uid' claim"


def test_auth_jwt_with_an_rsa_public_key_refuses_the_key_used_as_an_hmac_secret():
    private = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    public = private.public_key().public_bytes(serialization.Encoding.PEM,
                                               serialization.PublicFormat.SubjectPublicKeyInfo).decode()
    auth = authenticator(AuthConfig("jwt", jwt=JwtConfig(public, ("RS256",))))
    signed = jwt.encode({"sub": "bob", "exp": int(time.time()) + 60}, private, algorithm="RS256")
    assert auth.authenticate(f"Bearer {signed}") == Subject("user", "bob")
    other = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    forged = jwt.encode({"sub": "bob", "exp": int(time.time()) + 60}, other, algorithm="RS256")
    assert refused(auth, f"Bearer {forged}")[0] == "The token's signature is not valid"
    # The public key, known to all, as an HMAC secret: the classic algorithm confusion.
    header = jwt.utils.base64url_encode(b'{"alg":"HS256","typ":"JWT"}').decode()
    body = jwt.utils.base64url_encode(f'{{"sub":"bob","exp":{int(time.time()) + 60}}}'.encode()).decode()
    signature = jwt.utils.base64url_encode(
        hmac.new(public.encode(), f"{header}.{body}".encode(), hashlib.sha256).digest()).decode()
    assert refused(auth, f"Bearer {header}.{body}.{signature}")[0] == "The token's algorithm is not accepted"
