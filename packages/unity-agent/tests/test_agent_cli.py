"""``unity-agent join``, ``run`` and ``status`` against a real hub server on loopback.

Bad input is one line on stderr, exit status 1 and nothing in the data
directory: a refused token, a hub that is down, a URL that is not http(s).
"""

from __future__ import annotations

import json
import os
import signal
import stat
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from agent_test_hub import (
    GOOD_TOKEN,
    AgentHub,
    closed_port,
    make_certificate,
    require_runtime,
    wait_for,
)

from unity_agent.cli import main
from unity_agent.identity import load_identity

AGENT = Path(sys.executable).parent / "unity-agent"


@pytest.fixture(params=["https", "http"])
def hub(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[AgentHub]:
    certificate = make_certificate(tmp_path, "hub")[0] if request.param == "https" else None
    with AgentHub(certificate).running() as running:
        yield running


def agent(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    code = main(list(argv))
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def join(
    capsys: pytest.CaptureFixture[str], url: str, data: Path, *extra: str, token: str = GOOD_TOKEN
) -> tuple[int, str, str]:
    return agent(capsys, "join", url, token, "--data-dir", str(data), "--no-start", *extra)


def test_join_writes_a_private_identity_even_under_an_open_umask(
    capsys: pytest.CaptureFixture[str], hub: AgentHub, tmp_path: Path
) -> None:
    data = tmp_path / "state" / "agent"
    previous = os.umask(0)
    try:
        code, out, err = join(capsys, hub.url, data, "--hostname", "NAS-01.lan")
    finally:
        os.umask(previous)
    assert code == 0, err
    assert stat.S_IMODE(data.stat().st_mode) == 0o700
    assert stat.S_IMODE((data / "agent.json").stat().st_mode) == 0o600
    assert sorted(p.name for p in data.iterdir()) == ["agent.json"]
    identity = load_identity(data)
    assert identity.host_id == "nas-01"
    assert identity.hub_url == hub.url
    assert identity.hostname == "NAS-01.lan"
    assert (identity.fingerprint is not None) == hub.url.startswith("https://")
    assert f"Joined {hub.url} as host 'nas-01'" in out
    assert identity.api_key not in out + err
    sent = hub.state.joins[0]["body"]
    assert sent["platform"]["hostname"] == "NAS-01.lan"
    assert sent["platform"]["agent_version"] == "0.1.0"
    assert sent["platform"]["cpu_count"] == os.cpu_count()
    if hub.url.startswith("http://"):
        assert err == (
            "warning: http:// sends the agent's key unencrypted; use https:// outside a "
            "trusted network\n"
        )


def test_a_refused_token_is_one_line_and_leaves_nothing(
    capsys: pytest.CaptureFixture[str], hub: AgentHub, tmp_path: Path
) -> None:
    data = tmp_path / "agent"
    code, out, err = join(capsys, hub.url, data, token="unitye_expired")
    assert code == 1
    last = err.splitlines()[-1]
    assert last == (
        "unity-agent: the hub refused the enrollment token (wrong, expired or used up): "
        "enrollment token is unknown, expired or used up (HTTP 401); make a new one on the "
        "hub (unity token create --enroll)"
    )
    # 401 is final: asked once, never retried.
    assert [j["token"] for j in hub.state.joins] == ["unitye_expired"]
    assert not data.exists()
    assert "Joined" not in out


@pytest.mark.parametrize("scheme", ["http", "https"])
def test_a_hub_that_is_down_is_one_line_and_leaves_nothing(
    capsys: pytest.CaptureFixture[str], tmp_path: Path, scheme: str
) -> None:
    url = f"{scheme}://127.0.0.1:{closed_port()}"
    data = tmp_path / "agent"
    code, out, err = join(capsys, url, data)
    assert code == 1
    assert err == (
        f"unity-agent: cannot reach the hub at {url}: connection refused "
        "(is the hub running, and is this its port?)\n"
    )
    assert out == ""
    assert not data.exists()


@pytest.mark.parametrize(
    ("url", "message"),
    [
        ("ftp://hub.lan", "the hub URL must start with http:// or https:// (got 'ftp://hub.lan')"),
        ("hub.lan:8000", "the hub URL must start with http:// or https:// (got 'hub.lan:8000')"),
        ("https://", "the hub URL has no host (got 'https://')"),
        ("http://hub.lan:eighty", "the hub URL has an invalid port (got 'http://hub.lan:eighty')"),
    ],
)
def test_a_url_that_is_not_a_hub_address_is_refused_before_any_connection(
    capsys: pytest.CaptureFixture[str], tmp_path: Path, url: str, message: str
) -> None:
    code, out, err = join(capsys, url, tmp_path / "agent")
    assert (code, out, err) == (1, "", f"unity-agent: {message}\n")
    assert not (tmp_path / "agent").exists()


def test_the_url_is_kept_in_one_spelling(
    capsys: pytest.CaptureFixture[str], hub: AgentHub, tmp_path: Path
) -> None:
    scheme, rest = hub.url.split("://")
    code, _, err = join(capsys, f"{scheme.upper()}://{rest}/", tmp_path / "agent")
    assert code == 0, err
    assert load_identity(tmp_path / "agent").hub_url == hub.url


def test_a_lost_answer_is_retried_with_the_same_key_secret(
    capsys: pytest.CaptureFixture[str], hub: AgentHub, tmp_path: Path
) -> None:
    hub.state.fail_joins = 1
    code, _, err = join(capsys, hub.url, tmp_path / "agent", "--host-id", "pi")
    assert code == 0, err
    joins = hub.state.joins
    assert len(joins) == 2
    assert joins[0]["body"]["key_secret"] == joins[1]["body"]["key_secret"]
    assert hub.state.hosts["pi"][0] == joins[0]["body"]["key_secret"]
    assert load_identity(tmp_path / "agent").api_key == hub.state.hosts["pi"][1]


def test_an_agent_that_joined_refuses_to_join_again_without_force(
    capsys: pytest.CaptureFixture[str], hub: AgentHub, tmp_path: Path
) -> None:
    data = tmp_path / "agent"
    assert join(capsys, hub.url, data)[0] == 0
    before = (data / "agent.json").read_bytes()
    sent = len(hub.agent_calls())
    code, _, err = join(capsys, hub.url, data)
    assert code == 1
    assert err == (
        f"unity-agent: this host already joined a hub ({data / 'agent.json'}); "
        "to join again (a new hub, a new certificate) add --force\n"
    )
    assert len(hub.agent_calls()) == sent
    assert (data / "agent.json").read_bytes() == before


def test_a_data_dir_that_cannot_be_made_is_refused_before_joining(
    capsys: pytest.CaptureFixture[str], hub: AgentHub, tmp_path: Path
) -> None:
    blocker = tmp_path / "a-file"
    blocker.write_text("not a directory")
    code, _, err = join(capsys, hub.url, blocker / "agent")
    assert code == 1
    assert "cannot write the data directory" in err
    assert hub.agent_calls() == []


def test_bad_host_ids_are_refused_locally(
    capsys: pytest.CaptureFixture[str], hub: AgentHub, tmp_path: Path
) -> None:
    code, _, err = join(capsys, hub.url, tmp_path / "agent", "--host-id", "NAS_01")
    assert code == 1
    assert err.startswith("unity-agent: --host-id 'NAS_01' is not a host id")
    assert hub.agent_calls() == []


def test_status_says_whether_the_hub_answers_without_the_key(
    capsys: pytest.CaptureFixture[str], hub: AgentHub, tmp_path: Path
) -> None:
    data = tmp_path / "agent"
    assert join(capsys, hub.url, data, "--host-id", "vps")[0] == 0
    key = load_identity(data).api_key

    code, out, err = agent(capsys, "status", "--data-dir", str(data))
    assert code == 0
    assert f"hub:          {hub.url}\nhost id:      vps\n" in out
    assert "hub answers:  yes" in out
    assert ("GET", "/api/agents/v1/assignments") in hub.agent_calls()

    hub.state.refuse_keys = True
    code, out, err = agent(capsys, "status", "--data-dir", str(data))
    assert code == 1
    assert "hub answers:  no: the hub refused this agent's key (removed from the hub?)" in out
    assert key not in out + err


def test_status_of_a_hub_that_went_away(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    data = tmp_path / "agent"
    with AgentHub(None).running() as hub:
        assert join(capsys, hub.url, data)[0] == 0
    code, out, _ = agent(capsys, "status", "--data-dir", str(data))
    assert code == 1
    assert "hub answers:  no: " in out
    assert "unreachable" in out


@pytest.mark.parametrize("command", ["run", "status"])
def test_run_and_status_before_joining_say_to_join(
    capsys: pytest.CaptureFixture[str], tmp_path: Path, command: str
) -> None:
    code, _, err = agent(capsys, command, "--data-dir", str(tmp_path / "agent"))
    assert code == 1
    assert err == (
        f"unity-agent: {tmp_path / 'agent' / 'agent.json'} does not exist: join the hub first "
        "(unity-agent join URL TOKEN)\n"
    )


def test_the_console_script_exits_non_zero_with_one_line(tmp_path: Path) -> None:
    """The installed ``unity-agent`` executable, as a person runs it."""
    with AgentHub(make_certificate(tmp_path, "hub")[0]).running() as hub:
        result = subprocess.run(
            [str(AGENT), "join", hub.url, "unitye_wrong", "--data-dir", str(tmp_path / "agent")],
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )
    assert result.returncode == 1
    assert result.stderr.count("\n") == 1, result.stderr
    assert result.stderr.startswith("unity-agent: the hub refused the enrollment token")
    assert not (tmp_path / "agent").exists()


def test_the_token_can_come_from_stdin(tmp_path: Path) -> None:
    """``-`` keeps the token out of ps and the shell's history."""
    data = tmp_path / "agent"
    with AgentHub(None).running() as hub:
        argv = [str(AGENT), "join", hub.url, "-", "--data-dir", str(data), "--no-start"]
        empty = subprocess.run(argv, input="", capture_output=True, text=True, timeout=60)
        joined = subprocess.run(
            argv, input=f"{GOOD_TOKEN}\n", capture_output=True, text=True, timeout=60
        )
        tokens = [join["token"] for join in hub.state.joins]
    assert empty.returncode == 1
    assert empty.stderr == "unity-agent: no enrollment token (stdin was empty)\n"
    assert joined.returncode == 0, joined.stderr
    assert tokens == [GOOD_TOKEN]
    assert load_identity(data).host_id


def test_join_starts_the_agent_and_sigterm_stops_it_with_status_0(tmp_path: Path) -> None:
    require_runtime()
    data = tmp_path / "agent"
    with AgentHub(make_certificate(tmp_path, "hub")[0]).running() as hub:
        process = subprocess.Popen(
            [str(AGENT), "join", hub.url, GOOD_TOKEN, "--data-dir", str(data)],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        try:
            wait_for(lambda: ("GET", "/api/agents/v1/assignments") in hub.agent_calls())
            process.send_signal(signal.SIGTERM)
            out, err = process.communicate(timeout=30)
        finally:
            process.kill()
    assert process.returncode == 0, err
    assert "Joined" in out


def test_run_exits_1_when_the_hub_refuses_the_key(tmp_path: Path) -> None:
    require_runtime()
    data = tmp_path / "agent"
    with AgentHub(make_certificate(tmp_path, "hub")[0]).running() as hub:
        assert main(["join", hub.url, GOOD_TOKEN, "--data-dir", str(data), "--no-start"]) == 0
        hub.state.refuse_keys = True
        result = subprocess.run(
            [str(AGENT), "run", "--data-dir", str(data)],
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )
    assert result.returncode == 1
    assert result.stderr.splitlines()[-1] == (
        "unity-agent: the hub refused this agent's key (removed from the hub?)"
    )


def test_the_command_line_loads_nothing_of_the_hub() -> None:
    probe = (
        "import json, sys\n"
        "import unity_agent.cli, unity_agent.join, unity_agent.service, unity_agent.supervisor\n"
        "print(json.dumps(sorted(sys.modules)))\n"
    )
    output = subprocess.run(
        [sys.executable, "-c", probe], capture_output=True, text=True, check=True, timeout=60
    ).stdout
    roots = {name.split(".")[0] for name in json.loads(output)}
    assert "unity_agent" in roots
    assert not roots & {"unity", "fastapi", "sqlalchemy", "starlette", "uvicorn", "typer", "rich"}
