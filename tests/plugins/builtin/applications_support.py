"""Helpers shared by the application-monitor tests (``test_applications_*.py``).

Each of those plugins talks to a real service on loopback; what they share is
how a plugin is built and checked the way the hub would, free ports, and a
throw-away certificate authority for the TLS servers the tests start.
"""

from __future__ import annotations

import datetime as dt
import ipaddress
import socket
import ssl
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID
from pydantic import BaseModel
from tests.support.plugin_checks import collect_checked as collect_checked

from unity_sdk import PluginBase, PluginMetadata, check_plugin_class, mask_secrets, secret_fields

P = TypeVar("P", bound=PluginBase)


def make(cls: type[P], **config: Any) -> P:
    """An instance of ``cls`` with ``config`` validated and defaults filled in, as the hub does."""
    schema = cls().get_metadata().config_schema
    assert isinstance(schema, type)
    assert issubclass(schema, BaseModel)
    return cls(schema.model_validate(config).model_dump())


async def timed_collect(plugin: PluginBase) -> tuple[dict[str, Any], float]:
    """``collect_checked`` and the seconds it took."""
    started = time.perf_counter()
    document = await collect_checked(plugin)
    return document, time.perf_counter() - started


def check_metadata(
    cls: type[PluginBase], plugin_id: str, category: str, *, secrets: set[str] = frozenset()
) -> PluginMetadata:
    """The checks every application monitor passes: loader, metadata, schema, secrets."""
    metadata = check_plugin_class(cls, expected_id=plugin_id)
    assert metadata.id == plugin_id
    assert metadata.category == category
    assert metadata.version == "1.0.0"
    assert metadata.author == "Unity developers"
    assert metadata.description
    assert metadata.tags
    assert metadata.requires.packages
    assert not metadata.supports_remote
    assert all(field.description for field in metadata.metrics)
    assert all(field.unit for field in metadata.metrics if field.numeric)
    schema = metadata.config_schema
    assert isinstance(schema, type)
    assert issubclass(schema, BaseModel)
    for name, field in schema.model_fields.items():
        assert field.description, f"{cls.__name__}.{name} has no description"
    assert secret_fields(metadata) == secrets
    if secrets:
        masked = mask_secrets(metadata, dict.fromkeys(secrets, "s3cret"))
        assert "s3cret" not in masked.values()
    return metadata


def free_port(kind: int = socket.SOCK_STREAM) -> int:
    """A port on 127.0.0.1 that nothing listens on right now."""
    with socket.socket(socket.AF_INET, kind) as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def wait_for_port(port: int, timeout: float = 10.0) -> None:
    """Block until something accepts TCP connections on 127.0.0.1:``port``."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.5):
                return
        except OSError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.05)


# -- a throw-away certificate authority ----------------------------------------------------


def _name(common_name: str) -> x509.Name:
    return x509.Name(
        [
            x509.NameAttribute(NameOID.ORGANIZATION_NAME, "Unity tests"),
            x509.NameAttribute(NameOID.COMMON_NAME, common_name),
        ]
    )


def _pem_key(key: ec.EllipticCurvePrivateKey) -> bytes:
    return key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )


@dataclass(frozen=True)
class CertFiles:
    """A server certificate and its key, written as PEM files."""

    cert: Path
    key: Path
    not_after: dt.datetime

    def server_context(self) -> ssl.SSLContext:
        context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        context.load_cert_chain(self.cert, self.key)
        return context


class TestCA:
    """A CA that issues certificates for the loopback servers of a test."""

    __test__ = False

    def __init__(self, folder: Path, name: str = "Unity Test CA") -> None:
        self.folder = folder
        self.key = ec.generate_private_key(ec.SECP256R1())
        now = dt.datetime.now(dt.UTC)
        self.name = _name(name)
        self.certificate = (
            x509.CertificateBuilder()
            .subject_name(self.name)
            .issuer_name(self.name)
            .public_key(self.key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - dt.timedelta(days=1))
            .not_valid_after(now + dt.timedelta(days=3650))
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
            .add_extension(
                x509.SubjectKeyIdentifier.from_public_key(self.key.public_key()), critical=False
            )
            .sign(self.key, hashes.SHA256())
        )
        self.bundle = folder / f"{name.replace(' ', '-').lower()}.pem"
        self.bundle.write_bytes(self.certificate.public_bytes(serialization.Encoding.PEM))

    def issue(
        self,
        stem: str,
        *,
        hosts: tuple[str, ...] = ("localhost", "127.0.0.1"),
        valid_for: dt.timedelta = dt.timedelta(days=365),
        expired: bool = False,
        self_signed: bool = False,
    ) -> CertFiles:
        """A server certificate for ``hosts``, signed by this CA (or by itself)."""
        key = ec.generate_private_key(ec.SECP256R1())
        now = dt.datetime.now(dt.UTC)
        if expired:
            not_before, not_after = now - dt.timedelta(days=30), now - dt.timedelta(days=2)
        else:
            not_before, not_after = now - dt.timedelta(hours=1), now + valid_for
        names: list[x509.GeneralName] = []
        for host in hosts:
            try:
                names.append(x509.IPAddress(ipaddress.ip_address(host)))
            except ValueError:
                names.append(x509.DNSName(host))
        subject = _name(hosts[0])
        builder = (
            x509.CertificateBuilder()
            .subject_name(subject)
            .issuer_name(subject if self_signed else self.name)
            .public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(not_before)
            .not_valid_after(not_after)
            .add_extension(x509.SubjectAlternativeName(names), critical=False)
            .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
            .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
        )
        if not self_signed:
            builder = builder.add_extension(
                x509.AuthorityKeyIdentifier.from_issuer_public_key(self.key.public_key()),
                critical=False,
            )
        certificate = builder.sign(key if self_signed else self.key, hashes.SHA256())
        cert_path = self.folder / f"{stem}.pem"
        key_path = self.folder / f"{stem}.key"
        cert_path.write_bytes(certificate.public_bytes(serialization.Encoding.PEM))
        key_path.write_bytes(_pem_key(key))
        return CertFiles(cert_path, key_path, not_after)
