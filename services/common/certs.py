"""X.509 for gRPC's mutual TLS: a private CA, the certificates it issues, and what a
certificate says about its holder. No file I/O (chorus.common.keys lays the files out).

Every certificate is issued by the deployment's own CA, so what one states is
believed once its chain checks out (gRPC checks it in the TLS handshake):

    server certificate    SAN: the DNS names and IPs its server is reached at;
                          extended key usage serverAuth only
    client certificate    subject CN: who (gateway, membership, ..., or a backend's name);
                          SAN URI ``chorus:role/ROLE``: what it is (chorus.common.grpcauth);
                          SAN URIs ``chorus:allow/SERVICE.METHOD``: a backend's permissions;
                          extended key usage clientAuth only

so a client certificate cannot serve as a server's, nor the other way round.
Keys are ECDSA P-256, signatures SHA-256.
"""

from __future__ import annotations

import datetime
import ipaddress
from collections.abc import Iterable
from dataclasses import dataclass

from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from .grpcauth import ALLOW_URI, ROLE_URI, Holder, holder_from_names

__all__ = ["Authority", "new_private_key", "private_key_pem", "load_private_key", "load_certificate",
           "certificate_pem", "new_authority", "issue_server", "issue_client", "holder_of", "still_good",
           "CertificateError", "CA_VALIDITY_DAYS", "LEAF_VALIDITY_DAYS", "RENEW_WITHIN_DAYS"]

CA_VALIDITY_DAYS = 20 * 365
LEAF_VALIDITY_DAYS = 5 * 365
RENEW_WITHIN_DAYS = 30       # `chorus keys` issues a certificate again this close to its end
_CLOCK_SKEW = datetime.timedelta(hours=1)  # valid from a little before now: clocks differ


class CertificateError(ValueError):
    """A file that is not the PEM certificate or key it should be; the message names it."""


@dataclass(frozen=True)
class Authority:
    """The CA: its certificate and the key that signs with it."""

    certificate: x509.Certificate
    key: ec.EllipticCurvePrivateKey

    @property
    def certificate_pem(self) -> bytes:
        return certificate_pem(self.certificate)


def new_private_key() -> ec.EllipticCurvePrivateKey:
    return ec.generate_private_key(ec.SECP256R1())


def private_key_pem(key: ec.EllipticCurvePrivateKey) -> bytes:
    return key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                             serialization.NoEncryption())


def certificate_pem(certificate: x509.Certificate) -> bytes:
    return certificate.public_bytes(serialization.Encoding.PEM)


def load_private_key(pem: bytes, source: str) -> ec.EllipticCurvePrivateKey:
    try:
        key = serialization.load_pem_private_key(pem, password=None)
    except (ValueError, TypeError) as exc:
        raise CertificateError(f"{source}: not a PEM private key without a password ({exc})") from None
    if not isinstance(key, ec.EllipticCurvePrivateKey):
        raise CertificateError(f"{source}: not an elliptic-curve key")
    return key


def load_certificate(pem: bytes, source: str) -> x509.Certificate:
    try:
        return x509.load_pem_x509_certificate(pem)
    except ValueError as exc:
        raise CertificateError(f"{source}: not a PEM certificate ({exc})") from None


def new_authority(now: datetime.datetime, name: str = "Chorus internal CA") -> Authority:
    key = new_private_key()
    subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, name)])
    certificate = (
        _builder(subject, subject, key.public_key(), now, CA_VALIDITY_DAYS)
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(x509.KeyUsage(digital_signature=False, content_commitment=False, key_encipherment=False,
                                     data_encipherment=False, key_agreement=False, key_cert_sign=True,
                                     crl_sign=True, encipher_only=False, decipher_only=False), critical=True)
        .sign(key, hashes.SHA256())
    )
    return Authority(certificate, key)


def issue_server(ca: Authority, key: ec.EllipticCurvePrivateKey, *, name: str, hosts: Iterable[str],
                 now: datetime.datetime) -> x509.Certificate:
    """A server certificate for ``hosts`` (DNS names or IP addresses)."""
    return _leaf(ca, key, name, [_general_name(host) for host in hosts], ExtendedKeyUsageOID.SERVER_AUTH, now)


def issue_client(ca: Authority, key: ec.EllipticCurvePrivateKey, *, name: str, role: str,
                 permissions: Iterable[str] = (), now: datetime.datetime) -> x509.Certificate:
    """A client certificate for ``name`` acting as ``role`` (with ``permissions``, for a backend)."""
    uris = [x509.UniformResourceIdentifier(ROLE_URI + role),
            *(x509.UniformResourceIdentifier(ALLOW_URI + p) for p in sorted(permissions))]
    return _leaf(ca, key, name, uris, ExtendedKeyUsageOID.CLIENT_AUTH, now)


def holder_of(certificate: x509.Certificate) -> Holder:
    names = certificate.subject.get_attributes_for_oid(NameOID.COMMON_NAME)
    uris = [name.value for name in _alternative_names(certificate) if isinstance(name, x509.UniformResourceIdentifier)]
    return holder_from_names(str(names[0].value) if names else "", uris)


def still_good(certificate: x509.Certificate, ca: Authority, now: datetime.datetime, *,
               hosts: Iterable[str] = (), holder: Holder | None = None) -> bool:
    """Whether ``certificate`` can be kept: issued by ``ca``, not ending within
    RENEW_WITHIN_DAYS, naming every one of ``hosts`` and stating exactly ``holder``."""
    try:
        certificate.verify_directly_issued_by(ca.certificate)
    except (ValueError, TypeError, InvalidSignature):
        return False
    if certificate.not_valid_after_utc - now < datetime.timedelta(days=RENEW_WITHIN_DAYS):
        return False
    if holder is not None and holder_of(certificate) != holder:
        return False
    return set(_general_name(host) for host in hosts) <= set(_alternative_names(certificate))


def _leaf(ca: Authority, key: ec.EllipticCurvePrivateKey, name: str, alternative_names: list[x509.GeneralName],
          usage: x509.ObjectIdentifier, now: datetime.datetime) -> x509.Certificate:
    subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, name)])
    return (
        _builder(subject, ca.certificate.subject, key.public_key(), now, LEAF_VALIDITY_DAYS)
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(x509.KeyUsage(digital_signature=True, content_commitment=False, key_encipherment=False,
                                     data_encipherment=False, key_agreement=False, key_cert_sign=False,
                                     crl_sign=False, encipher_only=False, decipher_only=False), critical=True)
        .add_extension(x509.ExtendedKeyUsage([usage]), critical=False)
        .add_extension(x509.SubjectAlternativeName(alternative_names), critical=False)
        .add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(ca.key.public_key()), critical=False)
        .sign(ca.key, hashes.SHA256())
    )


def _builder(subject: x509.Name, issuer: x509.Name, public_key, now: datetime.datetime,
             days: int) -> x509.CertificateBuilder:
    return (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(issuer)
        .public_key(public_key)
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - _CLOCK_SKEW)
        .not_valid_after(now + datetime.timedelta(days=days))
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(public_key), critical=False)
    )


def _general_name(host: str) -> x509.GeneralName:
    try:
        return x509.IPAddress(ipaddress.ip_address(host))
    except ValueError:
        return x509.DNSName(host)


def _alternative_names(certificate: x509.Certificate) -> list[x509.GeneralName]:
    try:
        return list(certificate.extensions.get_extension_for_class(x509.SubjectAlternativeName).value)
    except x509.ExtensionNotFound:
        return []
