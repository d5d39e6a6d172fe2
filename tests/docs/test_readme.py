"""The README's commands exist as written: each `unity ...` it shows names a real
command, and each option it passes is one that command takes."""

from __future__ import annotations

import re
from pathlib import Path

from typer.testing import CliRunner

from unity.cli.main import app

README = Path(__file__).parents[2] / "README.md"
runner = CliRunner()


def _readme_commands() -> list[list[str]]:
    text = README.read_text()
    return [found.split() for found in re.findall(r"`(unity [^`]+)`", text)]


def _command_path(words: list[str]) -> tuple[list[str], list[str]]:
    """Split ``unity a b ARG --opt`` into its command words and its options."""
    path: list[str] = []
    options = [w.split("=")[0] for w in words if w.startswith("--")]
    for word in words[1:]:
        if not re.fullmatch(r"[a-z][a-z-]*", word):
            break
        path.append(word)
    return path, options


def test_every_command_the_readme_shows_exists_with_its_options() -> None:
    commands = _readme_commands()
    assert len(commands) > 15
    for words in commands:
        path, options = _command_path(words)
        # Arguments are written in capitals (ID, PATH) or as key=value, so every
        # lower-case word before them must be part of the command's name.
        result = runner.invoke(app, [*path, "--help"], env={"COLUMNS": "200"})
        assert result.exit_code == 0, f"{' '.join(words)!r}: no such command"
        for option in options:
            assert option in result.stdout, f"{' '.join(words)!r}: {option} is not an option"
