"""Site tokens: short-lived JWTs that another website signs for its own signed-in user.

Chorus accepts them wherever it accepts its own tokens. Verification is PyJWT's; this module
decides which key and algorithm a token may use and words each refusal. It does no I/O of its
own: keys come in as ``Site`` values (site_keys.py reads files), and a site whose JWKS is at a
URL holds a PyJWKClient, whose fetches (cached; refetched at most once per cooldown for an
unknown kid) are why callers run ``verify`` off the event loop.

Checks, in order; the first that fails is the reason (errors.py, SiteTokenRefused):
1. the token parses as a JWT                          MalformedToken
2. ``alg`` is not "none"                              AlgNone
3. ``iss`` names a configured site                    UnknownIssuer
4. ``alg`` is one the site has a key for: HS256 for a shared secret, RS256/ES256 for a JWKS
   key, which must be named by ``kid`` and be of that algorithm
                                                      AlgNotAccepted, UnknownKid
5. the signature                                      BadSignature
6. ``exp`` is there, ahead, and at most ``max_lifetime_secs`` away
                                                      MissingClaim, TokenExpired, LifetimeTooLong
7. ``nbf`` (when given) has passed; ``aud`` holds the configured audience (when one is)
                                                      NotYetValid, WrongAudience
8. ``sub`` is a non-empty string; ``name``, when given, a string (else the name is ``sub``)
                                                      MissingClaim, BadClaim

Which tokens are site tokens: those whose (unverified) payload has ``iss``. Chorus's own
tokens never carry one, so they go to the auth service as before.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Protocol

import jwt

from chorus.common.text import forbidden_control

from .errors import (AlgNone, AlgNotAccepted, BadClaim, BadSignature, LifetimeTooLong, MalformedToken,
                     MissingClaim, NotYetValid, SiteKeysUnavailable, TokenExpired, UnknownIssuer, UnknownKid,
                     WrongAudience)

__all__ = ["SiteTokens", "Site", "SiteClaims", "KeySet", "StaticKeySet", "RemoteKeySet", "is_site_token",
           "SECRET_ALGORITHM", "KEY_SET_ALGORITHMS", "MAX_SUBJECT_CHARS"]

SECRET_ALGORITHM = "HS256"
KEY_SET_ALGORITHMS = ("RS256", "ES256")
MAX_SUBJECT_CHARS = 256
_SHOWN_CHARS = 40  # of an issuer or kid in a refusal: close reasons are short


class KeySet(Protocol):
    def key(self, kid: str) -> jwt.PyJWK:
        """The key named ``kid``; UnknownKid when there is none (SiteKeysUnavailable: cannot tell)."""


class StaticKeySet:
    """A JWKS read once (from a file)."""

    def __init__(self, jwks: jwt.PyJWKSet) -> None:
        self._by_kid = {k.key_id: k for k in jwks.keys if k.key_id and k.public_key_use in ("sig", None)}

    def key(self, kid: str) -> jwt.PyJWK:
        try:
            return self._by_kid[kid]
        except KeyError:
            raise UnknownKid(f"site token: unknown kid {_shown(kid)}") from None


class RemoteKeySet:
    """A JWKS at a URL, through PyJWKClient: cached for its lifespan, fetched again (at most once
    per cooldown) when a token names a kid the cached set lacks, so rotated keys are found."""

    def __init__(self, client: jwt.PyJWKClient) -> None:
        self._client = client

    def key(self, kid: str) -> jwt.PyJWK:
        try:
            return self._client.get_signing_key(kid)
        except jwt.PyJWKClientConnectionError:
            raise SiteKeysUnavailable("the site's key set (JWKS URL) cannot be fetched; try again") from None
        except jwt.PyJWKClientError:
            raise UnknownKid(f"site token: unknown kid {_shown(kid)}") from None
        except jwt.PyJWKSetError:
            raise SiteKeysUnavailable("the site's key set (JWKS URL) holds no usable keys") from None


@dataclass(frozen=True)
class Site:
    issuer: str
    secret: bytes | None = None    # HS256
    keys: KeySet | None = None     # RS256 / ES256, by kid


@dataclass(frozen=True)
class SiteClaims:
    issuer: str
    subject: str
    name: str        # the ``name`` claim, else the subject
    expires_at: int  # Unix seconds


def is_site_token(token: str) -> bool:
    """Whether ``token`` claims an issuer (unverified: this only routes it to ``verify``)."""
    try:
        payload = jwt.decode(token, options={"verify_signature": False})
    except jwt.InvalidTokenError:
        return False
    return "iss" in payload


class SiteTokens:
    def __init__(self, sites: Mapping[str, Site], *, max_lifetime_secs: int, audience: str | None = None) -> None:
        self._sites = dict(sites)
        self._max_lifetime_secs = max_lifetime_secs
        self._audience = audience

    def __bool__(self) -> bool:
        return bool(self._sites)

    def verify(self, token: str, now: float) -> SiteClaims:
        """The claims of a valid token at ``now`` (Unix seconds); a SiteTokenRefused naming the
        first failed check otherwise (module docstring)."""
        try:
            header = jwt.get_unverified_header(token)
            unverified = jwt.decode(token, options={"verify_signature": False})
        except jwt.InvalidTokenError:
            raise MalformedToken("site token: not a well-formed JWT") from None
        alg = header.get("alg")
        if not isinstance(alg, str) or alg.lower() == "none":
            raise AlgNone("site token: alg none is refused")
        issuer = unverified.get("iss")
        site = self._sites.get(issuer) if isinstance(issuer, str) else None
        if site is None:
            raise UnknownIssuer(f"site token: unknown issuer {_shown(issuer)}")
        key = self._key(site, alg, header.get("kid"))
        payload = self._decode(token, key, alg)
        expires_at = self._expiry(payload, now)
        subject = payload.get("sub")
        if not isinstance(subject, str) or not subject:
            raise MissingClaim("site token: missing claim 'sub'")
        if len(subject) > MAX_SUBJECT_CHARS or forbidden_control(subject) is not None:
            raise BadClaim(f"site token: 'sub' must be at most {MAX_SUBJECT_CHARS} characters, no control characters")
        name = payload.get("name")
        if name is not None and not isinstance(name, str):
            raise BadClaim("site token: 'name' must be a string")
        return SiteClaims(site.issuer, subject, (name or "").strip() or subject, expires_at)

    def _key(self, site: Site, alg: str, kid):
        if alg == SECRET_ALGORITHM and site.secret is not None:
            return site.secret
        if alg in KEY_SET_ALGORITHMS and site.keys is not None:
            if not isinstance(kid, str) or not kid:
                raise UnknownKid("site token: no kid: name the key of the site's JWKS that signed it")
            jwk = site.keys.key(kid)
            if jwk.algorithm_name != alg:
                raise AlgNotAccepted(f"site token: key {_shown(kid)} is for {jwk.algorithm_name}, not {alg}")
            return jwk.key
        raise AlgNotAccepted(f"site token: alg {_shown(alg)} is not accepted for this site")

    def _decode(self, token: str, key, alg: str) -> dict:
        # Time is checked by _expiry against ``now``; PyJWT's own exp check is off for that.
        options = {"verify_exp": False, "verify_iat": False, "verify_aud": self._audience is not None,
                   "require": ["exp"]}
        try:
            return jwt.decode(token, key, algorithms=[alg], audience=self._audience, options=options)
        except jwt.InvalidSignatureError:
            raise BadSignature("site token: bad signature (not signed by this site's key)") from None
        except (jwt.InvalidAudienceError, jwt.MissingRequiredClaimError) as exc:
            if isinstance(exc, jwt.InvalidAudienceError) or exc.claim == "aud":
                raise WrongAudience(f"site token: audience must be {_shown(self._audience)}") from None
            raise MissingClaim(f"site token: missing claim {exc.claim!r}") from None
        except jwt.ImmatureSignatureError:
            raise NotYetValid("site token: not valid yet (nbf)") from None
        except jwt.InvalidAlgorithmError:
            raise AlgNotAccepted(f"site token: alg {_shown(alg)} is not accepted for this site") from None
        except jwt.InvalidTokenError:
            raise MalformedToken("site token: not a well-formed JWT") from None

    def _expiry(self, payload: dict, now: float) -> int:
        exp = payload["exp"]
        if not isinstance(exp, (int, float)) or isinstance(exp, bool):
            raise BadClaim("site token: 'exp' must be a number of seconds")
        if exp <= now:
            raise TokenExpired("site token expired")
        if exp - now > self._max_lifetime_secs:
            raise LifetimeTooLong(f"site token: exp is more than {self._max_lifetime_secs} s away; "
                                  "sign shorter-lived tokens")
        return int(exp)


def _shown(value) -> str:
    """A value from a token, cut short and quoted, for a refusal."""
    text = value if isinstance(value, str) else repr(value)
    return repr(text[:_SHOWN_CHARS])
