"""Turning credential input into what is stored: public facts and the secret payload.

SSH keys are generated (ed25519) or imported (OpenSSH or PEM, optionally
encrypted) with asyncssh and stored unencrypted inside the sealed payload,
so no passphrase is needed later. TLS certificates are parsed with
``cryptography.x509``: subject, issuer and expiry become public facts and the
private key must match the certificate.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import TYPE_CHECKING, Any

from pydantic import SecretStr

from unity.credentials.errors import InvalidCredentialError
from unity.credentials.schemas import (
    ApiTokenInput,
    CredentialInput,
    PasswordInput,
    ServerLoginInput,
    SshKeyInput,
    TlsCertificateInput,
)

# asyncssh and cryptography are imported where they are used: the hub loads them
# only when a credential is created or an SSH key read, not on every start.
if TYPE_CHECKING:
    import asyncssh
    from cryptography import x509

__all__ = ["PRIMARY_FIELDS", "Material", "build", "load_ssh_key", "primary_secret"]

# The value a plugin config reference resolves to, per kind.
PRIMARY_FIELDS = {
    "password": ("password",),
    "api_token": ("token",),
    "ssh_key": ("private_key",),
    "tls_certificate": ("private_key",),
    "server_login": ("password", "private_key"),
}


@dataclass(frozen=True)
class Material:
    """What to store: ``public`` is shown, ``secret`` is sealed."""

    public: dict[str, Any]
    secret: dict[str, str] = field(repr=False)
    expires_at: datetime | None = None


def primary_secret(kind: str, secret: dict[str, str]) -> str:
    for name in PRIMARY_FIELDS.get(kind, ()):
        if secret.get(name):
            return secret[name]
    raise InvalidCredentialError(f"a {kind} credential holds no usable secret")


def _reveal(value: SecretStr | None) -> str | None:
    return value.get_secret_value() if value is not None else None


def load_ssh_key(data: str, passphrase: str | None = None) -> asyncssh.SSHKey:
    """An SSH private key from OpenSSH or PEM text; errors never include the key."""
    import asyncssh

    try:
        return asyncssh.import_private_key(data, passphrase)
    except asyncssh.KeyEncryptionError:
        raise InvalidCredentialError(
            "the private key could not be decrypted: wrong passphrase"
        ) from None
    except asyncssh.KeyImportError as exc:
        if "passphrase" in str(exc).lower():
            raise InvalidCredentialError(
                "the private key is encrypted: give its passphrase"
            ) from None
        raise InvalidCredentialError(
            "the private key is not an OpenSSH or PEM private key asyncssh can read"
        ) from None
    except (ValueError, TypeError):
        raise InvalidCredentialError("the private key could not be read") from None


def _ssh_public(key: asyncssh.SSHKey) -> dict[str, Any]:
    return {
        "algorithm": key.get_algorithm(),
        "public_key": key.export_public_key("openssh").decode().strip(),
        "fingerprint": key.get_fingerprint("sha256"),
        "comment": key.get_comment() or "",
    }


def _ssh_key(request: SshKeyInput) -> Material:
    import asyncssh

    if request.generate:
        key = asyncssh.generate_private_key("ssh-ed25519", comment=request.comment or request.name)
    else:
        assert request.private_key is not None
        key = load_ssh_key(request.private_key.get_secret_value(), _reveal(request.passphrase))
        if request.comment is not None:
            key.set_comment(request.comment)
    private = key.export_private_key("openssh").decode()
    return Material(_ssh_public(key), {"private_key": private}, request.expires_at)


def _names(certificate: x509.Certificate) -> list[str]:
    from cryptography import x509
    from cryptography.x509.oid import ExtensionOID

    try:
        extension = certificate.extensions.get_extension_for_oid(
            ExtensionOID.SUBJECT_ALTERNATIVE_NAME
        )
    except x509.ExtensionNotFound:
        return []
    value = extension.value
    assert isinstance(value, x509.SubjectAlternativeName)
    return [str(name) for name in value.get_values_for_type(x509.DNSName)]


def _tls_certificate(request: TlsCertificateInput) -> Material:
    import asyncssh
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization

    try:
        chain = x509.load_pem_x509_certificates(request.certificate.encode())
    except ValueError:
        raise InvalidCredentialError("certificate is not a PEM X.509 certificate") from None
    leaf = chain[0]
    passphrase = _reveal(request.passphrase)
    try:
        key = serialization.load_pem_private_key(
            request.private_key.get_secret_value().encode(),
            password=passphrase.encode() if passphrase else None,
        )
    except TypeError:
        raise InvalidCredentialError(
            "the private key is encrypted: give its passphrase (or it is not encrypted "
            "and a passphrase was given)"
        ) from None
    except (ValueError, asyncssh.Error):
        raise InvalidCredentialError(
            "the private key is not a PEM private key, or the passphrase is wrong"
        ) from None
    spki = serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    if key.public_key().public_bytes(*spki) != leaf.public_key().public_bytes(*spki):
        raise InvalidCredentialError("the private key does not belong to the certificate")
    private = key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    ).decode()
    not_after = leaf.not_valid_after_utc
    public = {
        "subject": leaf.subject.rfc4514_string(),
        "issuer": leaf.issuer.rfc4514_string(),
        "serial": format(leaf.serial_number, "x"),
        "not_before": leaf.not_valid_before_utc.isoformat(),
        "not_after": not_after.isoformat(),
        "dns_names": _names(leaf),
        "fingerprint": "SHA256:" + leaf.fingerprint(hashes.SHA256()).hex(":").upper(),
        "chain_length": len(chain),
        "certificate": "".join(c.public_bytes(serialization.Encoding.PEM).decode() for c in chain),
    }
    return Material(public, {"private_key": private}, not_after)


def _server_login(request: ServerLoginInput) -> Material:
    public: dict[str, Any] = {
        "host": request.host,
        "port": request.port,
        "username": request.username,
    }
    if request.private_key is not None:
        key = load_ssh_key(request.private_key.get_secret_value(), _reveal(request.passphrase))
        public.update(auth="key", **_ssh_public(key))
        secret = {"private_key": key.export_private_key("openssh").decode()}
    else:
        assert request.password is not None
        public["auth"] = "password"
        secret = {"password": request.password.get_secret_value()}
    return Material(public, secret, request.expires_at)


def build(request: CredentialInput) -> Material:
    """Validate key material and split it into public facts and the secret payload."""
    if isinstance(request, PasswordInput):
        public = {"username": request.username} if request.username else {}
        return Material(
            public, {"password": request.password.get_secret_value()}, request.expires_at
        )
    if isinstance(request, ApiTokenInput):
        return Material({}, {"token": request.token.get_secret_value()}, request.expires_at)
    if isinstance(request, SshKeyInput):
        return _ssh_key(request)
    if isinstance(request, TlsCertificateInput):
        return _tls_certificate(request)
    return _server_login(request)
