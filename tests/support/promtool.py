"""``promtool check metrics`` (Debian's ``prometheus`` package) on an exposition page.

``scripts/test`` installs it. Without it a test skips with the reason -- except
under CI, where it fails.
"""

from __future__ import annotations

import os
import shutil
import subprocess

import pytest

__all__ = ["promtool_check", "promtool_lint"]


def promtool_lint(page: str) -> tuple[int, str]:
    """promtool's exit code and output (lint problems, parse errors) for ``page``."""
    promtool = shutil.which("promtool")
    if promtool is None:
        reason = "promtool is not installed (apt-get install prometheus; scripts/test does)"
        if os.environ.get("CI"):
            pytest.fail(f"CI checks the /metrics page with promtool: {reason}")
        pytest.skip(reason)
    result = subprocess.run(
        [promtool, "check", "metrics"],
        input=page,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    return result.returncode, result.stdout + result.stderr


def promtool_check(page: str) -> None:
    """Assert promtool accepts ``page``: exit 0 and no lint output at all."""
    code, output = promtool_lint(page)
    assert code == 0, f"promtool check metrics exited {code}:\n{output}"
    assert output == "", f"promtool check metrics found problems:\n{output}"
