"""Joining an https hub pins its certificate; a changed one is refused, clearly.

Real TLS on loopback: certificates made here, a real server (agent_test_hub),
the real ``unity-agent`` command line.
"""

from __future__ import annotations

import asyncio
import ssl
import threading
import time
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path

import pytest
from agent_test_hub import (
    GOOD_TOKEN,
    AgentHub,
    Certificate,
    make_certificate,
    require_runtime,
    wait_for,
)

from unity_agent.cli import main
from unity_agent.errors import CommandError
from unity_agent.identity import load_identity
from unity_agent.supervisor import run_until_stopped, watch_pin
from unity_agent.tls import check_pin, normalize_fingerprint


@pytest.fixture
def certificate(tmp_path: Path) -> Certificate:
    return make_certificate(tmp_path, "hub-one")[0]


@pytest.fixture
def hub(certificate: Certificate) -> Iterator[AgentHub]:
    with AgentHub(certificate).running() as running:
        yield running


def agent(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    code = main(list(argv))
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def join(
    capsys: pytest.CaptureFixture[str], hub: AgentHub, data: Path, *extra: str
) -> tuple[int, str, str]:
    return agent(capsys, "join", hub.url, GOOD_TOKEN, "--data-dir", str(data), "--no-start", *extra)


def test_join_pins_the_certificate_the_hub_showed(
    capsys: pytest.CaptureFixture[str], hub: AgentHub, certificate: Certificate, tmp_path: Path
) -> None:
    data = tmp_path / "agent"
    code, out, err = join(capsys, hub, data, "--host-id", "nas")
    assert (code, err) == (0, "")
    assert f"The hub's certificate: {certificate.sha256}" in out
    identity = load_identity(data)
    assert identity.fingerprint == certificate.sha256
    assert identity.pinned_certificate is not None
    assert ssl.PEM_cert_to_DER_cert(identity.pinned_certificate) == certificate.der
    assert identity.host_id == "nas"
    # The key is stored, never printed.
    assert identity.api_key.startswith("unitya_")
    assert identity.api_key not in out
    # The join went through the pinned context: the hub saw it, once.
    assert [j["token"] for j in hub.state.joins] == [GOOD_TOKEN]

    code, out, err = agent(capsys, "status", "--data-dir", str(data))
    assert code == 0, out
    assert f"certificate:  pinned {certificate.sha256}" in out
    assert "hub answers:  yes (0 plugin instance(s)" in out
    assert identity.api_key not in out + err


def test_a_changed_certificate_is_refused_with_both_fingerprints(
    capsys: pytest.CaptureFixture[str], hub: AgentHub, certificate: Certificate, tmp_path: Path
) -> None:
    data = tmp_path / "agent"
    assert join(capsys, hub, data)[0] == 0
    before = (data / "agent.json").read_bytes()
    replacement = make_certificate(tmp_path, "hub-two")[0]
    hub.use_certificate(replacement)
    calls = len(hub.agent_calls())

    code, out, err = agent(capsys, "run", "--data-dir", str(data))
    assert code == 1
    assert err == (
        f"unity-agent: the hub's certificate changed: pinned {certificate.sha256}, "
        f"now {replacement.sha256}; if this is expected, join again with --force\n"
    )
    # Refused at the handshake: the agent sent the new certificate's server nothing.
    assert len(hub.agent_calls()) == calls
    assert (data / "agent.json").read_bytes() == before

    code, out, _ = agent(capsys, "status", "--data-dir", str(data))
    assert code == 1
    assert f"hub answers:  no: the hub's certificate changed: pinned {certificate.sha256}" in out


def test_joining_again_with_force_pins_the_new_certificate(
    capsys: pytest.CaptureFixture[str], hub: AgentHub, tmp_path: Path
) -> None:
    data = tmp_path / "agent"
    assert join(capsys, hub, data, "--host-id", "nas")[0] == 0
    old_key = load_identity(data).api_key
    replacement = make_certificate(tmp_path, "hub-two")[0]
    hub.use_certificate(replacement)

    code, _, err = join(capsys, hub, data, "--host-id", "nas")
    assert code == 1
    assert "already joined a hub" in err
    assert "--force" in err

    # Without --host-id the agent asks for the host id it had on this hub; the hub
    # gives that host a new key and the old one stops working.
    code, _, err = join(capsys, hub, data, "--force")
    assert (code, err) == (0, "")
    identity = load_identity(data)
    assert (identity.host_id, identity.fingerprint) == ("nas", replacement.sha256)
    assert identity.api_key != old_key
    assert [body["body"].get("host_id") for body in hub.state.joins] == ["nas", "nas"]
    assert [keys[1] for keys in hub.state.hosts.values()] == [identity.api_key]
    assert agent(capsys, "status", "--data-dir", str(data))[0] == 0


def test_the_hubs_own_host_id_is_refused_clearly(
    capsys: pytest.CaptureFixture[str], hub: AgentHub, tmp_path: Path
) -> None:
    data = tmp_path / "agent"
    code, _, err = join(capsys, hub, data, "--host-id", "hub")
    assert code == 1
    assert err.startswith("unity-agent: host id 'hub' cannot be joined on the hub (")
    assert err.endswith("); choose another with --host-id\n")
    assert "is the hub's own machine" in err
    assert not (data / "agent.json").exists()


@pytest.mark.parametrize("spelling", ["agent", "openssl"])
def test_a_matching_fingerprint_is_accepted_as_written_by_either(
    capsys: pytest.CaptureFixture[str],
    hub: AgentHub,
    certificate: Certificate,
    tmp_path: Path,
    spelling: str,
) -> None:
    digest = certificate.sha256.removeprefix("sha256:")
    given = (
        certificate.sha256
        if spelling == "agent"
        else "sha256 Fingerprint=" + ":".join(digest[i : i + 2] for i in range(0, 64, 2)).upper()
    )
    code, _, err = join(capsys, hub, tmp_path / "agent", "--fingerprint", given)
    assert (code, err) == (0, "")
    assert load_identity(tmp_path / "agent").fingerprint == certificate.sha256


def test_a_fingerprint_mismatch_sends_and_writes_nothing(
    capsys: pytest.CaptureFixture[str], hub: AgentHub, certificate: Certificate, tmp_path: Path
) -> None:
    other = make_certificate(tmp_path, "elsewhere")[0]
    data = tmp_path / "agent"
    code, _, err = join(capsys, hub, data, "--fingerprint", other.sha256)
    assert code == 1
    assert err == (
        "unity-agent: the hub's certificate does not match --fingerprint: "
        f"expected {other.sha256}, the hub showed {certificate.sha256}; nothing was sent to it\n"
    )
    assert hub.state.joins == []
    assert hub.agent_calls() == []
    assert not data.exists()


def test_a_fingerprint_is_only_for_https(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    with AgentHub(None).running() as plain:
        fingerprint = "sha256:" + "a" * 64
        code, _, err = join(capsys, plain, tmp_path / "agent", "--fingerprint", fingerprint)
        assert plain.agent_calls() == []
    assert code == 1
    assert err == "unity-agent: --fingerprint needs an https:// hub URL\n"
    assert not (tmp_path / "agent").exists()


def test_a_leaf_signed_by_a_private_ca_is_pinned_alone(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    """The pin is the hub's own certificate, not its CA: another certificate of
    the same CA is a changed certificate."""
    ca, ca_key = make_certificate(tmp_path, "home-ca", ca=True, lifetime=timedelta(days=365))
    leaf = make_certificate(tmp_path, "hub-leaf", issuer=(ca.x509, ca_key))[0]
    sibling = make_certificate(tmp_path, "hub-sibling", issuer=(ca.x509, ca_key))[0]
    data = tmp_path / "agent"
    with AgentHub(leaf).running() as hub:
        assert join(capsys, hub, data)[0] == 0
        assert load_identity(data).fingerprint == leaf.sha256
        assert agent(capsys, "status", "--data-dir", str(data))[0] == 0
        hub.use_certificate(sibling)
        code, _, err = agent(capsys, "run", "--data-dir", str(data))
    assert code == 1
    assert f"pinned {leaf.sha256}, now {sibling.sha256}" in err


def test_an_expired_pinned_certificate_is_told_apart_from_a_changed_one(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    short = make_certificate(tmp_path, "short-lived", lifetime=timedelta(seconds=3))[0]
    data = tmp_path / "agent"
    with AgentHub(short).running() as hub:
        assert join(capsys, hub, data)[0] == 0
        expiry = short.x509.not_valid_after_utc.timestamp()
        time.sleep(max(0.0, expiry - time.time()) + 1.5)
        code, _, err = agent(capsys, "run", "--data-dir", str(data))
    assert code == 1
    assert f"the hub's pinned certificate {short.sha256} is no longer accepted" in err
    assert "expired" in err


def test_no_pin_trusts_the_system_cas_and_refuses_a_self_signed_hub(
    capsys: pytest.CaptureFixture[str], hub: AgentHub, tmp_path: Path
) -> None:
    data = tmp_path / "agent"
    code, _, err = join(capsys, hub, data, "--no-pin")
    assert code == 1
    assert err == (
        "unity-agent: the hub's certificate is not trusted by this system (self-signed "
        "certificate); without --no-pin the agent pins it instead\n"
    )
    assert not data.exists()


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("sha256:" + "AB" * 32, "sha256:" + "ab" * 32),
        ("SHA256:" + ":".join(["0f"] * 32), "sha256:" + "0f" * 32),
        ("  " + "12" * 32 + "\n", "sha256:" + "12" * 32),
        ("sha256:" + "ab" * 31, None),
        ("sha1:" + "ab" * 20, None),
        ("sha256:" + "zz" * 32, None),
    ],
)
def test_fingerprints_are_read_in_every_usual_spelling(text: str, expected: str | None) -> None:
    assert normalize_fingerprint(text) == expected


async def test_the_pin_is_watched_while_the_agent_runs(tmp_path: Path) -> None:
    first = make_certificate(tmp_path, "hub-one")[0]
    second = make_certificate(tmp_path, "hub-two")[0]
    data = tmp_path / "agent"
    with AgentHub(first).running() as hub:
        argv = ["join", hub.url, GOOD_TOKEN, "--data-dir", str(data), "--no-start"]
        assert await asyncio.to_thread(main, argv) == 0
        identity = load_identity(data)
        watch = asyncio.create_task(watch_pin(identity, 0.05))
        await asyncio.sleep(0.5)
        assert not watch.done()  # the same certificate: it keeps watching
        hub.use_certificate(second)
        problem = await asyncio.wait_for(watch, 10)
    assert problem == (
        f"the hub's certificate changed: pinned {first.sha256}, now {second.sha256}; "
        "if this is expected, join again with --force"
    )
    # A hub that is away is no reason to stop: the agent buffers.
    assert await asyncio.to_thread(check_pin, identity) is None


def test_a_certificate_that_changes_while_running_stops_the_agent(tmp_path: Path) -> None:
    require_runtime()
    first = make_certificate(tmp_path, "hub-one")[0]
    second = make_certificate(tmp_path, "hub-two")[0]
    data = tmp_path / "agent"
    with AgentHub(first).running() as hub:
        assert main(["join", hub.url, GOOD_TOKEN, "--data-dir", str(data), "--no-start"]) == 0

        def swap_once_running() -> None:
            wait_for(lambda: ("GET", "/api/agents/v1/assignments") in hub.agent_calls())
            hub.use_certificate(second)

        swapper = threading.Thread(target=swap_once_running)
        swapper.start()
        with pytest.raises(CommandError) as refused:
            asyncio.run(run_until_stopped(load_identity(data), data, pin_check_seconds=0.1))
        swapper.join()
    assert str(refused.value).startswith(
        f"the hub's certificate changed: pinned {first.sha256}, now {second.sha256}"
    )
