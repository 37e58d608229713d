"""Certificates and keys for the local control plane: one CA, a serving cert, client certs, SA key.

Real TLS and client-certificate identities are what make RBAC in the local cluster real: the
controller manager and scheduler authenticate as their well-known users and get exactly the
bootstrap roles a production cluster gives them.
"""

from __future__ import annotations

import datetime
import ipaddress
from dataclasses import dataclass
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

VALIDITY = datetime.timedelta(days=3650)


@dataclass(frozen=True)
class Identity:
    """A client certificate subject: user name (CN) and groups (O)."""

    file_stem: str
    user: str
    groups: tuple[str, ...] = ()


ADMIN = Identity("admin", "execflow-admin", ("system:masters",))
CONTROLLER_MANAGER = Identity("kube-controller-manager", "system:kube-controller-manager")
SCHEDULER = Identity("kube-scheduler", "system:kube-scheduler")
CLIENT_IDENTITIES = (ADMIN, CONTROLLER_MANAGER, SCHEDULER)
KWOK_SERVING = "kwok"
"""The file stem of the certificate kwok serves its kubelet-like endpoints (pod logs) with."""


def _key() -> ec.EllipticCurvePrivateKey:
    return ec.generate_private_key(ec.SECP256R1())


def _write_key(key: ec.EllipticCurvePrivateKey, path: Path) -> None:
    path.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    path.chmod(0o600)


def _write_cert(cert: x509.Certificate, path: Path) -> None:
    path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))


def _builder(
    subject: x509.Name, issuer: x509.Name, public_key: ec.EllipticCurvePublicKey
) -> x509.CertificateBuilder:
    now = datetime.datetime.now(datetime.UTC)
    return (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(issuer)
        .public_key(public_key)
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + VALIDITY)
    )


def _serving(
    directory: Path,
    stem: str,
    *,
    common_name: str,
    names: list[x509.GeneralName],
    ca_key: ec.EllipticCurvePrivateKey,
    ca_name: x509.Name,
) -> None:
    """A server certificate for names, signed by the CA, written as STEM.crt and STEM.key."""
    key = _key()
    cert = (
        _builder(
            x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common_name)]),
            ca_name,
            key.public_key(),
        )
        .add_extension(x509.SubjectAlternativeName(names), critical=False)
        .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
        .sign(ca_key, hashes.SHA256())
    )
    _write_key(key, directory / f"{stem}.key")
    _write_cert(cert, directory / f"{stem}.crt")


def generate(directory: Path, service_ip: str) -> None:
    """Write the CA, the serving certificates (API server, kwok), the client certificates and the
    service-account key pair into directory."""
    directory.mkdir(parents=True, exist_ok=True)
    ca_key = _key()
    ca_name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "execflow-local-ca")])
    ca_cert = (
        _builder(ca_name, ca_name, ca_key.public_key())
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
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
    _write_key(ca_key, directory / "ca.key")
    _write_cert(ca_cert, directory / "ca.crt")

    names: list[x509.GeneralName] = [
        x509.DNSName(name)
        for name in (
            "localhost",
            "kubernetes",
            "kubernetes.default",
            "kubernetes.default.svc",
            "kubernetes.default.svc.cluster.local",
        )
    ]
    names += [x509.IPAddress(ipaddress.ip_address(ip)) for ip in ("127.0.0.1", service_ip)]
    _serving(
        directory,
        "apiserver",
        common_name="kube-apiserver",
        names=names,
        ca_key=ca_key,
        ca_name=ca_name,
    )
    # kwok's kubelet-like server: the API server verifies it when it proxies pods/log to a node.
    loopback = [x509.DNSName("localhost"), x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]
    _serving(
        directory, KWOK_SERVING, common_name="kwok", names=loopback, ca_key=ca_key, ca_name=ca_name
    )

    for identity in CLIENT_IDENTITIES:
        key = _key()
        attributes = [x509.NameAttribute(NameOID.COMMON_NAME, identity.user)]
        attributes += [x509.NameAttribute(NameOID.ORGANIZATION_NAME, g) for g in identity.groups]
        cert = (
            _builder(x509.Name(attributes), ca_name, key.public_key())
            .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.CLIENT_AUTH]), critical=False)
            .sign(ca_key, hashes.SHA256())
        )
        _write_key(key, directory / f"{identity.file_stem}.key")
        _write_cert(cert, directory / f"{identity.file_stem}.crt")

    sa_key = _key()
    _write_key(sa_key, directory / "sa.key")
    (directory / "sa.pub").write_bytes(
        sa_key.public_key().public_bytes(
            serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
        )
    )


def missing(directory: Path) -> list[str]:
    """The files `generate` writes that are not in directory (all of them when it is absent)."""
    clients = (identity.file_stem for identity in CLIENT_IDENTITIES)
    stems = ("ca", "apiserver", KWOK_SERVING, *clients)
    names = [f"{stem}.{ending}" for stem in stems for ending in ("crt", "key")]
    names += ["sa.key", "sa.pub"]
    return [name for name in names if not (directory / name).is_file()]
