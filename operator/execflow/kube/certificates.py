"""The admission webhook's TLS: a self-signed CA the API server trusts, and a serving certificate.

The API server only calls a webhook over HTTPS and checks the certificate against the `caBundle`
of the webhook configuration, so the operator makes both itself (no cert-manager needed). Out of
cluster each start makes a fresh pair in memory. In a cluster, every replica behind the webhook
Service must present a certificate the one registered CA signed, so the pair lives in a Secret in
the operator's namespace: the first replica creates it, the others (and later starts) read it, and
a pair that no longer fits (expiring, other host names, unreadable) is replaced with a write
conditional on the Secret's resourceVersion, so racing replicas end up with the same pair.
"""

from __future__ import annotations

import base64
import datetime
import ipaddress
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from execflow.kube.client import Kube, Resource
from execflow.kube.errors import ConflictError, NotFoundError

SECRETS = Resource("", "v1", "secrets")
VALIDITY = datetime.timedelta(days=3650)
RENEW_BEFORE = datetime.timedelta(days=30)
"""A stored pair that expires sooner than this is replaced at start-up."""
CLOCK_SKEW = datetime.timedelta(minutes=5)
CA_KEY, CERT_KEY, KEY_KEY = "ca.crt", "tls.crt", "tls.key"
"""The Secret's keys (a `kubernetes.io/tls` Secret, plus the CA)."""
ATTEMPTS = 3


@dataclass(frozen=True)
class ServingCertificate:
    """PEM bytes: the CA (the webhook configuration's caBundle), the certificate and its key."""

    ca: bytes
    certificate: bytes
    key: bytes


def _general_name(host: str) -> x509.GeneralName:
    try:
        return x509.IPAddress(ipaddress.ip_address(host))
    except ValueError:
        return x509.DNSName(host)


def _pem_key(key: ec.EllipticCurvePrivateKey) -> bytes:
    return key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )


def _name(common_name: str) -> x509.Name:
    return x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common_name)])


def generate(
    hosts: Sequence[str], now: datetime.datetime, validity: datetime.timedelta = VALIDITY
) -> ServingCertificate:
    """A new CA and a certificate it signs for `hosts` (DNS names or IP addresses)."""
    if not hosts:
        raise ValueError("a serving certificate needs at least one host name or address")
    start, end = now - CLOCK_SKEW, now + validity
    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca_name = _name("execflow-webhook-ca")
    ca = (
        x509.CertificateBuilder()
        .subject_name(ca_name)
        .issuer_name(ca_name)
        .public_key(ca_key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(start)
        .not_valid_after(end)
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(
            x509.KeyUsage(
                digital_signature=True,
                content_commitment=False,
                key_encipherment=False,
                data_encipherment=False,
                key_agreement=False,
                key_cert_sign=True,
                crl_sign=True,
                encipher_only=False,
                decipher_only=False,
            ),
            critical=True,
        )
        .sign(ca_key, hashes.SHA256())
    )
    key = ec.generate_private_key(ec.SECP256R1())
    certificate = (
        x509.CertificateBuilder()
        # Clients match the host against the SANs only; a CN holds at most 64 characters.
        .subject_name(_name("execflow-webhook"))
        .issuer_name(ca_name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(start)
        .not_valid_after(end)
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(
            x509.SubjectAlternativeName([_general_name(host) for host in hosts]), critical=False
        )
        .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
        .sign(ca_key, hashes.SHA256())
    )
    return ServingCertificate(
        ca=ca.public_bytes(serialization.Encoding.PEM),
        certificate=certificate.public_bytes(serialization.Encoding.PEM),
        key=_pem_key(key),
    )


def problems(pair: ServingCertificate, hosts: Sequence[str], now: datetime.datetime) -> list[str]:
    """Why `pair` cannot serve `hosts` until well after `now`; empty when it can."""
    try:
        ca = x509.load_pem_x509_certificate(pair.ca)
        certificate = x509.load_pem_x509_certificate(pair.certificate)
        key = serialization.load_pem_private_key(pair.key, password=None)
    except ValueError as error:
        return [f"unreadable: {error}"]
    found: list[str] = []
    try:
        certificate.verify_directly_issued_by(ca)
    except (ValueError, TypeError, InvalidSignature):
        found.append("the certificate is not signed by the CA")
    if key.public_key().public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    ) != certificate.public_key().public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    ):
        found.append("the key does not belong to the certificate")
    try:
        names = certificate.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    except x509.ExtensionNotFound:
        names = x509.SubjectAlternativeName([])
    missing = [host for host in hosts if _general_name(host) not in names]
    if missing:
        found.append(f"not valid for {', '.join(missing)}")
    expires = min(ca.not_valid_after_utc, certificate.not_valid_after_utc)
    if expires < now + RENEW_BEFORE:
        found.append(f"expires at {expires.isoformat()}")
    if max(ca.not_valid_before_utc, certificate.not_valid_before_utc) > now + CLOCK_SKEW:
        found.append("not valid yet")
    return found


def _data(pair: ServingCertificate) -> dict[str, str]:
    return {
        CA_KEY: base64.b64encode(pair.ca).decode(),
        CERT_KEY: base64.b64encode(pair.certificate).decode(),
        KEY_KEY: base64.b64encode(pair.key).decode(),
    }


def _from_secret(secret: Mapping[str, Any]) -> ServingCertificate | None:
    data = secret.get("data") or {}
    try:
        return ServingCertificate(
            ca=base64.b64decode(data[CA_KEY]),
            certificate=base64.b64decode(data[CERT_KEY]),
            key=base64.b64decode(data[KEY_KEY]),
        )
    except (KeyError, TypeError, ValueError):
        return None


async def shared_certificate(
    kube: Kube,
    namespace: str,
    name: str,
    hosts: Sequence[str],
    *,
    now: datetime.datetime,
    labels: Mapping[str, str] | None = None,
) -> ServingCertificate:
    """The pair in the Secret `namespace/name`, created or replaced when it does not fit."""
    for _ in range(ATTEMPTS):
        try:
            secret = await kube.get(SECRETS, namespace, name)
        except NotFoundError:
            fresh = generate(hosts, now)
            body = {
                "apiVersion": "v1",
                "kind": "Secret",
                "metadata": {"name": name, "namespace": namespace, "labels": dict(labels or {})},
                "type": "kubernetes.io/tls",
                "data": _data(fresh),
            }
            # A replica that created it first wins: its Secret comes back instead, and is checked.
            secret = await kube.create(SECRETS, namespace, body)
        stored = _from_secret(secret)
        if stored is not None and not problems(stored, hosts, now):
            return stored
        fresh = generate(hosts, now)
        try:
            await kube.patch(SECRETS, namespace, name, {"data": _data(fresh)}, expect=secret)
        except (ConflictError, NotFoundError):
            continue  # another replica replaced (or someone deleted) it meanwhile: read again
        return fresh
    raise ConflictError(
        409, "Conflict", f"the Secret {namespace}/{name} kept changing while it was being replaced"
    )
