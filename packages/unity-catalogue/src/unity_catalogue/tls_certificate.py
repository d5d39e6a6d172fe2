"""The ``tls-certificate`` built-in plugin: when does each server certificate expire?

For every ``host:port`` it opens two TLS connections with Python's ``ssl``
module: one that accepts any certificate, to read the leaf certificate (X.509,
DER, parsed with ``cryptography``) even when it is broken, and one that
verifies the chain against the system CA store or the configured ``ca_bundle``.
It reports days until expiry, the validity dates, issuer and subject, whether
the chain verifies, and whether the certificate names the host (subjectAltName
DNS names with a left-most wildcard, or IP addresses, as browsers match them).

Health (``assess``, after every run): a certificate expiring within
``warn_days`` (default 21) makes it degraded; one expiring within
``CRITICAL_DAYS`` (3), expired, not yet valid, untrusted, misnamed or
unreachable makes it unhealthy.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import ipaddress
import ssl
from typing import TYPE_CHECKING, Any

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from unity_sdk import (
    AlertRule,
    CollectionError,
    HealthStatus,
    HostFacts,
    MetricField,
    MetricKind,
    PluginBase,
    PluginCategory,
    PluginError,
    PluginMetadata,
    Proposal,
    Requirements,
)

from ._proposing import service_proposals

if TYPE_CHECKING:
    from cryptography import x509

__all__ = ["TlsCertificateConfig", "TlsCertificatePlugin", "TlsTarget"]

# Where discovery looks for TLS servers: HTTPS and its usual alternative.
_DISCOVERED_PORTS = (443, 8443)

# The status of a target, worst first; "expiring" makes the health degraded, worse unhealthy.
FAILING = ("unreachable", "expired", "not_yet_valid", "invalid")
# A certificate this close to expiry is as bad as an expired one: renewal has failed.
CRITICAL_DAYS = 3.0

_INFO = MetricKind.INFO

_METRICS = [
    MetricField(name="targets_ok", unit="count", description="Targets whose certificate is fine"),
    MetricField(
        name="targets_expiring",
        unit="count",
        description="Targets whose valid certificate expires within warn_days",
    ),
    MetricField(
        name="targets_failing",
        unit="count",
        description="Targets unreachable, expired, not yet valid, untrusted or misnamed",
    ),
    MetricField(
        name="targets.*.reachable", unit="bool", description="1 when the TLS handshake succeeded"
    ),
    MetricField(
        name="targets.*.days_until_expiry",
        unit="days",
        description="Days until the certificate's notAfter (negative once expired)",
    ),
    MetricField(
        name="targets.*.chain_valid",
        unit="bool",
        description="1 when the chain verifies against the system or configured CA bundle",
    ),
    MetricField(
        name="targets.*.hostname_match",
        unit="bool",
        description="1 when the certificate names the host (server_name when set)",
    ),
    MetricField(
        name="targets.*.self_signed", unit="bool", description="1 when issuer equals subject"
    ),
    MetricField(
        name="targets.*.status",
        kind=_INFO,
        description="ok, expiring, invalid, not_yet_valid, expired or unreachable",
    ),
    MetricField(name="targets.*.not_before", kind=_INFO, description="Start of validity (UTC)"),
    MetricField(name="targets.*.not_after", kind=_INFO, description="End of validity (UTC)"),
    MetricField(name="targets.*.issuer", kind=_INFO, description="Issuer DN (RFC 4514)"),
    MetricField(name="targets.*.subject", kind=_INFO, description="Subject DN (RFC 4514)"),
    MetricField(
        name="targets.*.chain_error",
        kind=_INFO,
        description="Why the chain does not verify (absent when it does)",
    ),
    MetricField(
        name="targets.*.error",
        kind=_INFO,
        description="Why no certificate could be read (absent when reachable)",
    ),
]


def split_address(address: str) -> tuple[str, int]:
    """``host:port``, ``[v6]:port`` or a bare host (port 443) as ``(host, port)``."""
    if address.startswith("["):
        host, _, rest = address[1:].partition("]")
        port = rest.removeprefix(":") or "443"
    elif address.count(":") == 1:
        host, port = address.split(":")
    else:
        host, port = address, "443"
    if not host or not port.isdigit() or not 0 < int(port) < 65536:
        raise ValueError(f"{address!r} is not host:port")
    return host, int(port)


class TlsTarget(BaseModel):
    """One TLS server to check; a plain ``"host:port"`` string is accepted too."""

    model_config = ConfigDict(extra="forbid")

    address: str = Field(description="host:port of the TLS server (port 443 when left out).")
    server_name: str | None = Field(
        default=None,
        description="Name sent as SNI and matched against the certificate (default: the host).",
    )
    name: str | None = Field(
        default=None, description="Key in the metrics (default: the address, or name@address)."
    )

    @model_validator(mode="before")
    @classmethod
    def _from_string(cls, value: Any) -> Any:
        return {"address": value} if isinstance(value, str) else value

    @field_validator("address")
    @classmethod
    def _check_address(cls, value: str) -> str:
        split_address(value)
        return value

    @property
    def key(self) -> str:
        if self.name:
            return self.name
        return f"{self.server_name}@{self.address}" if self.server_name else self.address


class TlsCertificateConfig(BaseModel):
    """Config of the ``tls-certificate`` plugin."""

    model_config = ConfigDict(extra="forbid")

    endpoints: list[TlsTarget] = Field(
        default_factory=list,
        description='TLS servers to check: "host:port" strings or {address, server_name, name}.',
    )
    warn_days: int = Field(
        default=21, ge=0, le=365, description="Degraded when a certificate expires this soon."
    )
    ca_bundle: str | None = Field(
        default=None,
        description="PEM file of CA certificates to verify against instead of the system store.",
    )
    timeout: float = Field(default=10.0, gt=0, le=60, description="Seconds per connection.")

    @field_validator("endpoints")
    @classmethod
    def _unique_keys(cls, value: list[TlsTarget]) -> list[TlsTarget]:
        keys = [target.key for target in value]
        duplicates = sorted({key for key in keys if keys.count(key) > 1})
        if duplicates:
            raise ValueError(f"endpoints listed twice: {', '.join(duplicates)}")
        return value


class TlsCertificatePlugin(PluginBase[TlsCertificateConfig]):
    """Warns before a certificate expires, and when one is untrusted or misnamed."""

    def get_metadata(self) -> PluginMetadata:
        return PluginMetadata(
            id="tls-certificate",
            name="TLS certificate",
            version="1.0.0",
            description="Days to expiry, issuer, chain validity and hostname match of the "
            "certificates served at host:port.",
            author="Unity developers",
            category=PluginCategory.SECURITY,
            tags=["tls", "ssl", "certificate", "expiry", "x509"],
            config_schema=TlsCertificateConfig,
            metrics=_METRICS,
            requires=Requirements(packages=["cryptography"]),
            default_interval=3600,
            timeout=60,
            alert_rules=[
                AlertRule(
                    id="certificate-expiring",
                    metric="targets.*.days_until_expiry",
                    op="<",
                    threshold=14,
                    summary="certificate of {item} expires in {value} days",
                ),
                AlertRule(
                    id="certificate-expiring-soon",
                    metric="targets.*.days_until_expiry",
                    op="<",
                    threshold=3,
                    severity="critical",
                    summary="certificate of {item} expires in {value} days",
                ),
            ],
        )

    @classmethod
    def discover(cls, facts: HostFacts) -> list[Proposal]:
        """A TLS server on 443 or 8443, checked on loopback.

        The certificate names the server's public name, not 127.0.0.1: the
        proposal says to set ``server_name``.
        """
        return service_proposals(
            cls,
            facts,
            service="TLS certificate",
            ports=_DISCOVERED_PORTS,
            config=lambda socket: {"endpoints": [socket.endpoint]},
            advice="Set server_name to the name the certificate is for.",
        )

    async def collect_data(self) -> dict[str, Any]:
        cfg = self.config
        try:
            verifying = ssl.create_default_context(cafile=cfg.ca_bundle)
        except (OSError, ssl.SSLError) as exc:
            raise CollectionError(f"cannot load the CA bundle {cfg.ca_bundle}: {exc}") from exc
        # The hostname is matched separately, so a misnamed certificate still shows its chain.
        verifying.check_hostname = False
        results = await asyncio.gather(
            *(_inspect(target, verifying, cfg) for target in cfg.endpoints)
        )
        targets = {
            target.key: result for target, result in zip(cfg.endpoints, results, strict=True)
        }
        statuses = [result["status"] for result in targets.values()]
        return {
            "targets_ok": statuses.count("ok"),
            "targets_expiring": statuses.count("expiring"),
            "targets_failing": sum(status in FAILING for status in statuses),
            "targets": targets,
        }

    async def health_check(self) -> HealthStatus:
        try:
            document = await self.collect_data()
        except PluginError as exc:
            return HealthStatus.unhealthy(str(exc))
        return self.assess(document)

    def assess(self, document: dict[str, Any]) -> HealthStatus:
        """Expiring within warn_days: degraded; within 3 days or broken: unhealthy."""
        targets: dict[str, dict[str, Any]] = document["targets"]
        if not targets:
            return HealthStatus.not_applicable("no endpoints configured")
        failing = {
            key: _reason(target)
            for key, target in targets.items()
            if target["status"] in FAILING
            or target.get("days_until_expiry", CRITICAL_DAYS + 1) <= CRITICAL_DAYS
        }
        expiring = {
            key: _reason(target)
            for key, target in targets.items()
            if target["status"] == "expiring" and key not in failing
        }
        if failing:
            return HealthStatus.unhealthy(_listing(failing), targets=failing | expiring)
        if expiring:
            return HealthStatus.degraded(_listing(expiring), targets=expiring)
        soonest = min(target["days_until_expiry"] for target in targets.values())
        return HealthStatus.healthy(
            f"{len(targets)} certificate(s) fine, the first expires in {_days(soonest)}"
        )


def _listing(reasons: dict[str, str]) -> str:
    return "; ".join(f"{key} {reason}" for key, reason in reasons.items())


def _days(days: float) -> str:
    days = abs(days)
    return f"{days:.0f} days" if days >= 1.5 else f"{days * 24:.0f} h"


def _reason(target: dict[str, Any]) -> str:
    """Why a target needs attention, short: ``expires in 5 days``, ``unreachable: ...``."""
    status = target["status"]
    if status == "unreachable":
        return f"unreachable: {target['error']}"
    days = target["days_until_expiry"]
    if status == "expired":
        return f"expired {_days(days)} ago"
    if status == "not_yet_valid":
        return f"not valid before {target['not_before']}"
    if not target["chain_valid"]:
        return f"untrusted: {target['chain_error']}"
    if not target["hostname_match"]:
        return "does not name the host"
    return f"expires in {_days(days)}"


async def _handshake(
    host: str, port: int, context: ssl.SSLContext, server_name: str | None, timeout: float
) -> bytes:
    """The server's leaf certificate (DER) after a TLS handshake with ``context``."""
    async with asyncio.timeout(timeout):
        _, writer = await asyncio.open_connection(
            host, port, ssl=context, server_hostname=server_name or host
        )
    try:
        ssl_object = writer.get_extra_info("ssl_object")
        der: bytes | None = ssl_object.getpeercert(binary_form=True)
    finally:
        writer.close()
        # A server may drop the connection without a TLS close_notify; that is fine here.
        with contextlib.suppress(OSError, ssl.SSLError, TimeoutError):
            async with asyncio.timeout(timeout):
                await writer.wait_closed()
    if der is None:
        raise ssl.SSLError("the server sent no certificate")
    return der


