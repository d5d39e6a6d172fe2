"""The hub's explicit list of built-in plugins.

``BUILTIN_PLUGINS`` is one of the hub's two plugin sources (the other is the
``unity.plugins`` entry-point group); nothing is found by scanning folders.
Each built-in uses only the public ``unity_sdk``, as a third-party plugin would.
The catalogue groups them by their declared ``PluginCategory``.
"""

from typing import Any

from unity_catalogue.disk_monitor import DiskMonitorPlugin
from unity_catalogue.dns_check import DnsCheckPlugin
from unity_catalogue.docker import DockerPlugin
from unity_catalogue.docker_stats import DockerStatsPlugin
from unity_catalogue.fail2ban import Fail2banPlugin
from unity_catalogue.gpu import GpuPlugin
from unity_catalogue.http_check import HttpCheckPlugin
from unity_catalogue.iostat import IostatPlugin
from unity_catalogue.iperf3 import Iperf3Plugin
from unity_catalogue.ipmitool import IpmitoolPlugin
from unity_catalogue.journalctl import JournalctlPlugin
from unity_catalogue.lm_sensors import LmSensorsPlugin
from unity_catalogue.lsblk import LsblkPlugin
from unity_catalogue.lxc_list import LxcListPlugin
from unity_catalogue.mdadm import MdadmPlugin
from unity_catalogue.mqtt_broker import MqttBrokerPlugin
from unity_catalogue.mysql import MysqlPlugin
from unity_catalogue.network_monitor import NetworkMonitorPlugin
from unity_catalogue.nvidia_smi import NvidiaSmiPlugin
from unity_catalogue.ollama import OllamaPlugin
from unity_catalogue.postgres import PostgresPlugin
from unity_catalogue.process_monitor import ProcessMonitorPlugin
from unity_catalogue.redis_server import RedisPlugin
from unity_catalogue.smartctl import SmartctlPlugin
from unity_catalogue.ss import SsPlugin
from unity_catalogue.system_info import SystemInfoPlugin
from unity_catalogue.systemctl import SystemctlPlugin
from unity_catalogue.tls_certificate import TlsCertificatePlugin
from unity_catalogue.upsc import UpscPlugin
from unity_catalogue.virsh import VirshPlugin
from unity_catalogue.zpool_status import ZpoolStatusPlugin
from unity_sdk import PluginBase

__all__ = ["BUILTIN_PLUGINS"]

BUILTIN_PLUGINS: list[type[PluginBase[Any]]] = [
    SystemInfoPlugin,
    ProcessMonitorPlugin,
    DiskMonitorPlugin,
    NetworkMonitorPlugin,
    LmSensorsPlugin,
    IpmitoolPlugin,
    SmartctlPlugin,
    ZpoolStatusPlugin,
    MdadmPlugin,
    IostatPlugin,
    LsblkPlugin,
    NvidiaSmiPlugin,
    GpuPlugin,
    UpscPlugin,
    DockerStatsPlugin,
    DockerPlugin,
    LxcListPlugin,
    VirshPlugin,
    SsPlugin,
    Fail2banPlugin,
    Iperf3Plugin,
    SystemctlPlugin,
    JournalctlPlugin,
    OllamaPlugin,
    HttpCheckPlugin,
    TlsCertificatePlugin,
    DnsCheckPlugin,
    PostgresPlugin,
    MysqlPlugin,
    RedisPlugin,
    MqttBrokerPlugin,
]
