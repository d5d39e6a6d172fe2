"""The discovery contract: host facts, the ``discover`` hook and the rule for proposals."""

from __future__ import annotations

import logging
from typing import Any

import pytest
from pydantic import BaseModel, ConfigDict, Field, SecretStr

from unity_sdk import (
    HostFacts,
    ListeningSocket,
    MetadataError,
    PluginBase,
    PluginMetadata,
    Proposal,
    check_plugin_class,
    collect_proposals,
    proposal_problems,
)


class KvConfig(BaseModel):
    model_config = ConfigDict(extra="forbid")

    host: str = Field(default="127.0.0.1", description="Server host.")
    port: int = Field(default=7000, ge=1, le=65535, description="Server port.")
    password: SecretStr | None = Field(default=None, description="Password.")


def kv_proposal(**changes: Any) -> Proposal:
    values: dict[str, Any] = {
        "key": "kv:7000",
        "plugin": "kv",
        "title": "KV on port 7000",
        "config": {"host": "127.0.0.1", "port": 7000},
        "credential": "password",
    }
    return Proposal(**{**values, **changes})


class KvPlugin(PluginBase[KvConfig]):
    """Proposes whatever the test puts in ``proposals``."""

    proposals: list[Any] = []

    def get_metadata(self) -> PluginMetadata:
        return PluginMetadata(id="kv", name="KV", version="1.0.0", config_schema=KvConfig)

    async def collect_data(self) -> dict[str, Any]:
        return {"up": 1}

    @classmethod
    def discover(cls, facts: HostFacts) -> list[Proposal]:
        return list(cls.proposals)


class Quiet(PluginBase):
    def get_metadata(self) -> PluginMetadata:
        return PluginMetadata(id="quiet", name="Quiet", version="1.0.0")

    async def collect_data(self) -> dict[str, Any]:
        return {}


def sockets(*specs: tuple[str, int, str, int | None]) -> HostFacts:
    return HostFacts(
        listeners=tuple(
            ListeningSocket("tcp", address, port, process, pid)
            for address, port, process, pid in specs
        )
    )


def test_a_plugin_proposes_nothing_by_default() -> None:
    facts = sockets(("0.0.0.0", 5432, "postgres", 10))
    assert Quiet.discover(facts) == []
    assert collect_proposals([Quiet], facts) == []


@pytest.mark.parametrize(
    ("address", "host", "endpoint", "loopback_only"),
    [
        ("0.0.0.0", "127.0.0.1", "127.0.0.1:80", False),
        ("127.0.0.1", "127.0.0.1", "127.0.0.1:80", True),
        ("::", "::1", "[::1]:80", False),
        ("::1", "::1", "[::1]:80", True),
        ("192.168.1.5", "192.168.1.5", "192.168.1.5:80", False),
    ],
)
def test_a_socket_says_where_a_local_plugin_connects(
    address: str, host: str, endpoint: str, loopback_only: bool
) -> None:
    socket = ListeningSocket("tcp", address, 80)
    assert socket.host == host
    assert socket.endpoint == endpoint
    assert socket.url() == f"http://{endpoint}/"
    assert socket.url("https", "/health") == f"https://{endpoint}/health"
    assert socket.loopback_only is loopback_only


def test_listening_matches_the_port_whoever_owns_it() -> None:
    facts = sockets(("0.0.0.0", 5432, "docker-proxy", 7), ("0.0.0.0", 22, "sshd", 1))
    found = facts.listening(ports=[5432], processes=["postgres"])
    assert [(s.port, s.process) for s in found] == [(5432, "docker-proxy")]


def test_listening_finds_a_process_on_another_port_by_its_lowest_port() -> None:
    facts = sockets(
        ("127.0.0.1", 3306, "mysqld", 10),
        ("127.0.0.1", 33060, "mysqld", 10),  # the X protocol of the same server
        ("127.0.0.1", 3310, "mysqld", 20),
        ("127.0.0.1", 33100, "mysqld", 20),
        ("127.0.0.1", 4000, "", None),  # unreadable owner: only a port can match it
    )
    found = facts.listening(ports=[3306], processes=["mysqld", "mariadbd"])
    assert [(s.port, s.pid) for s in found] == [(3306, 10), (3310, 20)]


