"""Application monitors: HTTP, TLS, DNS, PostgreSQL, MySQL, Redis, MQTT.

This module lists the group's plugin classes; each plugin lives in its own module.
"""

from typing import Any

from unity_sdk import PluginBase

from .dns_check import DnsCheckPlugin
from .http_check import HttpCheckPlugin
from .mqtt_broker import MqttBrokerPlugin
from .mysql import MysqlPlugin
from .postgres import PostgresPlugin
from .redis_server import RedisPlugin
from .tls_certificate import TlsCertificatePlugin

__all__ = ["APPLICATIONS_PLUGINS"]

APPLICATIONS_PLUGINS: list[type[PluginBase[Any]]] = [
    HttpCheckPlugin,
    TlsCertificatePlugin,
    DnsCheckPlugin,
    PostgresPlugin,
    MysqlPlugin,
    RedisPlugin,
    MqttBrokerPlugin,
]
