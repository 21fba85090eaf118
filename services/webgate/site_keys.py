"""Read the configured sites' keys once, at start: HS256 secrets and JWKS files from disk, a
PyJWKClient for each JWKS URL. A problem stops the gateway with a message naming the site and
the file (ValueError), instead of refusing every one of that site's users later."""

from __future__ import annotations

from pathlib import Path

import jwt

from chorus.common.sites import SiteSpec, is_url

from .site_tokens import KEY_SET_ALGORITHMS, RemoteKeySet, Site, StaticKeySet

__all__ = ["load_sites", "MIN_SECRET_BYTES"]

MIN_SECRET_BYTES = 32  # as for Chorus's own token key: HS256 with less is guessable offline


def load_sites(specs: tuple[SiteSpec, ...], *, jwks_cache_secs: float, fetch_timeout_secs: float) -> dict[str, Site]:
    return {spec.issuer: Site(spec.issuer, secret=_secret(spec) if spec.key_file else None,
                              keys=_key_set(spec, jwks_cache_secs, fetch_timeout_secs) if spec.jwks else None)
            for spec in specs}


def _secret(spec: SiteSpec) -> bytes:
    path = Path(spec.key_file).expanduser()
    try:
        secret = path.read_bytes().strip()
    except OSError as exc:
        raise ValueError(f"site {spec.issuer!r}: cannot read its key file {path}: {exc.strerror}") from None
    if len(secret) < MIN_SECRET_BYTES:
        raise ValueError(f"site {spec.issuer!r}: the HS256 secret in {path} must be at least {MIN_SECRET_BYTES} "
                         f"bytes, got {len(secret)}")
    return secret


def _key_set(spec: SiteSpec, cache_secs: float, timeout_secs: float):
    if is_url(spec.jwks):
        return RemoteKeySet(jwt.PyJWKClient(spec.jwks, lifespan=cache_secs, timeout=timeout_secs))
    path = Path(spec.jwks).expanduser()
    try:
        text = path.read_text()
    except OSError as exc:
        raise ValueError(f"site {spec.issuer!r}: cannot read its JWKS file {path}: {exc.strerror}") from None
    try:
        jwks = jwt.PyJWKSet.from_json(text)
    except (jwt.PyJWKSetError, jwt.PyJWKError, ValueError, AttributeError) as exc:
        raise ValueError(f"site {spec.issuer!r}: {path} is not a usable JWKS: {exc}") from None
    keys = [k for k in jwks.keys if k.key_id and k.algorithm_name in KEY_SET_ALGORITHMS]
    if not keys:
        raise ValueError(f"site {spec.issuer!r}: {path} has no {'/'.join(KEY_SET_ALGORITHMS)} key with a kid")
    return StaticKeySet(jwks)
