"""The agent's README says what the command does: every command it shows exists
with its options, every option of join and install-service is in its table,
and the capability table is the one the agent prints."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from unity_agent.capabilities import NEEDS
from unity_agent.cli import main

README = Path(__file__).parents[1] / "README.md"


def _help(capsys: pytest.CaptureFixture[str], *command: str) -> str:
    with pytest.raises(SystemExit) as exit_:
        main([*command, "--help"])
    assert exit_.value.code == 0
    return capsys.readouterr().out


def _section(title: str) -> str:
    text = README.read_text()
    start = text.index(f"\n## {title}\n")
    end = text.find("\n## ", start + 1)
    return text[start : end if end != -1 else len(text)]


def _options(help_text: str) -> set[str]:
    """The options argparse lists (each at the start of its help line)."""
    found = re.findall(r"^ +(?:-\w, )?(--[a-z][a-z-]*)", help_text, flags=re.MULTILINE)
    return set(found) - {"--help"}


def test_every_command_shown_exists_with_its_options(capsys: pytest.CaptureFixture[str]) -> None:
    text = README.read_text()
    shown = re.findall(r"`(unity-agent [^`]+)`", text)
    shown += re.findall(r"^(?:sudo )?(unity-agent .+)$", text, flags=re.MULTILINE)
    assert len(shown) >= 6
    for line in shown:
        words = line.split()
        command = words[1]
        options = {word.split("=")[0] for word in words if word.startswith("--")}
        assert options <= _options(_help(capsys, command)), line


@pytest.mark.parametrize(
    ("title", "command"), [("Join", "join"), ("Run it as a service", "install-service")]
)
def test_each_option_table_lists_every_option(
    capsys: pytest.CaptureFixture[str], title: str, command: str
) -> None:
    documented = set(re.findall(r"^\| `(--[a-z-]+)", _section(title), flags=re.MULTILINE))
    assert documented == _options(_help(capsys, command))


def test_the_capability_table_is_the_agents() -> None:
    section = _section("Run it as a service").split("### What needs a group or a capability")[1]
    rows = re.findall(r"^\| ([a-z][a-z0-9, -]*) \| (.+) \|$", section, flags=re.MULTILINE)
    assert rows[0] == ("plugins", "needs")
    rows = rows[1:]
    assert rows == [(", ".join(need.plugins), need.what) for need in NEEDS]
