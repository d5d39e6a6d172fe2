"""Hardware and host tools: sensors, IPMI, disks, RAID, GPUs, UPS.

This module lists the group's plugin classes; each plugin lives in its own module.
"""

from typing import Any

from unity_sdk import PluginBase

from .gpu import GpuPlugin
from .iostat import IostatPlugin
from .ipmitool import IpmitoolPlugin
from .lm_sensors import LmSensorsPlugin
from .lsblk import LsblkPlugin
from .mdadm import MdadmPlugin
from .nvidia_smi import NvidiaSmiPlugin
from .smartctl import SmartctlPlugin
from .upsc import UpscPlugin
from .zpool_status import ZpoolStatusPlugin

__all__ = ["HARDWARE_PLUGINS"]

HARDWARE_PLUGINS: list[type[PluginBase[Any]]] = [
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
]
