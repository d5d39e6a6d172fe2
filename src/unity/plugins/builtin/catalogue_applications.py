"""Application monitors: HTTP, TLS, DNS, PostgreSQL, MySQL, Redis, MQTT.

This module lists the group's plugin classes; each plugin lives in its own module.
"""

from unity.plugins.builtin.dns_check import DnsCheckPlugin
from unity.plugins.builtin.http_check import HttpCheckPlugin
from unity.plugins.builtin.mqtt_broker import MqttBrokerPlugin
from unity.plugins.builtin.mysql import MysqlPlugin
from unity.plugins.builtin.postgres import PostgresPlugin
from unity.plugins.builtin.redis_server import RedisPlugin
from unity.plugins.builtin.tls_certificate import TlsCertificatePlugin
from unity_sdk import PluginBase

__all__ = ["APPLICATIONS_PLUGINS"]

APPLICATIONS_PLUGINS: list[type[PluginBase]] = [
    HttpCheckPlugin,
    TlsCertificatePlugin,
    DnsCheckPlugin,
    PostgresPlugin,
    MysqlPlugin,
    RedisPlugin,
    MqttBrokerPlugin,
]
