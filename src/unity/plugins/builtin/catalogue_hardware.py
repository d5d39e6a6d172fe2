"""Hardware and host tools: sensors, IPMI, disks, RAID, GPUs, UPS.

This module lists the group's plugin classes; each plugin lives in its own module.
"""

from unity.plugins.builtin.gpu import GpuPlugin
from unity.plugins.builtin.iostat import IostatPlugin
from unity.plugins.builtin.ipmitool import IpmitoolPlugin
from unity.plugins.builtin.lm_sensors import LmSensorsPlugin
from unity.plugins.builtin.lsblk import LsblkPlugin
from unity.plugins.builtin.mdadm import MdadmPlugin
from unity.plugins.builtin.nvidia_smi import NvidiaSmiPlugin
from unity.plugins.builtin.smartctl import SmartctlPlugin
from unity.plugins.builtin.upsc import UpscPlugin
from unity.plugins.builtin.zpool_status import ZpoolStatusPlugin
from unity_sdk import PluginBase

__all__ = ["HARDWARE_PLUGINS"]

HARDWARE_PLUGINS: list[type[PluginBase]] = [
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
