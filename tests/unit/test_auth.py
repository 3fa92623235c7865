"""Credential checks with an injected clock: HS256, RS256/ES256, JWKS, API keys."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
from typing import Any

import jwt
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from jwt.algorithms import ECAlgorithm, RSAAlgorithm

from autosdlc_ws.config import ApiKeyEntry
from autosdlc_ws.core.auth import Authenticator, Credentials, Principal, hash_api_key, mint_token
from autosdlc_ws.core.permissions import Resource
from autosdlc_ws.errors import AuthenticationError

SECRET = "unit-test-secret-0123456789abcdef0123456789"
NOW_S = 1_700_000_000
NOW_MS = NOW_S * 1000


@pytest.fixture(scope="module")
def rsa_key() -> rsa.RSAPrivateKey:
    return rsa.generate_private_key(public_exponent=65537, key_size=2048)


@pytest.fixture(scope="module")
def rsa_key2() -> rsa.RSAPrivateKey:
    return rsa.generate_private_key(public_exponent=65537, key_size=2048)


@pytest.fixture(scope="module")
def ec_key() -> ec.EllipticCurvePrivateKey:
    return ec.generate_private_key(ec.SECP256R1())


def public_pem(key: rsa.RSAPrivateKey | ec.EllipticCurvePrivateKey) -> bytes:
    return key.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)


def claims(**extra: Any) -> dict[str, Any]:
    base: dict[str, Any] = {"sub": "alice", "exp": NOW_S + 600, "permissions": ["read:agent:*"]}
    base.update(extra)
    return {k: v for k, v in base.items() if v is not None}


def hs(**extra: Any) -> str:
    return jwt.encode(claims(**extra), SECRET, algorithm="HS256")


def code_of(auth: Authenticator, token: str, now_ms: int = NOW_MS) -> str:
    with pytest.raises(AuthenticationError) as info:
        auth.verify_jwt(token, now_ms)
    return info.value.code


def b64url(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()


def hand_made_hs256(payload: dict[str, Any], key: bytes, header: dict[str, Any] | None = None) -> str:
    """An HS256 token signed with arbitrary bytes (PyJWT refuses PEM keys as HMAC secrets)."""
    head = b64url(json.dumps(header or {"alg": "HS256", "typ": "JWT"}).encode())
    body = b64url(json.dumps(payload).encode())
    sig = hmac.new(key, f"{head}.{body}".encode(), hashlib.sha256).digest()
    return f"{head}.{body}.{b64url(sig)}"


# ----------------------------------------------------------------------------- HS256


def test_hs256_ok() -> None:
    auth = Authenticator(hmac_secret=SECRET)
    principal = auth.verify_jwt(hs(), NOW_MS)
    assert principal.subject == "alice"
    assert principal.kind == "jwt"
    assert principal.identity == "jwt:alice"
    assert principal.expires_at_ms == (NOW_S + 600) * 1000
    assert principal.grants.allows("read", Resource("agent", "a1"))
    assert not principal.grants.allows("publish", Resource("agent", "a1"))


def test_wrong_secret_refused() -> None:
    auth = Authenticator(hmac_secret=SECRET)
    token = jwt.encode(claims(), "another-secret-0123456789abcdef0123", algorithm="HS256")
    assert code_of(auth, token) == "invalid_token"


def test_tampered_payload_refused() -> None:
    auth = Authenticator(hmac_secret=SECRET)
    head, _, sig = hs().split(".")
    body = b64url(json.dumps(claims(permissions=["admin:*"])).encode())
    assert code_of(auth, f"{head}.{body}.{sig}") == "invalid_token"


@pytest.mark.parametrize("token", ["", "abc", "a.b.c", "a.b", "x" * 100])
def test_malformed_token(token: str) -> None:
    auth = Authenticator(hmac_secret=SECRET)
    with pytest.raises(AuthenticationError) as info:
        auth.authenticate(Credentials(token=token), NOW_MS) if token else auth.verify_jwt(token, NOW_MS)
    assert info.value.code in ("invalid_token", "missing_credentials")


def test_expired_beyond_leeway() -> None:
    auth = Authenticator(hmac_secret=SECRET, leeway_s=5)
    token = hs(exp=NOW_S - 6)
    assert code_of(auth, token) == "token_expired"


def test_expired_within_leeway_is_accepted() -> None:
    auth = Authenticator(hmac_secret=SECRET, leeway_s=5)
    principal = auth.verify_jwt(hs(exp=NOW_S - 4), NOW_MS)
    assert principal.subject == "alice"
    # the edge: exactly at exp + leeway is still accepted, one ms later is not
    token = hs(exp=NOW_S - 5)
    assert auth.verify_jwt(token, NOW_MS).subject == "alice"
    assert code_of(auth, token, NOW_MS + 1) == "token_expired"


def test_zero_leeway() -> None:
    auth = Authenticator(hmac_secret=SECRET, leeway_s=0)
    assert code_of(auth, hs(exp=NOW_S - 1)) == "token_expired"


def test_nbf_in_the_future() -> None:
    auth = Authenticator(hmac_secret=SECRET, leeway_s=5)
    assert code_of(auth, hs(nbf=NOW_S + 60)) == "invalid_token"
    assert auth.verify_jwt(hs(nbf=NOW_S + 4), NOW_MS).subject == "alice"  # within leeway
    assert auth.verify_jwt(hs(nbf=NOW_S - 60), NOW_MS).subject == "alice"


def test_missing_exp_refused_unless_allowed() -> None:
    token = hs(exp=None)
    assert code_of(Authenticator(hmac_secret=SECRET), token) == "invalid_token"
    principal = Authenticator(hmac_secret=SECRET, require_exp=False).verify_jwt(token, NOW_MS)
    assert principal.expires_at_ms is None


def test_missing_sub_refused() -> None:
    auth = Authenticator(hmac_secret=SECRET)
    assert code_of(auth, hs(sub=None)) == "invalid_token"
    assert code_of(auth, hs(sub="")) == "invalid_token"
    assert code_of(auth, hs(sub=42)) == "invalid_token"


def test_alg_none_refused() -> None:
    auth = Authenticator(hmac_secret=SECRET, algorithms=("HS256", "none"))
    unsigned = jwt.encode(claims(), None, algorithm="none")  # type: ignore[arg-type]
    assert code_of(auth, unsigned) == "invalid_token"
    # also with a signature part and other spellings of none
    head = b64url(json.dumps({"alg": "None", "typ": "JWT"}).encode())
    body = b64url(json.dumps(claims()).encode())
    assert code_of(auth, f"{head}.{body}.") == "invalid_token"


def test_algorithm_not_in_allow_list() -> None:
    auth = Authenticator(hmac_secret=SECRET, algorithms=("RS256",))
    assert code_of(auth, hs()) == "invalid_token"
    hs512 = jwt.encode(claims(), SECRET * 2, algorithm="HS512")
    assert code_of(Authenticator(hmac_secret=SECRET, algorithms=("HS256",)), hs512) == "invalid_token"


# --------------------------------------------------------- HS/RS algorithm confusion


def test_hs256_signed_with_the_public_pem_refused_with_only_public_keys(rsa_key: rsa.RSAPrivateKey) -> None:
    pem = public_pem(rsa_key)
    auth = Authenticator(public_keys=[pem])
    forged = hand_made_hs256(claims(permissions=["admin:*"]), pem)
    assert code_of(auth, forged) == "invalid_token"
    forged_text = hand_made_hs256(claims(permissions=["admin:*"]), pem.strip())
    assert code_of(auth, forged_text) == "invalid_token"


def test_hs256_signed_with_the_public_pem_refused_with_secret_and_public_key(
    rsa_key: rsa.RSAPrivateKey,
) -> None:
    pem = public_pem(rsa_key)
    auth = Authenticator(hmac_secret=SECRET, public_keys=[pem])
    forged = hand_made_hs256(claims(permissions=["admin:*"]), pem)
    assert code_of(auth, forged) == "invalid_token"
    # the genuine HS256 token still works with this configuration
    assert auth.verify_jwt(hs(), NOW_MS).subject == "alice"


def test_rs256_token_with_only_a_secret_configured_is_refused(rsa_key: rsa.RSAPrivateKey) -> None:
    token = jwt.encode(claims(), rsa_key, algorithm="RS256")
    assert code_of(Authenticator(hmac_secret=SECRET), token) == "invalid_token"


# --------------------------------------------------------------- RS256 / ES256 / JWKS


def test_rs256_with_public_key(rsa_key: rsa.RSAPrivateKey, rsa_key2: rsa.RSAPrivateKey) -> None:
    token = jwt.encode(claims(), rsa_key, algorithm="RS256")
    assert Authenticator(public_keys=[public_pem(rsa_key)]).verify_jwt(token, NOW_MS).subject == "alice"
    # several keys: any one that verifies
    auth = Authenticator(public_keys=[public_pem(rsa_key2), public_pem(rsa_key)])
    assert auth.verify_jwt(token, NOW_MS).subject == "alice"
    # signed by a key that is not configured
    assert code_of(Authenticator(public_keys=[public_pem(rsa_key2)]), token) == "invalid_token"


def test_es256_with_public_key(ec_key: ec.EllipticCurvePrivateKey, rsa_key: rsa.RSAPrivateKey) -> None:
    token = jwt.encode(claims(), ec_key, algorithm="ES256")
    auth = Authenticator(public_keys=[public_pem(rsa_key), public_pem(ec_key)])
    assert auth.verify_jwt(token, NOW_MS).subject == "alice"


def test_mixed_key_objects_do_not_crash(
    rsa_key: rsa.RSAPrivateKey, ec_key: ec.EllipticCurvePrivateKey,
) -> None:
    """A key of the other family is skipped, whatever form it is given in."""
    rs = jwt.encode(claims(), rsa_key, algorithm="RS256")
    es = jwt.encode(claims(), ec_key, algorithm="ES256")
    for keys in ([ec_key.public_key(), rsa_key.public_key()], [rsa_key.public_key(), ec_key.public_key()]):
        auth = Authenticator(public_keys=keys)
        assert auth.verify_jwt(rs, NOW_MS).subject == "alice"
        assert auth.verify_jwt(es, NOW_MS).subject == "alice"
    only_ec = Authenticator(public_keys=[ec_key.public_key()])
    assert code_of(only_ec, rs) == "invalid_token"


def jwk_of(key: rsa.RSAPrivateKey | ec.EllipticCurvePrivateKey, kid: str, **extra: str) -> dict[str, Any]:
    if isinstance(key, rsa.RSAPrivateKey):
        data = json.loads(RSAAlgorithm.to_jwk(key.public_key()))
    else:
        data = json.loads(ECAlgorithm.to_jwk(key.public_key()))
    data.update(kid=kid, **extra)
    assert isinstance(data, dict)
    return data


def test_jwks_keyed_by_kid(
    rsa_key: rsa.RSAPrivateKey, rsa_key2: rsa.RSAPrivateKey, ec_key: ec.EllipticCurvePrivateKey,
) -> None:
    jwks = jwt.PyJWKSet.from_dict({"keys": [
        jwk_of(ec_key, "ec-1"), jwk_of(rsa_key2, "rsa-2"), jwk_of(rsa_key, "rsa-1")]})
    auth = Authenticator(jwks=[jwks])
    token = jwt.encode(claims(), rsa_key, algorithm="RS256", headers={"kid": "rsa-1"})
    assert auth.verify_jwt(token, NOW_MS).subject == "alice"
    es = jwt.encode(claims(), ec_key, algorithm="ES256", headers={"kid": "ec-1"})
    assert auth.verify_jwt(es, NOW_MS).subject == "alice"
    # without a kid every key is tried, and keys of the other family do not crash
    no_kid = jwt.encode(claims(), rsa_key, algorithm="RS256")
    assert auth.verify_jwt(no_kid, NOW_MS).subject == "alice"


def test_jwks_wrong_kid_refused(rsa_key: rsa.RSAPrivateKey, rsa_key2: rsa.RSAPrivateKey) -> None:
    jwks = jwt.PyJWKSet.from_dict({"keys": [jwk_of(rsa_key, "rsa-1"), jwk_of(rsa_key2, "rsa-2")]})
    auth = Authenticator(jwks=[jwks])
    unknown = jwt.encode(claims(), rsa_key, algorithm="RS256", headers={"kid": "rsa-9"})
    assert code_of(auth, unknown) == "invalid_token"
    # the kid of another key: that key does not verify the signature
    swapped = jwt.encode(claims(), rsa_key, algorithm="RS256", headers={"kid": "rsa-2"})
    assert code_of(auth, swapped) == "invalid_token"


def test_jwks_key_bound_to_an_issuer(rsa_key: rsa.RSAPrivateKey) -> None:
    jwks = jwt.PyJWKSet.from_dict({"keys": [jwk_of(rsa_key, "k", iss="https://idp.example")]})
    auth = Authenticator(jwks=[jwks])
    ok = jwt.encode(claims(iss="https://idp.example"), rsa_key, algorithm="RS256", headers={"kid": "k"})
    assert auth.verify_jwt(ok, NOW_MS).subject == "alice"
    other = jwt.encode(claims(iss="https://evil.example"), rsa_key, algorithm="RS256", headers={"kid": "k"})
    assert code_of(auth, other) == "invalid_token"


# ------------------------------------------------------------------ issuer / audience


def test_issuer_enforced_when_configured() -> None:
    auth = Authenticator(hmac_secret=SECRET, issuer="autosdlc")
    assert auth.verify_jwt(hs(iss="autosdlc"), NOW_MS).subject == "alice"
    assert code_of(auth, hs(iss="someone-else")) == "invalid_token"
    assert code_of(auth, hs()) == "invalid_token"  # missing iss
    # not configured: any issuer
    assert Authenticator(hmac_secret=SECRET).verify_jwt(hs(iss="x"), NOW_MS).subject == "alice"


def test_audience_enforced_when_configured() -> None:
    auth = Authenticator(hmac_secret=SECRET, audience="ws")
    assert auth.verify_jwt(hs(aud="ws"), NOW_MS).subject == "alice"
    assert auth.verify_jwt(hs(aud=["api", "ws"]), NOW_MS).subject == "alice"
    assert code_of(auth, hs(aud="api")) == "invalid_token"
    assert code_of(auth, hs()) == "invalid_token"
    assert Authenticator(hmac_secret=SECRET).verify_jwt(hs(aud="api"), NOW_MS).subject == "alice"


def test_mint_token_round_trip() -> None:
    token = mint_token(SECRET, "bob", ["read:*"], ttl_s=60, now_s=NOW_S, issuer="i", audience="a")
    principal = Authenticator(hmac_secret=SECRET, issuer="i", audience="a").verify_jwt(token, NOW_MS)
    assert principal.subject == "bob" and principal.expires_at_ms == (NOW_S + 60) * 1000
    assert principal.grants.strings() == ["read:*"]


# ------------------------------------------------------------------------ permissions


def test_scope_claim_alternative() -> None:
    auth = Authenticator(hmac_secret=SECRET)
    principal = auth.verify_jwt(hs(permissions=None, scope="read:agent:a1 publish:agent:a1"), NOW_MS)
    assert principal.grants.strings() == ["read:agent:a1", "publish:agent:a1"]
    # permissions wins when both are present
    both = auth.verify_jwt(hs(permissions=["read:system"], scope="read:*"), NOW_MS)
    assert both.grants.strings() == ["read:system"]
    # neither: a principal with no permissions (the session refuses it for lack of read)
    assert auth.verify_jwt(hs(permissions=None), NOW_MS).grants.strings() == []


@pytest.mark.parametrize(
    "perms", [["read:everything"], ["read:*", "write:*"], "read:*", [1], [["read:*"]], {"read": "*"}])
def test_invalid_permissions_refused(perms: Any) -> None:
    assert code_of(Authenticator(hmac_secret=SECRET), hs(permissions=perms)) == "invalid_token"


def test_invalid_scope_refused() -> None:
    assert code_of(Authenticator(hmac_secret=SECRET), hs(permissions=None, scope="openid read:*")) == (
        "invalid_token")


# ---------------------------------------------------------------------------- API keys

KEY = "ask_live_0123456789"


def api_auth() -> Authenticator:
    return Authenticator(api_keys=[
        ApiKeyEntry("ci", hash_api_key("ask_other"), ("publish:*",)),
        ApiKeyEntry("dashboard", hash_api_key(KEY), ("read:*", "publish:system")),
    ])


def test_api_key_lookup_by_digest() -> None:
    assert hash_api_key(KEY) == hashlib.sha256(KEY.encode()).hexdigest()
    principal = api_auth().verify_api_key(KEY)
    assert principal == Principal("dashboard", principal.grants, "api_key", None)
    assert principal.identity == "api_key:dashboard"
    assert principal.grants.strings() == ["read:*", "publish:system"]
    assert api_auth().authenticate(Credentials(api_key="ask_other"), NOW_MS).subject == "ci"


@pytest.mark.parametrize("key", ["ask_unknown", KEY + "x", KEY[:-1], hash_api_key(KEY), ""])
def test_unknown_api_key_refused(key: str) -> None:
    with pytest.raises(AuthenticationError) as info:
        api_auth().verify_api_key(key)
    assert info.value.code == "invalid_api_key"


def test_authenticate_prefers_the_token_and_needs_something() -> None:
    auth = Authenticator(hmac_secret=SECRET, api_keys=[ApiKeyEntry("k", hash_api_key(KEY), ("read:*",))])
    assert auth.authenticate(Credentials(token=hs(), api_key=KEY), NOW_MS).kind == "jwt"
    assert auth.authenticate(Credentials(api_key=KEY), NOW_MS).kind == "api_key"
    with pytest.raises(AuthenticationError) as info:
        auth.authenticate(Credentials(), NOW_MS)
    assert info.value.code == "missing_credentials"
    assert not Credentials() and Credentials(api_key="k")


# ---------------------------------------------------------------------- expiry deadline


def test_expiry_deadline_ms() -> None:
    auth = Authenticator(hmac_secret=SECRET, leeway_s=2.5)
    principal = auth.verify_jwt(hs(exp=NOW_S + 100), NOW_MS)
    assert auth.expiry_deadline_ms(principal) == (NOW_S + 100) * 1000 + 2500
    assert auth.expiry_deadline_ms(api_auth().verify_api_key(KEY)) is None


def test_a_verified_token_is_parsed_once_and_still_expires_on_time(monkeypatch: pytest.MonkeyPatch) -> None:
    auth = Authenticator(hmac_secret=SECRET, leeway_s=5)
    token = hs(exp=NOW_S + 60, nbf=NOW_S + 10)
    decodes: list[str] = []
    real_decode = jwt.decode

    def counting_decode(*args: Any, **kwargs: Any) -> Any:
        decodes.append(args[0])
        return real_decode(*args, **kwargs)

    monkeypatch.setattr(jwt, "decode", counting_decode)
    assert code_of(auth, token, NOW_MS) == "invalid_token"  # not valid yet, even from the cache
    parsed = len(decodes)
    assert auth.verify_jwt(token, NOW_MS + 10_000).subject == "alice"
    assert auth.verify_jwt(token, NOW_MS + 64_000).subject == "alice"  # within the leeway
    assert code_of(auth, token, NOW_MS + 66_000) == "token_expired"
    assert len(decodes) == parsed  # every later check came from the cache


def test_tokens_that_fail_are_not_kept_and_the_kept_ones_are_bounded(monkeypatch: pytest.MonkeyPatch) -> None:
    from autosdlc_ws.core import auth as auth_module

    monkeypatch.setattr(auth_module, "VERIFIED_TOKENS_KEPT", 3)
    auth = Authenticator(hmac_secret=SECRET)
    forged = jwt.encode(claims(), "another-secret-0123456789abcdef0123456789", algorithm="HS256")
    for _ in range(2):
        assert code_of(auth, forged) == "invalid_token"
    tokens = [hs(sub=f"user-{i}") for i in range(5)]
    for token in tokens:
        auth.verify_jwt(token, NOW_MS)
    assert list(auth._verified) == tokens[2:]  # the oldest went first; the forged one never came in
    assert auth.verify_jwt(tokens[0], NOW_MS).subject == "user-0"  # verified again when asked
