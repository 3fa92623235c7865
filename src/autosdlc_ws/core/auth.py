"""Credential checks: JWT (HS256, RS256/ES256, JWKS) and API keys, given the time.

No I/O: keys are loaded by the caller (`Authenticator.from_settings` reads the
configured files once at start-up). PyJWT verifies signatures; expiry and
not-before are checked here against the injected clock so tests control time.
"""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import jwt

from autosdlc_ws.config import ApiKeyEntry, Settings
from autosdlc_ws.core.permissions import Grants, PermissionSyntaxError
from autosdlc_ws.errors import AuthenticationError

HMAC_ALGORITHMS = frozenset({"HS256", "HS384", "HS512"})
ASYMMETRIC_ALGORITHMS = frozenset({"RS256", "RS384", "RS512", "ES256", "ES384", "PS256"})
#: Verified tokens an `Authenticator` remembers (a few hundred bytes each).
VERIFIED_TOKENS_KEPT = 1024


@dataclass(frozen=True, slots=True)
class Principal:
    """Who a connection or request acts as, and what it may do."""

    subject: str
    grants: Grants
    kind: str  # "jwt" or "api_key"
    expires_at_ms: int | None = None

    @property
    def identity(self) -> str:
        return f"{self.kind}:{self.subject}"


@dataclass(frozen=True, slots=True)
class Credentials:
    """What a client presented; at most one of the two is used (token first)."""

    token: str | None = None
    api_key: str | None = None

    def __bool__(self) -> bool:
        return bool(self.token or self.api_key)


def hash_api_key(key: str) -> str:
    return hashlib.sha256(key.encode()).hexdigest()