async def _inspect(
    target: TlsTarget, verifying: ssl.SSLContext, cfg: TlsCertificateConfig
) -> dict[str, Any]:
    # Imported here: a hub that never runs this plugin never loads cryptography's x509.
    from cryptography import x509

    host, port = split_address(target.address)
    reading = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    reading.check_hostname = False
    reading.verify_mode = ssl.CERT_NONE
    try:
        der = await _handshake(host, port, reading, target.server_name, cfg.timeout)
    except TimeoutError:
        return _unreachable(f"timed out after {cfg.timeout:g}s")
    except ssl.SSLError as exc:
        return _unreachable(f"TLS handshake failed: {exc.reason or exc}")
    except OSError as exc:
        return _unreachable(f"connection failed: {exc.strerror or exc}")
    certificate = x509.load_der_x509_certificate(der)
    chain_error = None
    try:
        await _handshake(host, port, verifying, target.server_name, cfg.timeout)
    except ssl.SSLCertVerificationError as exc:
        chain_error = str(exc.verify_message)
    except (ssl.SSLError, OSError, TimeoutError) as exc:
        chain_error = f"verifying handshake failed: {exc}"
    now = dt.datetime.now(dt.UTC)
    not_after = certificate.not_valid_after_utc
    not_before = certificate.not_valid_before_utc
    days = (not_after - now).total_seconds() / 86400
    hostname_match = names_host(certificate, target.server_name or host)
    if not_after <= now:
        status = "expired"
    elif not_before > now:
        status = "not_yet_valid"
    elif chain_error is not None or not hostname_match:
        status = "invalid"
    elif days <= cfg.warn_days:
        status = "expiring"
    else:
        status = "ok"
    result: dict[str, Any] = {
        "reachable": 1,
        "status": status,
        "days_until_expiry": round(days, 3),
        "not_before": not_before.isoformat(),
        "not_after": not_after.isoformat(),
        "issuer": certificate.issuer.rfc4514_string(),
        "subject": certificate.subject.rfc4514_string(),
        "chain_valid": int(chain_error is None),
        "hostname_match": int(hostname_match),
        "self_signed": int(certificate.issuer == certificate.subject),
    }
    if chain_error is not None:
        result["chain_error"] = chain_error
    return result


def _unreachable(error: str) -> dict[str, Any]:
    return {"reachable": 0, "status": "unreachable", "error": error}


def names_host(certificate: x509.Certificate, host: str) -> bool:
    """Whether the certificate's subjectAltName covers ``host`` (a DNS name or an IP)."""
    from cryptography import x509

    try:
        names = certificate.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    except x509.ExtensionNotFound:
        return False
    try:
        address = ipaddress.ip_address(host)
    except ValueError:
        wanted = host.rstrip(".").lower()
        return any(
            _dns_match(pattern, wanted) for pattern in names.get_values_for_type(x509.DNSName)
        )
    return address in names.get_values_for_type(x509.IPAddress)


def _dns_match(pattern: str, host: str) -> bool:
    pattern = pattern.rstrip(".").lower()
    if pattern.startswith("*."):
        # A wildcard stands for exactly one whole left-most label (RFC 6125 6.4.3).
        label, _, rest = host.partition(".")
        return bool(label) and rest == pattern[2:]
    return pattern == host
