"""Host services: containers, VMs, sockets, systemd, journald, fail2ban, iperf3, Ollama.

This module lists the group's plugin classes; each plugin lives in its own module.
"""

from typing import Any

from unity_sdk import PluginBase

from .docker import DockerPlugin
from .docker_stats import DockerStatsPlugin
from .fail2ban import Fail2banPlugin
from .iperf3 import Iperf3Plugin
from .journalctl import JournalctlPlugin
from .lxc_list import LxcListPlugin
from .ollama import OllamaPlugin
from .ss import SsPlugin
from .systemctl import SystemctlPlugin
from .virsh import VirshPlugin

__all__ = ["SERVICES_PLUGINS"]

SERVICES_PLUGINS: list[type[PluginBase[Any]]] = [
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
]
