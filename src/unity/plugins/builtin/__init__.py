"""The hub's explicit list of built-in plugins.

``BUILTIN_PLUGINS`` is one of the hub's two plugin sources (the other is the
``unity.plugins`` entry-point group); nothing is found by scanning folders.
Each built-in uses only the public ``unity_sdk``, as a third-party plugin would.
"""

from typing import Any

from unity.plugins.builtin.catalogue_applications import APPLICATIONS_PLUGINS
from unity.plugins.builtin.catalogue_hardware import HARDWARE_PLUGINS
from unity.plugins.builtin.catalogue_services import SERVICES_PLUGINS
from unity.plugins.builtin.disk_monitor import DiskMonitorPlugin
from unity.plugins.builtin.network_monitor import NetworkMonitorPlugin
from unity.plugins.builtin.process_monitor import ProcessMonitorPlugin
from unity.plugins.builtin.system_info import SystemInfoPlugin
from unity_sdk import PluginBase

__all__ = [
    "BUILTIN_PLUGINS",
    "DiskMonitorPlugin",
    "NetworkMonitorPlugin",
    "ProcessMonitorPlugin",
    "SystemInfoPlugin",
]

BUILTIN_PLUGINS: list[type[PluginBase[Any]]] = [
    SystemInfoPlugin,
    ProcessMonitorPlugin,
    DiskMonitorPlugin,
    NetworkMonitorPlugin,
    *HARDWARE_PLUGINS,
    *SERVICES_PLUGINS,
    *APPLICATIONS_PLUGINS,
]