class Authenticator:
    def __init__(
        self,
        *,
        hmac_secret: str | None = None,
        public_keys: Sequence[Any] = (),
        jwks: Sequence[jwt.PyJWKSet] = (),
        algorithms: Sequence[str] = ("HS256", "RS256", "ES256"),
        issuer: str | None = None,
        audience: str | None = None,
        leeway_s: float = 5.0,
        require_exp: bool = True,
        api_keys: Sequence[ApiKeyEntry] = (),
    ) -> None:
        self._secret = hmac_secret
        self._public_keys = list(public_keys)
        self._jwks = list(jwks)
        self._algorithms = [a for a in algorithms if a.lower() != "none"]
        self._issuer = issuer
        self._audience = audience
        self._leeway_ms = int(leeway_s * 1000)
        self._require_exp = require_exp
        self._api_keys = [(bytes.fromhex(k.sha256), k) for k in api_keys]
        self._verified: dict[str, tuple[Principal, int | None]] = {}

    @classmethod
    def from_settings(cls, settings: Settings) -> Authenticator:
        public_keys = [Path(p).read_bytes() for p in settings.jwt_public_keys]
        jwks = [jwt.PyJWKSet.from_json(Path(p).read_text()) for p in settings.jwks_files]
        return cls(
            hmac_secret=settings.jwt_secret,
            public_keys=public_keys,
            jwks=jwks,
            algorithms=settings.jwt_algorithms,
            issuer=settings.jwt_issuer,
            audience=settings.jwt_audience,
            leeway_s=settings.jwt_leeway_s,
            require_exp=settings.jwt_require_exp,
            api_keys=settings.api_keys,
        )

    def authenticate(self, credentials: Credentials, now_ms: int) -> Principal:
        if credentials.token:
            return self.verify_jwt(credentials.token, now_ms)
        if credentials.api_key:
            return self.verify_api_key(credentials.api_key)
        raise AuthenticationError("no credentials", code="missing_credentials")

    def verify_api_key(self, key: str) -> Principal:
        digest = hashlib.sha256(key.encode()).digest()
        found: ApiKeyEntry | None = None
        for stored, entry in self._api_keys:  # no early exit: constant time in the match
            if hmac.compare_digest(stored, digest):
                found = entry
        if found is None:
            raise AuthenticationError("unknown API key", code="invalid_api_key")
        return Principal(found.name, Grants.from_strings(found.permissions), "api_key", None)

    def _candidate_keys(self, header: dict[str, Any], claims: dict[str, Any]) -> list[Any]:
        alg = header.get("alg")
        if not isinstance(alg, str) or alg not in self._algorithms:
            raise AuthenticationError(f"token algorithm {alg!r} is not allowed", code="invalid_token")
        if alg in HMAC_ALGORITHMS:
            if not self._secret:
                raise AuthenticationError("HMAC tokens are not accepted here", code="invalid_token")
            return [self._secret]
        if alg not in ASYMMETRIC_ALGORITHMS:
            raise AuthenticationError(f"token algorithm {alg!r} is not supported", code="invalid_token")
        keys: list[Any] = []
        kid = header.get("kid")
        for key_set in self._jwks:
            issuer = claims.get("iss")
            for jwk in key_set.keys:
                jwk_issuer = jwk._jwk_data.get("iss")  # optional: JWKS entries may name their issuer
                if kid is not None and jwk.key_id != kid:
                    continue
                if jwk_issuer is not None and jwk_issuer != issuer:
                    continue
                keys.append(jwk.key)
        keys.extend(self._public_keys)
        if not keys:
            raise AuthenticationError("no key to verify this token", code="invalid_token")
        return keys

    def verify_jwt(self, token: str, now_ms: int) -> Principal:
        """The principal of a valid `token` at `now_ms`. A token's signature and claims are
        checked once and kept (`VERIFIED_TOKENS_KEPT`, oldest out first): a publisher posting
        one event per request, or a resume storm of clients with the same token, pays a dict
        lookup and the two time checks instead of three JWT parses (~90 us). Only tokens that
        verified are kept; the keys, issuer and audience do not change in a process's life."""
        verified = self._verified.get(token)
        if verified is None:
            verified = self._verify_token(token)
            if len(self._verified) >= VERIFIED_TOKENS_KEPT:
                del self._verified[next(iter(self._verified))]
            self._verified[token] = verified
        principal, not_before_ms = verified
        if principal.expires_at_ms is not None and now_ms > principal.expires_at_ms + self._leeway_ms:
            raise AuthenticationError("token has expired", code="token_expired")
        if not_before_ms is not None and now_ms + self._leeway_ms < not_before_ms:
            raise AuthenticationError("token is not valid yet", code="invalid_token")
        return principal

    def _verify_token(self, token: str) -> tuple[Principal, int | None]:
        """Signature and claims, whatever the time: (principal, not-before in ms or None)."""
        try:
            header = jwt.get_unverified_header(token)
            unverified = jwt.decode(token, options={"verify_signature": False})
        except jwt.PyJWTError:
            raise AuthenticationError("malformed token", code="invalid_token") from None
        alg = str(header.get("alg"))
        claims: dict[str, Any] | None = None
        for key in self._candidate_keys(header, unverified):
            try:
                claims = jwt.decode(
                    token,
                    key,
                    algorithms=[alg],
                    issuer=self._issuer,
                    audience=self._audience,
                    options={
                        "verify_exp": False,  # checked below against the injected clock
                        "verify_nbf": False,
                        "verify_iat": False,
                        "verify_aud": self._audience is not None,
                        "require": ["sub"],
                    },
                )
                break
            except jwt.InvalidSignatureError:
                continue
            except (jwt.InvalidKeyError, jwt.InvalidAlgorithmError, TypeError):
                # A key of the other family (an EC key for an RS256 token): PyJWT
                # says so with TypeError for key objects (JWKS entries, loaded keys)
                # and InvalidKeyError for PEM bytes. Either way: try the next key.
                continue
            except jwt.InvalidIssuerError:
                raise AuthenticationError("token issuer is not accepted", code="invalid_token") from None
            except jwt.InvalidAudienceError:
                raise AuthenticationError("token audience is not accepted", code="invalid_token") from None
            except jwt.PyJWTError as exc:
                raise AuthenticationError(f"invalid token: {exc}", code="invalid_token") from None
        if claims is None:
            raise AuthenticationError("token signature does not verify", code="invalid_token")
        exp = claims.get("exp")
        if exp is None and self._require_exp:
            raise AuthenticationError("token has no exp claim", code="invalid_token")
        if exp is not None and not isinstance(exp, (int, float)):
            raise AuthenticationError("exp claim must be a number", code="invalid_token")
        nbf = claims.get("nbf")
        subject = claims.get("sub")
        if not isinstance(subject, str) or not subject:
            raise AuthenticationError("token sub claim must be a non-empty string", code="invalid_token")
        perms = claims.get("permissions")
        if perms is None:
            scope = claims.get("scope", "")
            perms = scope.split() if isinstance(scope, str) else []
        if not isinstance(perms, list) or not all(isinstance(p, str) for p in perms):
            raise AuthenticationError("permissions claim must be a list of strings", code="invalid_token")
        try:
            grants = Grants.from_strings(perms)
        except PermissionSyntaxError as exc:
            raise AuthenticationError(str(exc), code="invalid_token") from None
        expires = int(exp * 1000) if exp is not None else None
        not_before = int(nbf * 1000) if isinstance(nbf, (int, float)) else None
        return Principal(subject, grants, "jwt", expires), not_before

    def expiry_deadline_ms(self, principal: Principal) -> int | None:
        """When an open connection with this principal must be closed (4003)."""
        if principal.expires_at_ms is None:
            return None
        return principal.expires_at_ms + self._leeway_ms


def mint_token(
    secret: str, subject: str, permissions: Sequence[str], *, ttl_s: int | None, now_s: int,
    issuer: str | None = None, audience: str | None = None,
) -> str:
    claims: dict[str, Any] = {"sub": subject, "permissions": list(permissions), "iat": now_s}
    if ttl_s is not None:
        claims["exp"] = now_s + ttl_s
    if issuer:
        claims["iss"] = issuer
    if audience:
        claims["aud"] = audience
    return jwt.encode(claims, secret, algorithm="HS256")


