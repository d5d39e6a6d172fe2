"""The ``mqtt-broker`` built-in plugin: what a Mosquitto broker says about itself.

It connects with aiomqtt (paho-mqtt 2, MQTT 3.1.1), subscribes to ``$SYS/#``
for ``collect_seconds`` and keeps the last value of each topic. Mosquitto
(1.6, 2.x) retains its ``$SYS/broker/...`` topics, so they arrive at once and
are refreshed every ``sys_interval`` (10 s by default): version, uptime
("N seconds"), clients, message and byte counters, subscriptions, retained
and stored messages, heap use (where the broker tracks memory) and the 1, 5
and 15 minute load averages. Other brokers publish other trees; only
``version`` and ``uptime`` are required.
"""

from __future__ import annotations

import asyncio
import re
import ssl
import uuid
from typing import TYPE_CHECKING, Any

from pydantic import BaseModel, ConfigDict, Field, SecretStr

from unity_sdk import (
    CollectionError,
    HealthStatus,
    HostFacts,
    MetricField,
    MetricKind,
    PluginAuthError,
    PluginBase,
    PluginCategory,
    PluginError,
    PluginMetadata,
    PluginNotReadyError,
    Proposal,
    Requirements,
)

from ._proposing import service_proposals

if TYPE_CHECKING:
    import aiomqtt

__all__ = ["MqttBrokerConfig", "MqttBrokerPlugin", "parse_sys_topics"]

# MQTT over TLS (IANA "secure-mqtt"): a broker found there gets tls on.
_TLS_PORT = 8883

PREFIX = "$SYS/broker/"
# CONNACK codes that mean "credentials refused": MQTT 3.1.1 (4, 5) and MQTT 5 (134, 135).
AUTH_CODES = {4, 5, 134, 135}

# $SYS/broker/<topic> -> (section, key) of the document.
_TOPICS = {
    **{f"clients/{key}": ("clients", key) for key in (
        "connected", "disconnected", "total", "maximum", "expired", "active", "inactive"
    )},
    "messages/received": ("messages", "received"),
    "messages/sent": ("messages", "sent"),
    "publish/messages/received": ("messages", "publish_received"),
    "publish/messages/sent": ("messages", "publish_sent"),
    "publish/messages/dropped": ("messages", "publish_dropped"),
    "bytes/received": ("bytes", "received"),
    "bytes/sent": ("bytes", "sent"),
    "publish/bytes/received": ("bytes", "publish_received"),
    "publish/bytes/sent": ("bytes", "publish_sent"),
    "subscriptions/count": ("counts", "subscriptions"),
    "shared_subscriptions/count": ("counts", "shared_subscriptions"),
    "retained messages/count": ("counts", "retained_messages"),
    "store/messages/count": ("counts", "stored_messages"),
    "messages/stored": ("counts", "stored_messages"),
    "heap/current": ("memory", "heap_current"),
    "heap/maximum": ("memory", "heap_maximum"),
    "store/messages/bytes": ("memory", "store_bytes"),
}  # fmt: skip
_LOAD = re.compile(r"^load/(?P<what>[a-z]+(?:/[a-z]+)?)/(?P<window>\d+min)$")

_METRICS = [
    MetricField(name="version", kind=MetricKind.INFO, description="$SYS/broker/version"),
    MetricField(name="uptime", unit="s", description="Seconds since the broker started"),
    MetricField(
        name="clients.*",
        unit="count",
        description="Clients: connected, disconnected (persistent sessions), total, maximum, "
        "expired",
    ),
    MetricField(
        name="messages.*",
        unit="count",
        kind=MetricKind.COUNTER,
        description="Messages of any type received and sent, and PUBLISH messages received, "
        "sent and dropped",
    ),
    MetricField(
        name="bytes.*",
        unit="bytes",
        kind=MetricKind.COUNTER,
        description="Bytes received and sent, all and of PUBLISH messages",
    ),
    MetricField(
        name="counts.*",
        unit="count",
        description="Subscriptions, shared subscriptions, retained and stored messages",
    ),
    MetricField(
        name="memory.*",
        unit="bytes",
        description="Heap in use and its maximum (with memory tracking), bytes in the store",
    ),
    MetricField(
        name="load.*.*",
        unit="1/min",
        description="Per-minute load averages over 1, 5 and 15 minutes: messages, publish, "
        "bytes, sockets and connections",
    ),
]


class MqttBrokerConfig(BaseModel):
    """Config of the ``mqtt-broker`` plugin."""

    model_config = ConfigDict(extra="forbid")

    host: str = Field(default="127.0.0.1", min_length=1, description="Broker host.")
    port: int = Field(default=1883, ge=1, le=65535, description="Broker port.")
    username: str | None = Field(default=None, description="MQTT user name.")
    password: SecretStr | None = Field(default=None, description="MQTT password.")
    tls: bool = Field(default=False, description="Connect over TLS (port 8883 usually).")
    verify_tls: bool = Field(default=True, description="Verify the broker certificate (TLS).")
    ca_bundle: str | None = Field(
        default=None, description="PEM file of CA certificates to trust (TLS)."
    )
    collect_seconds: float = Field(
        default=2.0, gt=0, le=60, description="How long to listen to $SYS topics each run."
    )
    timeout: float = Field(default=10.0, gt=0, le=60, description="Seconds to connect.")


