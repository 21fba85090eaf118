"""A website that signs its own users into Chorus, for tests: its secret or key pair, its JWKS,
and the tokens it mints (well-formed ones and each kind of bad one)."""

from __future__ import annotations

import base64
import json
import secrets
import time
from dataclasses import dataclass, field
from pathlib import Path

import jwt
from cryptography.hazmat.primitives.asymmetric import ec, rsa


@dataclass
class SharedSecretSite:
    """A site signing HS256 with a secret it shares with Chorus (``--site-key-file``)."""

    issuer: str
    secret: bytes = field(default_factory=lambda: secrets.token_hex(32).encode())

    def write_key(self, folder: Path) -> Path:
        path = folder / f"{self.issuer}.key"
        path.write_bytes(self.secret + b"\n")
        return path

    def token(self, sub: str | None = "user-1", name: str | None = "Ann Example", lifetime: float = 300,
              **claims) -> str:
        return jwt.encode(_claims(self.issuer, sub, name, lifetime, claims), self.secret, algorithm="HS256")


@dataclass
class KeyPairSite:
    """A site signing RS256 or ES256, publishing its public keys as a JWKS (``--site-jwks``)."""

    issuer: str
    algorithm: str = "RS256"
    keys: dict = field(default_factory=dict)  # kid -> private key

    def __post_init__(self) -> None:
        if not self.keys:
            self.rotate()

    def rotate(self) -> str:
        """A new key pair under a new kid (the old ones stay published); its kid."""
        kid = f"k{len(self.keys) + 1}-{secrets.token_hex(3)}"
        self.keys[kid] = (rsa.generate_private_key(public_exponent=65537, key_size=2048)
                          if self.algorithm == "RS256" else ec.generate_private_key(ec.SECP256R1()))
        return kid

    @property
    def current_kid(self) -> str:
        return list(self.keys)[-1]

    def jwks(self) -> dict:
        algorithm = jwt.get_algorithm_by_name(self.algorithm)
        keys = []
        for kid, private in self.keys.items():
            jwk = json.loads(algorithm.to_jwk(private.public_key()))
            keys.append({**jwk, "kid": kid, "use": "sig"})
        return {"keys": keys}

    def write_jwks(self, folder: Path) -> Path:
        path = folder / f"{self.issuer}.jwks.json"
        path.write_text(json.dumps(self.jwks()))
        return path

    def token(self, sub: str | None = "user-1", name: str | None = "Ann Example", lifetime: float = 300,
              kid: str | None = None, **claims) -> str:
        kid = kid or self.current_kid
        return jwt.encode(_claims(self.issuer, sub, name, lifetime, claims), self.keys[self.current_kid
                          if kid not in self.keys else kid], algorithm=self.algorithm, headers={"kid": kid})


def unsigned_token(issuer: str, sub: str = "user-1", lifetime: float = 300) -> str:
    """An ``alg: none`` token: what an attacker sends hoping the signature is not checked."""
    header = _b64(json.dumps({"alg": "none", "typ": "JWT"}).encode())
    body = _b64(json.dumps(_claims(issuer, sub, "Mallory", lifetime, {})).encode())
    return f"{header}.{body}."


def _claims(issuer: str, sub: str | None, name: str | None, lifetime: float, extra: dict) -> dict:
    claims = {"iss": issuer, "exp": int(time.time() + lifetime)}
    if sub is not None:
        claims["sub"] = sub
    if name is not None:
        claims["name"] = name
    return {**claims, **extra}


def _b64(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()
