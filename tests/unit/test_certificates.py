"""The admission webhook's certificates (execflow.kube.certificates), made and checked in memory.

Pure: no cluster. A generated pair must be what the API server accepts (a certificate the CA
signed, for the host it dials, valid for years), and the check that decides whether a stored pair
is reused must refuse pairs that would fail a handshake or expire soon.
"""

import datetime
import ipaddress

import pytest
from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import serialization
from cryptography.x509.oid import ExtendedKeyUsageOID

from execflow.kube.certificates import RENEW_BEFORE, ServingCertificate, generate, problems

NOW = datetime.datetime(2026, 5, 1, 12, 0, tzinfo=datetime.UTC)
SERVICE_HOSTS = ("execflow-webhook.execflow-system.svc", "execflow-webhook.execflow-system")


def load(pair: ServingCertificate) -> tuple[x509.Certificate, x509.Certificate]:
    return (
        x509.load_pem_x509_certificate(pair.ca),
        x509.load_pem_x509_certificate(pair.certificate),
    )


def test_the_certificate_verifies_against_the_ca_it_comes_with() -> None:
    ca, certificate = load(generate(["127.0.0.1"], NOW))

    certificate.verify_directly_issued_by(ca)
    assert ca.extensions.get_extension_for_class(x509.BasicConstraints).value.ca
    assert not certificate.extensions.get_extension_for_class(x509.BasicConstraints).value.ca
    usage = certificate.extensions.get_extension_for_class(x509.ExtendedKeyUsage).value
    assert list(usage) == [ExtendedKeyUsageOID.SERVER_AUTH]


def test_another_pairs_ca_does_not_verify_the_certificate() -> None:
    _, certificate = load(generate(["127.0.0.1"], NOW))
    other_ca, _ = load(generate(["127.0.0.1"], NOW))

    with pytest.raises(InvalidSignature):
        certificate.verify_directly_issued_by(other_ca)


def test_a_local_certificate_names_the_loopback_address_as_an_ip() -> None:
    _, certificate = load(generate(["127.0.0.1"], NOW))

    names = certificate.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    assert names.get_values_for_type(x509.IPAddress) == [ipaddress.ip_address("127.0.0.1")]
    assert names.get_values_for_type(x509.DNSName) == []


def test_a_service_certificate_names_the_service_as_the_api_server_dials_it() -> None:
    _, certificate = load(generate(SERVICE_HOSTS, NOW))

    names = certificate.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    assert names.get_values_for_type(x509.DNSName) == list(SERVICE_HOSTS)


def test_a_host_name_longer_than_a_common_name_may_be_is_still_named() -> None:
    host = f"execflow-webhook.{'n' * 63}.svc"

    _, certificate = load(generate([host], NOW))

    names = certificate.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    assert names.get_values_for_type(x509.DNSName) == [host]


def test_the_pair_is_valid_now_and_for_years() -> None:
    ca, certificate = load(generate(["127.0.0.1"], NOW))

    for each in (ca, certificate):
        assert each.not_valid_before_utc <= NOW
        assert each.not_valid_after_utc >= NOW + datetime.timedelta(days=365 * 5)


def test_the_key_belongs_to_the_certificate() -> None:
    pair = generate(["127.0.0.1"], NOW)
    key = serialization.load_pem_private_key(pair.key, password=None)

    public = serialization.PublicFormat.SubjectPublicKeyInfo
    assert key.public_key().public_bytes(serialization.Encoding.DER, public) == (
        load(pair)[1].public_key().public_bytes(serialization.Encoding.DER, public)
    )


def test_a_fresh_pair_has_no_problems_for_its_hosts() -> None:
    assert problems(generate(SERVICE_HOSTS, NOW), SERVICE_HOSTS, NOW) == []


def test_a_pair_for_other_hosts_is_not_reused() -> None:
    pair = generate(["old-webhook.execflow-system.svc"], NOW)

    assert problems(pair, SERVICE_HOSTS, NOW) == [f"not valid for {', '.join(SERVICE_HOSTS)}"]


def test_a_pair_that_expires_within_the_renewal_window_is_not_reused() -> None:
    pair = generate(["127.0.0.1"], NOW, validity=RENEW_BEFORE + datetime.timedelta(days=1))

    assert problems(pair, ["127.0.0.1"], NOW) == []
    later = NOW + datetime.timedelta(days=2)
    assert [p.split(" at ")[0] for p in problems(pair, ["127.0.0.1"], later)] == ["expires"]


def test_a_certificate_with_another_pairs_ca_or_key_is_not_reused() -> None:
    first, second = generate(["127.0.0.1"], NOW), generate(["127.0.0.1"], NOW)

    mixed = ServingCertificate(ca=second.ca, certificate=first.certificate, key=second.key)

    assert problems(mixed, ["127.0.0.1"], NOW) == [
        "the certificate is not signed by the CA",
        "the key does not belong to the certificate",
    ]


def test_unreadable_pem_is_a_problem_not_an_exception() -> None:
    pair = ServingCertificate(ca=b"not a certificate", certificate=b"", key=b"")

    assert [p.split(":")[0] for p in problems(pair, ["127.0.0.1"], NOW)] == ["unreadable"]


def test_a_certificate_needs_a_host() -> None:
    with pytest.raises(ValueError, match="at least one host"):
        generate([], NOW)
