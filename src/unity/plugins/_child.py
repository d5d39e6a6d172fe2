"""Entry point of a process-isolated run: lower the CPU priority, then run the plugin.

The priority drops before anything heavy is imported, so a plugin child (and
its start-up) never competes on equal terms with the hub it reports to.
"""

from __future__ import annotations

import os

CHILD_NICENESS = 10

if __name__ == "__main__":
    os.nice(CHILD_NICENESS)
    from unity.plugins.isolation import main

    main()