def test_listening_keeps_the_best_address_of_a_port() -> None:
    facts = sockets(
        ("::1", 6379, "redis-server", 5),
        ("127.0.0.1", 6379, "redis-server", 5),
        ("192.168.1.5", 80, "nginx", 6),
        ("::", 80, "nginx", 6),
    )
    found = facts.listening(ports=[80, 6379])
    assert [(s.port, s.address) for s in found] == [(80, "::"), (6379, "127.0.0.1")]


def test_listening_keeps_protocols_apart() -> None:
    facts = HostFacts(listeners=(ListeningSocket("udp", "0.0.0.0", 53, "dnsmasq", 3),))
    assert facts.listening(ports=[53]) == []
    assert [s.port for s in facts.listening(ports=[53], protocol="udp")] == [53]


def test_facts_know_the_commands_found() -> None:
    facts = HostFacts(executables=("sensors", "smartctl"))
    assert facts.has("smartctl")
    assert not facts.has("zpool")


def test_collect_keeps_valid_proposals_sorted_by_key(monkeypatch: pytest.MonkeyPatch) -> None:
    proposals = [
        kv_proposal(key="kv:7001", title="KV on port 7001", config={"port": 7001}),
        kv_proposal(),
        kv_proposal(title="the same key again: the first one wins"),
    ]
    monkeypatch.setattr(KvPlugin, "proposals", proposals)
    found = collect_proposals([KvPlugin], HostFacts())
    assert [(p.key, p.title) for p in found] == [
        ("kv:7000", "KV on port 7000"),
        ("kv:7001", "KV on port 7001"),
    ]


@pytest.mark.parametrize(
    ("changes", "problem"),
    [
        ({"config": {"port": 0}}, "config is not valid: port: Input should be greater than"),
        ({"config": {"colour": "red"}}, "config is not valid: colour: Extra inputs"),
        ({"plugin": "other", "key": "other:1"}, "plugin 'other' is not 'kv'"),
        ({"key": "postgres:7000"}, "key 'postgres:7000' must be 'kv' or start with 'kv:'"),
        ({"credential": "host"}, "credential 'host' is not a secret config field"),
        (
            {"config": {"password": "hunter2"}},
            "config holds 'password': a stored credential fills it",
        ),
    ],
)
def test_collect_leaves_out_what_the_hub_would_refuse(
    changes: dict[str, Any],
    problem: str,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
) -> None:
    bad = kv_proposal(**changes)
    metadata = KvPlugin().get_metadata()
    assert any(line.startswith(problem) for line in proposal_problems(metadata, bad))
    assert proposal_problems(metadata, kv_proposal()) == []
    monkeypatch.setattr(KvPlugin, "proposals", [bad, kv_proposal(key="kv:ok")])
    with caplog.at_level(logging.WARNING, logger="unity_sdk.discovery"):
        found = collect_proposals([KvPlugin], HostFacts())
    assert [p.key for p in found] == ["kv:ok"]
    assert problem in caplog.text
    assert "hunter2" not in caplog.text


def test_a_failing_plugin_does_not_hide_the_others(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    class Broken(Quiet):
        @classmethod
        def discover(cls, facts: HostFacts) -> list[Proposal]:
            raise RuntimeError("boom")

    class Sloppy(Quiet):
        @classmethod
        def discover(cls, facts: HostFacts) -> list[Proposal]:
            return [{"key": "quiet"}]  # type: ignore[list-item]

    monkeypatch.setattr(KvPlugin, "proposals", [kv_proposal()])
    with caplog.at_level(logging.WARNING, logger="unity_sdk.discovery"):
        found = collect_proposals([Broken, Sloppy, KvPlugin], HostFacts())
    assert [p.key for p in found] == ["kv:7000"]
    assert "discovery by Broken failed" in caplog.text
    assert "boom" in caplog.text
    assert "is not a Proposal" in caplog.text


def test_the_rulebook_wants_discover_as_a_plain_classmethod() -> None:
    class Async(Quiet):
        @classmethod
        async def discover(cls, facts: HostFacts) -> list[Proposal]:  # type: ignore[override]
            return []

    class Instance(Quiet):
        def discover(self, facts: HostFacts) -> list[Proposal]:  # type: ignore[override]
            return []

    assert check_plugin_class(KvPlugin).id == "kv"
    for cls in (Async, Instance):
        with pytest.raises(MetadataError, match="discover must be a plain"):
            check_plugin_class(cls)