class MqttBrokerPlugin(PluginBase[MqttBrokerConfig]):
    """Reads a Mosquitto broker's $SYS tree: clients, traffic, load, version."""

    def get_metadata(self) -> PluginMetadata:
        return PluginMetadata(
            id="mqtt-broker",
            name="MQTT broker",
            version="1.0.0",
            description="Clients, messages, bytes, subscriptions, load averages, uptime and "
            "version of a Mosquitto broker, from its $SYS topics.",
            author="Unity developers",
            category=PluginCategory.APPLICATION,
            tags=["mqtt", "mosquitto", "broker", "iot", "home-automation"],
            config_schema=MqttBrokerConfig,
            metrics=_METRICS,
            requires=Requirements(packages=["aiomqtt"]),
            default_interval=60,
            timeout=90,
        )

    @classmethod
    def discover(cls, facts: HostFacts) -> list[Proposal]:
        """An MQTT broker listening here: port 1883 (8883 over TLS), or mosquitto on another.

        Like Mosquitto 2 itself, a broker on loopback only is taken to allow
        anonymous clients; one open to the network is asked for a password
        (set ``username`` too).
        """
        return service_proposals(
            cls,
            facts,
            service="MQTT broker",
            ports=[1883, _TLS_PORT],
            processes=["mosquitto"],
            config=lambda socket: {
                "host": socket.host,
                "port": socket.port,
                **({"tls": True} if socket.port == _TLS_PORT else {}),
            },
            credential=lambda socket: None if socket.loopback_only else "password",
        )

    async def collect_data(self) -> dict[str, Any]:
        cfg = self.config
        where = f"MQTT broker at {cfg.host}:{cfg.port}"
        # Imported here: a hub that never runs this plugin never loads paho-mqtt.
        import aiomqtt

        topics: dict[str, str] = {}
        try:
            async with _client(cfg) as client:
                await client.subscribe(f"{PREFIX}#")
                try:
                    async with asyncio.timeout(cfg.collect_seconds):
                        async for message in client.messages:
                            topics[str(message.topic)] = _payload(message.payload)
                except TimeoutError:
                    pass  # the listening window is over
        except aiomqtt.MqttCodeError as exc:
            if _code(exc.rc) in AUTH_CODES:
                raise PluginAuthError(f"{where} refused the credentials: {exc}") from exc
            raise CollectionError(f"{where}: {exc}") from exc
        except aiomqtt.MqttError as exc:
            if "CERTIFICATE_VERIFY_FAILED" in str(exc):
                raise CollectionError(f"{where}: TLS certificate verification failed") from exc
            raise PluginNotReadyError(f"{where} is not reachable: {exc}") from exc
        except (OSError, ssl.SSLError) as exc:
            raise PluginNotReadyError(f"{where} is not reachable: {exc}") from exc
        document = parse_sys_topics(topics)
        if "version" not in document or "uptime" not in document:
            raise CollectionError(
                f"{where} published no $SYS/broker/version and uptime within "
                f"{cfg.collect_seconds:g}s: $SYS is off (sys_interval 0), denied by an ACL, "
                "or the broker is not Mosquitto"
            )
        return document

    async def health_check(self) -> HealthStatus:
        try:
            document = await self.collect_data()
        except PluginError as exc:
            return HealthStatus.unhealthy(str(exc))
        clients = document.get("clients", {}).get("connected")
        suffix = f", {clients:g} client(s) connected" if clients is not None else ""
        return HealthStatus.healthy(f"{document['version']}{suffix}")


class _ClosingSSLSocket(ssl.SSLSocket):
    """Closes itself when the handshake fails.

    paho-mqtt 2.2 drops the socket without closing it when ``do_handshake``
    raises (an untrusted certificate), leaking the file descriptor.
    """

    def do_handshake(self, block: bool = False) -> None:
        try:
            super().do_handshake(block)
        except BaseException:
            self.close()
            raise


def _client(cfg: MqttBrokerConfig) -> aiomqtt.Client:
    import aiomqtt

    context = None
    if cfg.tls:
        try:
            context = ssl.create_default_context(cafile=cfg.ca_bundle)
        except (OSError, ssl.SSLError) as exc:
            raise CollectionError(f"cannot load the CA bundle {cfg.ca_bundle}: {exc}") from exc
        context.sslsocket_class = _ClosingSSLSocket
        if not cfg.verify_tls:
            context.check_hostname = False
            context.verify_mode = ssl.CERT_NONE
    return aiomqtt.Client(
        cfg.host,
        cfg.port,
        username=cfg.username,
        password=cfg.password.get_secret_value() if cfg.password else None,
        identifier=f"unity-monitor-{uuid.uuid4().hex[:12]}",
        clean_session=True,
        timeout=cfg.timeout,
        tls_context=context,
        tls_insecure=(not cfg.verify_tls) if cfg.tls else None,
    )


def _code(rc: Any) -> int | None:
    value = getattr(rc, "value", rc)
    return value if isinstance(value, int) else None


def _payload(payload: Any) -> str:
    if isinstance(payload, bytes | bytearray):
        return bytes(payload).decode(errors="replace").strip()
    return str(payload).strip()


def _number(text: str) -> int | float | None:
    word = text.split(" ", 1)[0]  # "uptime" comes as "1738 seconds"
    try:
        return int(word)
    except ValueError:
        pass
    try:
        return float(word)
    except ValueError:
        return None


def parse_sys_topics(topics: dict[str, str]) -> dict[str, Any]:
    """The document for the last payload of each ``$SYS/broker/...`` topic."""
    document: dict[str, Any] = {}
    for topic, payload in topics.items():
        if not topic.startswith(PREFIX):
            continue
        name = topic.removeprefix(PREFIX)
        if name == "version":
            document["version"] = payload
            continue
        value = _number(payload)
        if value is None:
            continue
        if name == "uptime":
            document["uptime"] = value
        elif name in _TOPICS:
            section, key = _TOPICS[name]
            document.setdefault(section, {})[key] = value
        elif match := _LOAD.match(name):
            what = match["what"].replace("/", "_")
            document.setdefault("load", {}).setdefault(what, {})[match["window"]] = value
    return document
