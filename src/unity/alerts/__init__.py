"""Alerts: rules evaluated on every recorded run, and the life of each alert.

:class:`AlertEngine` (``engine.py``) takes what the hub observes, evaluates
the rules compiled by ``rules.py``, and moves alert instances through
inactive -> pending -> firing -> resolved (``lifecycle.py``), handing a
notice to the :class:`unity.notify.Notifier` on firing, repeat and
resolution. ``store.py`` holds the queries the engine and the API share.
"""

from unity.alerts.engine import AlertEngine, MetadataSource
from unity.alerts.rules import CompiledRule, EffectiveRule, RuleError, effective_rules

__all__ = [
    "AlertEngine",
    "CompiledRule",
    "EffectiveRule",
    "MetadataSource",
    "RuleError",
    "effective_rules",
]
