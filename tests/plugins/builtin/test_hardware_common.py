"""Shared helpers of the hardware group's tests, and the checks every plugin of the group passes.

``FakeRunner`` stands where the real tool would: it implements the SDK's
``Runner`` protocol and answers each command line with output recorded from
the real tool, read from ``fixtures/<plugin-id>/`` (each folder's
``SOURCE.md`` says where its formats come from). Nothing of the plugins'
own code is patched.
"""

from __future__ import annotations

import ast
import inspect
import os
import shutil
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

import pytest
from pydantic import BaseModel, ValidationError
from tests.support.plugin_checks import collect_checked as collect_checked

from unity_catalogue import BUILTIN_PLUGINS
from unity_sdk import (
    CommandResult,
    HealthState,
    HealthStatus,
    MetricKind,
    PluginBase,
    check_document,
    check_plugin_class,
    undeclared_numbers,
)

FIXTURES = Path(__file__).parent / "fixtures"

EXPECTED_IDS = [
    "lm-sensors",
    "ipmitool",
    "smartctl",
    "zpool-status",
    "mdadm",
    "iostat",
    "lsblk",
    "nvidia-smi",
    "gpu",
    "upsc",
]
# The plugins these tests cover: command-line tools that read the host's hardware.
HARDWARE_PLUGINS = [cls for cls in BUILTIN_PLUGINS if cls().get_metadata().id in EXPECTED_IDS]

P = TypeVar("P", bound=PluginBase)


@dataclass(frozen=True)
class Reply:
    """One recorded answer of a tool: what it printed and its exit status."""

    stdout: str = ""
    stderr: str = ""
    exit_status: int = 0


def recorded(plugin_id: str, name: str, *, exit_status: int = 0, stderr: str = "") -> Reply:
    """A reply whose stdout is the recorded fixture ``fixtures/<plugin_id>/<name>``."""
    return Reply((FIXTURES / plugin_id / name).read_text(), stderr, exit_status)


def failing(stderr: str, exit_status: int = 1, stdout: str = "") -> Reply:
    """A reply of a tool that failed and said why on stderr."""
    return Reply(stdout, stderr, exit_status)


NOT_FOUND = Reply("", "command not found", 127)


class FakeRunner:
    """A ``Runner`` that answers command lines with recorded output.

    ``replies`` maps an argv tuple to its reply; a command of ``missing`` is
    answered like an absent program (exit 127, as ``LocalRunner`` does). Any
    other command line fails the test, so a plugin cannot silently run
    something the recording does not cover. ``calls`` lists what ran.
    """

    def __init__(
        self, replies: Mapping[tuple[str, ...], Reply], *, missing: Sequence[str] = ()
    ) -> None:
        self.host = "recorded-host"
        self.replies = dict(replies)
        self.missing = set(missing)
        self.calls: list[tuple[str, ...]] = []

    async def run(
        self, argv: Sequence[str], *, timeout: float = 30.0, stdin: str | None = None
    ) -> CommandResult:
        args = tuple(argv)
        self.calls.append(args)
        assert timeout > 0
        if args[0] in self.missing:
            return CommandResult(args, "", f"{args[0]}: command not found", 127, 0.0)
        if args not in self.replies:
            pytest.fail(f"unexpected command {args!r}; recorded: {sorted(self.replies)}")
        reply = self.replies[args]
        return CommandResult(args, reply.stdout, reply.stderr, reply.exit_status, 0.001)


def make(cls: type[P], config: Mapping[str, Any] | None = None, runner: Any = None) -> P:
    """An instance with ``config`` validated and defaults filled in, as the hub does."""
    schema = cls().get_metadata().config_schema
    assert isinstance(schema, type)
    assert issubclass(schema, BaseModel)
    return cls(schema.model_validate(dict(config or {})).model_dump(), runner=runner)


async def health(plugin: PluginBase) -> HealthStatus:
    """The plugin's health check; it must answer, never raise."""
    status = await plugin.health_check()
    assert isinstance(status, HealthStatus)
    if status.status is not HealthState.HEALTHY:
        assert status.message, "a non-healthy status must say why"
    return status


async def nothing_collected(plugin: PluginBase) -> dict[str, Any]:
    """Collect on a host with nothing to monitor: a valid document, but only partial.

    Facts of hardware that is not there (a BMC's chassis flags, the hottest of no
    temperatures) are left out rather than invented.
    """
    document = await plugin.collect_data()
    assert check_document(plugin.get_metadata(), document, require_all=False) == []
    assert undeclared_numbers(plugin.get_metadata(), document) == []
    status = plugin.assess(document)
    assert status is not None
    assert status.status is HealthState.NOT_APPLICABLE
    return document


def require_tool(name: str) -> str:
    """The path of a locally installed tool: skip without it, but fail under CI."""
    path = shutil.which(name)
    if path is None:
        reason = f"{name} is not installed here (scripts/test installs it)"
        if os.environ.get("CI"):
            pytest.fail(reason)
        pytest.skip(reason)
    return path


# -- checks every plugin of the group passes ---------------------------------


def test_every_plugin_of_the_group_is_a_builtin() -> None:
    assert [cls().get_metadata().id for cls in HARDWARE_PLUGINS] == EXPECTED_IDS


@pytest.mark.parametrize("cls", HARDWARE_PLUGINS)
def test_loader_accepts(cls: type[PluginBase]) -> None:
    metadata = check_plugin_class(cls)
    assert metadata.version == "1.0.0"
    assert metadata.author == "Unity developers"
    assert metadata.description
    assert metadata.tags
    assert metadata.supports_remote
    assert metadata.requires.commands
    assert all(field.description for field in metadata.metrics)
    assert all(field.unit for field in metadata.metrics if field.kind is not MetricKind.INFO)


@pytest.mark.parametrize("cls", HARDWARE_PLUGINS)
def test_config_schema_forbids_unknown_keys(cls: type[PluginBase]) -> None:
    schema = cls().get_metadata().config_schema
    assert isinstance(schema, type)
    assert issubclass(schema, BaseModel)
    with pytest.raises(ValidationError, match="extra"):
        schema.model_validate({"no_such_option": 1})
    for name, field in schema.model_fields.items():
        assert field.description, f"{cls.__name__}.{name} has no description"


def _imports(source: str) -> set[str]:
    modules: set[str] = set()
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.ImportFrom) and node.module:
            modules.add(node.module)
        elif isinstance(node, ast.Import):
            modules.update(alias.name for alias in node.names)
    return modules


@pytest.mark.parametrize("cls", HARDWARE_PLUGINS)
def test_uses_only_the_public_sdk_and_the_runner(cls: type[PluginBase]) -> None:
    source = Path(inspect.getfile(cls)).read_text()
    assert not {m for m in _imports(source) if m == "unity" or m.startswith("unity.")}
    assert "subprocess" not in source, "commands must go through self.runner"
    assert "self.runner.run(" in source or "query_gpus(self" in source


@pytest.mark.parametrize("cls", HARDWARE_PLUGINS)
def test_fixture_folder_says_where_formats_come_from(cls: type[PluginBase]) -> None:
    plugin_id = cls().get_metadata().id
    source = FIXTURES / plugin_id / "SOURCE.md"
    assert source.is_file(), f"{source} is missing"
    assert len(source.read_text()) > 200
