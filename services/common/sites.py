"""The settings that let other websites sign in their own users: which sites, with which keys,
and which page origins may open WebSockets. Shared by webgate (which uses them) and `chorus up`
(which passes them through).

A site is an issuer name (the ``iss`` its tokens carry) with at least one key source: an HS256
secret in a file, a JWKS (RS256/ES256 public keys, rotated by ``kid``) in a file or at an
https URL, or both. On a command line each ``--site-issuer NAME`` opens a site and the
``--site-key-file`` / ``--site-jwks`` after it belong to it::

    --site-issuer school --site-key-file /run/secrets/school
    --site-issuer shop --site-jwks https://shop.example/.well-known/jwks.json

In the environment, ``CHORUS_SITES`` holds the same as JSON:
``[{"issuer": "school", "key_file": "/run/secrets/school"}, {"issuer": "shop", "jwks": "https://..."}]``.
"""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Annotated
from urllib.parse import urlsplit

from pydantic import AfterValidator, BaseModel, BeforeValidator, ConfigDict, Field, model_validator
from pydantic_core import from_json

from chorus.common.settings import Setting

__all__ = ["SiteSpec", "Sites", "SITES", "Origins", "ALLOWED_ORIGINS", "site_flags", "is_url",
           "MAX_ISSUER_CHARS"]

MAX_ISSUER_CHARS = 256
ISSUER_FLAG, KEY_FILE_FLAG, JWKS_FLAG = "--site-issuer", "--site-key-file", "--site-jwks"


class SiteSpec(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    issuer: Annotated[str, Field(min_length=1, max_length=MAX_ISSUER_CHARS)]
    key_file: Path | None = None  # HS256 secret, at least 32 bytes
    jwks: str | None = None       # a JWKS file path or an http(s) URL

    @model_validator(mode="after")
    def _has_a_key(self) -> "SiteSpec":
        if self.key_file is None and not self.jwks:
            raise ValueError(f"site {self.issuer!r} has no key: give {KEY_FILE_FLAG} or {JWKS_FLAG} after its "
                             f"{ISSUER_FLAG}")
        return self


def is_url(source: str) -> bool:
    return urlsplit(source).scheme in ("http", "https")


def _from_text(value: object) -> object:
    """``CHORUS_SITES`` is JSON text; the flags hand over a list already."""
    if isinstance(value, str):
        if not value.strip():
            return ()
        try:
            return from_json(value)
        except ValueError as exc:
            raise ValueError(f"must be a JSON list of sites ({exc})") from None
    return value


def _distinct(sites: tuple[SiteSpec, ...]) -> tuple[SiteSpec, ...]:
    issuers = [site.issuer for site in sites]
    if len(set(issuers)) != len(issuers):
        raise ValueError(f"names an issuer twice: {sorted(i for i in set(issuers) if issuers.count(i) > 1)}")
    return sites


Sites = Annotated[tuple[SiteSpec, ...], BeforeValidator(_from_text), AfterValidator(_distinct)]


class _SiteFlags(argparse.Action):
    """``--site-issuer`` starts a site; ``--site-key-file`` and ``--site-jwks`` fill the last one."""

    def __call__(self, parser, namespace, value, option_string=None):
        sites = list(getattr(namespace, self.dest) or [])
        if option_string == ISSUER_FLAG:
            sites.append({"issuer": value})
        elif not sites:
            parser.error(f"{option_string} must follow the {ISSUER_FLAG} of its site")
        else:
            field = "key_file" if option_string == KEY_FILE_FLAG else "jwks"
            if field in sites[-1]:
                parser.error(f"site {sites[-1]['issuer']!r} has {option_string} twice")
            sites[-1] = {**sites[-1], field: value}
        setattr(namespace, self.dest, sites)


SITES = Setting((ISSUER_FLAG, KEY_FILE_FLAG, JWKS_FLAG), "CHORUS_SITES",
                f"websites whose signed tokens sign in their own users: {ISSUER_FLAG} NAME, then "
                f"{KEY_FILE_FLAG} PATH (HS256 secret, >= 32 bytes) and/or {JWKS_FLAG} PATH_OR_URL "
                "(RS256/ES256 keys by kid); repeat for several sites", action=_SiteFlags)


def site_flags(sites: tuple[SiteSpec, ...]) -> list[str]:
    """The command line that says ``sites`` (for `chorus up` to pass them to webgate)."""
    flags: list[str] = []
    for site in sites:
        flags += [ISSUER_FLAG, site.issuer]
        if site.key_file is not None:
            flags += [KEY_FILE_FLAG, str(site.key_file)]
        if site.jwks:
            flags += [JWKS_FLAG, site.jwks]
    return flags


def _origins(value: object) -> object:
    if not isinstance(value, str):
        return value
    origins = []
    for part in (p.strip() for p in value.split(",")):
        if not part:
            continue
        split = urlsplit(part)
        if split.scheme not in ("http", "https") or not split.netloc or split.path not in ("", "/") \
                or split.query or split.fragment:
            raise ValueError(f"must be origins such as https://www.example.com (scheme, host, port; no path), "
                             f"got {part!r}")
        origins.append(f"{split.scheme}://{split.netloc.lower()}")
    return tuple(origins)


Origins = Annotated[tuple[str, ...], BeforeValidator(_origins)]

ALLOWED_ORIGINS = Setting(
    "--allowed-origins", "CHORUS_ALLOWED_ORIGINS",
    "comma-separated origins (https://site.example) of other sites' pages allowed to open WebSockets and "
    "call the API; the gateway's own origin always is")
