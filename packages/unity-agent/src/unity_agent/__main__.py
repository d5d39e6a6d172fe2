"""``python -m unity_agent``: the same as the ``unity-agent`` command."""

import sys

from unity_agent.cli import main

sys.exit(main())
