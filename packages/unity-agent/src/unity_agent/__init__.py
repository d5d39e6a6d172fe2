"""unity-agent: runs catalogue plugins on a host and reports to a Unity hub.

One process per host, one key per agent. ``unity-agent join URL TOKEN`` enrolls
the host and starts; what runs here, and with which config, is set in the hub.
"""

__version__ = "0.1.0"
