"""Unity: a self-hosted homelab intelligence hub.

The data flow, module by module::

    unity_sdk (contract)  ->  unity.plugins.loader  ->  unity.plugins.manager
                                                          |-> unity.plugins.scheduler
    unity.storage (SQLAlchemy + Alembic)  <---------------'
    unity.api (REST, /metrics)  .  unity.cli (typer)
"""

__version__ = "0.1.0"
