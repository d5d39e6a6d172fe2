"""What a new credential or server looks like, per kind (shared by the API and CLI).

Secret inputs are ``SecretStr``: they print as ``**********`` and validation
errors never echo them.
"""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, SecretStr, model_validator

__all__ = [
    "NAME_PATTERN",
    "ApiTokenInput",
    "CredentialInput",
    "CredentialKind",
    "PasswordInput",
    "ServerInput",
    "ServerLoginInput",
    "ServerUpdate",
    "SshKeyInput",
    "TlsCertificateInput",
]

NAME_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$"
HOST_PATTERN = r"^[A-Za-z0-9._:\[\]-]{1,255}$"
USER_PATTERN = r"^[A-Za-z0-9._][A-Za-z0-9._-]{0,127}$"

Name = Annotated[str, Field(pattern=NAME_PATTERN, description="Letters, digits, . _ -")]
Secret = Annotated[SecretStr, Field(min_length=1, max_length=65536)]


class CredentialKind(StrEnum):
    PASSWORD = "password"
    API_TOKEN = "api_token"
    SSH_KEY = "ssh_key"
    TLS_CERTIFICATE = "tls_certificate"
    SERVER_LOGIN = "server_login"


class _Input(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: Name
    expires_at: datetime | None = Field(
        default=None, description="When the secret stops working (certificates: read from it)."
    )


class PasswordInput(_Input):
    kind: Literal["password"]
    password: Secret
    username: str | None = Field(default=None, max_length=256)


class ApiTokenInput(_Input):
    kind: Literal["api_token"]
    token: Secret


def _one_of(first: object, second: object, message: str) -> None:
    if (first is None) == (second is None):
        raise ValueError(message)


class SshKeyInput(_Input):
    kind: Literal["ssh_key"]
    generate: bool = Field(default=False, description="Generate a new ed25519 key pair.")
    private_key: Secret | None = Field(default=None, description="OpenSSH or PEM private key.")
    passphrase: Secret | None = None
    comment: str | None = Field(default=None, max_length=256)

    @model_validator(mode="after")
    def _generate_or_import(self) -> SshKeyInput:
        _one_of(
            True if self.generate else None,
            self.private_key,
            "give either generate: true or a private_key to import",
        )
        return self


class TlsCertificateInput(_Input):
    kind: Literal["tls_certificate"]
    certificate: str = Field(min_length=1, max_length=262144, description="PEM, leaf first.")
    private_key: Secret
    passphrase: Secret | None = None


class ServerLoginInput(_Input):
    kind: Literal["server_login"]
    host: str = Field(pattern=HOST_PATTERN)
    port: int = Field(default=22, ge=1, le=65535)
    username: str = Field(pattern=USER_PATTERN)
    password: Secret | None = None
    private_key: Secret | None = None
    passphrase: Secret | None = None

    @model_validator(mode="after")
    def _password_or_key(self) -> ServerLoginInput:
        _one_of(self.password, self.private_key, "give either a password or a private_key")
        return self


CredentialInput = Annotated[
    PasswordInput | ApiTokenInput | SshKeyInput | TlsCertificateInput | ServerLoginInput,
    Field(discriminator="kind"),
]


class ServerInput(BaseModel):
    """A server for the inventory. With a ``server_login`` credential, host,
    port and username default to the login's."""

    model_config = ConfigDict(extra="forbid")

    name: Name
    credential: Name
    host: str | None = Field(default=None, pattern=HOST_PATTERN)
    port: int | None = Field(default=None, ge=1, le=65535)
    username: str | None = Field(default=None, pattern=USER_PATTERN)
    authorized_keys_file: str = Field(
        default=".ssh/authorized_keys",
        min_length=1,
        max_length=1024,
        description="Relative to the login's home, or absolute; %u is the user name.",
    )


class ServerUpdate(BaseModel):
    """Fields to change; a new host or port drops the pinned host key."""

    model_config = ConfigDict(extra="forbid")

    credential: Name | None = None
    host: str | None = Field(default=None, pattern=HOST_PATTERN)
    port: int | None = Field(default=None, ge=1, le=65535)
    username: str | None = Field(default=None, pattern=USER_PATTERN)
    authorized_keys_file: str | None = Field(default=None, min_length=1, max_length=1024)
