"""The hub's explicit list of built-in plugins.

``BUILTIN_PLUGINS`` is one of the hub's two plugin sources (the other is the
``unity.plugins`` entry-point group); nothing is found by scanning folders.
Each built-in uses only the public ``unity_sdk``, as a third-party plugin would.
The catalogue groups them by their declared ``PluginCategory``.
"""

from typing import Any

from unity.plugins.builtin.disk_monitor import DiskMonitorPlugin
from unity.plugins.builtin.dns_check import DnsCheckPlugin
from unity.plugins.builtin.docker import DockerPlugin
from unity.plugins.builtin.docker_stats import DockerStatsPlugin
from unity.plugins.builtin.fail2ban import Fail2banPlugin
from unity.plugins.builtin.gpu import GpuPlugin
from unity.plugins.builtin.http_check import HttpCheckPlugin
from unity.plugins.builtin.iostat import IostatPlugin
from unity.plugins.builtin.iperf3 import Iperf3Plugin
from unity.plugins.builtin.ipmitool import IpmitoolPlugin
from unity.plugins.builtin.journalctl import JournalctlPlugin
from unity.plugins.builtin.lm_sensors import LmSensorsPlugin
from unity.plugins.builtin.lsblk import LsblkPlugin
from unity.plugins.builtin.lxc_list import LxcListPlugin
from unity.plugins.builtin.mdadm import MdadmPlugin
from unity.plugins.builtin.mqtt_broker import MqttBrokerPlugin
from unity.plugins.builtin.mysql import MysqlPlugin
from unity.plugins.builtin.network_monitor import NetworkMonitorPlugin
from unity.plugins.builtin.nvidia_smi import NvidiaSmiPlugin
from unity.plugins.builtin.ollama import OllamaPlugin
from unity.plugins.builtin.postgres import PostgresPlugin
from unity.plugins.builtin.process_monitor import ProcessMonitorPlugin
from unity.plugins.builtin.redis_server import RedisPlugin
from unity.plugins.builtin.smartctl import SmartctlPlugin
from unity.plugins.builtin.ss import SsPlugin
from unity.plugins.builtin.system_info import SystemInfoPlugin
from unity.plugins.builtin.systemctl import SystemctlPlugin
from unity.plugins.builtin.tls_certificate import TlsCertificatePlugin
from unity.plugins.builtin.upsc import UpscPlugin
from unity.plugins.builtin.virsh import VirshPlugin
from unity.plugins.builtin.zpool_status import ZpoolStatusPlugin
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
