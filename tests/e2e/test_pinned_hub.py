"""End to end over HTTPS: `unity serve` speaks TLS itself with a self-signed
certificate, an agent joins and pins it; when the hub comes back with another
certificate the agent refuses to talk to it, says why, and exits non-zero."""

from __future__ import annotations

import datetime as dt
import ipaddress
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID
from tests.support.processes import Hub, hub_env

AGENT = Path(sys.executable).with_name("unity-agent")

pytestmark = [pytest.mark.e2e, pytest.mark.slow]


def self_signed(folder: Path, name: str) -> tuple[Path, Path, str]:
    """A certificate for 127.0.0.1 and its key as PEM files; its SHA-256 fingerprint."""
    key = ec.generate_private_key(ec.SECP256R1())
    subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, name)])
    now = dt.datetime.now(dt.UTC)
    certificate = (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5))
        .not_valid_after(now + dt.timedelta(days=30))
        .add_extension(
            x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]),
            critical=False,
        )
        .sign(key, hashes.SHA256())
    )
    cert_file, key_file = folder / f"{name}.crt", folder / f"{name}.key"
    cert_file.write_bytes(certificate.public_bytes(serialization.Encoding.PEM))
    key_file.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    return cert_file, key_file, "sha256:" + certificate.fingerprint(hashes.SHA256()).hex()


class TlsHub(Hub):
    """`unity serve` on https://127.0.0.1 with the certificate in its environment."""

    def __init__(self, env: dict[str, str], log: Path) -> None:
        super().__init__(env, log)
        self.url = self.url.replace("http://", "https://")

    def start(self) -> None:
        with self.log.open("ab") as out:
            self.proc = subprocess.Popen(
                [str(Path(sys.executable).with_name("unity")), "serve"],
                env=self.env,
                stdout=out,
                stderr=subprocess.STDOUT,
            )
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            assert self.proc.poll() is None, self.log.read_text()
            try:
                # The test's own check of a self-signed hub: no verification here.
                if httpx.get(f"{self.url}/healthz", timeout=1, verify=False).status_code == 200:
                    return
            except httpx.TransportError:
                time.sleep(0.2)
        raise AssertionError(f"hub did not answer in time:\n{self.log.read_text()}")


@pytest.fixture
def tls_hub(tmp_path: Path, database_url: str) -> Iterator[tuple[TlsHub, str]]:
    cert, key, fingerprint = self_signed(tmp_path, "first")
    env = hub_env(tmp_path, database_url, tls_certfile=str(cert), tls_keyfile=str(key))
    hub = TlsHub(env, tmp_path / "hub.log")
    hub.start()
    yield hub, fingerprint
    if hub.proc is not None:
        hub.proc.kill()
        hub.proc.wait()


def test_the_agent_pins_the_hubs_certificate_and_refuses_another(
    tls_hub: tuple[TlsHub, str], tmp_path: Path
) -> None:
    hub, fingerprint = tls_hub
    admin = {"Authorization": f"Bearer {hub.admin_token}"}
    with httpx.Client(base_url=hub.url, headers=admin, timeout=30, verify=False) as client:
        token = client.post("/api/enrollment-tokens", json={"name": "tls"}).json()["token"]
    data_dir = tmp_path / "agent"

    # A fingerprint given on the command line that is not the hub's: refused, nothing kept.
    wrong = "sha256:" + "0" * 64
    mismatch = subprocess.run(
        [str(AGENT), "join", hub.url, token, "--data-dir", str(data_dir), "--fingerprint", wrong],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert mismatch.returncode != 0
    assert fingerprint in mismatch.stderr or fingerprint.upper() in mismatch.stderr.upper()
    assert not data_dir.exists()

    joined = subprocess.run(
        [
            *(str(AGENT), "join", hub.url, token, "--data-dir", str(data_dir)),
            *("--hostname", "tls-host", "--fingerprint", fingerprint, "--no-start"),
        ],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert joined.returncode == 0, joined.stderr
    assert fingerprint in joined.stdout + joined.stderr
    identity = (data_dir / "agent.json").read_text()
    assert fingerprint in identity

    # The hub comes back with another certificate (another key): the pin refuses it.
    hub.stop()
    cert, key, other = self_signed(tmp_path, "second")
    hub.env.update(UNITY_TLS_CERTFILE=str(cert), UNITY_TLS_KEYFILE=str(key))
    hub.start()
    run = subprocess.run(
        [str(AGENT), "run", "--data-dir", str(data_dir)],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert run.returncode != 0
    assert "certificate changed" in run.stderr, run.stderr
    assert fingerprint in run.stderr
    assert other in run.stderr
    # The identity is left as it was: joining again is the owner's decision.
    assert (data_dir / "agent.json").read_text() == identity


def test_tls_settings_come_as_a_pair_of_files(tmp_path: Path) -> None:
    from pydantic import ValidationError

    from unity.settings import Settings

    cert, key, _ = self_signed(tmp_path, "pair")
    assert Settings(data_dir=tmp_path, tls_certfile=cert, tls_keyfile=key).tls_keyfile == key
    with pytest.raises(ValidationError, match="go together"):
        Settings(data_dir=tmp_path, tls_certfile=cert)
    with pytest.raises(ValidationError, match="not a readable file"):
        Settings(data_dir=tmp_path, tls_certfile=cert, tls_keyfile=tmp_path / "missing.key")
