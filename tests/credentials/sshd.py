"""A real OpenSSH server on loopback for the SSH tests.

It runs ``/usr/sbin/sshd -D -e`` with its own config, port and host key in a
temporary directory, and lets in one dedicated account (``unity-ssh-test``,
created if missing) by password or by the client key written to its
``authorized_keys`` (which lives in the temporary directory too).
"""

from __future__ import annotations

import os
import pwd
import secrets
import shutil
import socket
import subprocess
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

import asyncssh

SSHD = Path("/usr/sbin/sshd")
TEST_USER = "unity-ssh-test"


def unavailable_reason() -> str | None:
    """Why a real sshd cannot run here (None when it can); installs it under CI."""
    if os.geteuid() != 0:
        return "the sshd tests need root (to run sshd and create the test account)"
    if not SSHD.exists() and os.environ.get("CI"):
        subprocess.run(["apt-get", "update", "-qq"], check=False)
        subprocess.run(["apt-get", "install", "-y", "-qq", "openssh-server"], check=False)
    if not SSHD.exists():
        return "openssh-server is not installed (apt-get install openssh-server; scripts/test does)"
    if shutil.which("ssh-keygen") is None:
        return "ssh-keygen is missing"
    return None


def ensure_account() -> tuple[str, str]:
    """The test account and a fresh random password for it."""
    try:
        pwd.getpwnam(TEST_USER)
    except KeyError:
        subprocess.run(["useradd", "-m", "-s", "/bin/sh", TEST_USER], check=True)
    password = "pw-" + secrets.token_urlsafe(18)
    subprocess.run(["chpasswd"], input=f"{TEST_USER}:{password}\n", text=True, check=True)
    Path("/run/sshd").mkdir(mode=0o755, exist_ok=True)
    return TEST_USER, password


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


@dataclass
class SSHServer:
    """One sshd process; ``restart(new_host_key=True)`` re-keys it on the same port."""

    directory: Path
    user: str
    password: str
    client_key: asyncssh.SSHKey
    port: int = field(default_factory=free_port)
    process: subprocess.Popen[bytes] | None = None

    host = "127.0.0.1"

    @property
    def authorized_keys(self) -> Path:
        return self.directory / "keys" / "authorized_keys"

    @property
    def host_key_path(self) -> Path:
        return self.directory / "host_ed25519_key"

    def host_fingerprint(self) -> str:
        key = asyncssh.read_public_key(str(self.host_key_path) + ".pub")
        return key.get_fingerprint("sha256")

    def client_private_key(self) -> str:
        return self.client_key.export_private_key("openssh").decode()

    def client_public_key(self) -> str:
        return self.client_key.export_public_key("openssh").decode().strip()

    def _write_host_key(self) -> None:
        for path in (self.host_key_path, Path(str(self.host_key_path) + ".pub")):
            path.unlink(missing_ok=True)
        subprocess.run(
            ["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(self.host_key_path)],
            check=True,
        )

    def setup(self) -> None:
        self.directory.chmod(0o755)
        keys = self.directory / "keys"
        keys.mkdir(mode=0o700)
        account = pwd.getpwnam(self.user)
        os.chown(keys, account.pw_uid, account.pw_gid)
        self.authorized_keys.write_text(self.client_public_key() + "\n")
        os.chown(self.authorized_keys, account.pw_uid, account.pw_gid)
        self.authorized_keys.chmod(0o600)
        self._write_host_key()
        config = self.directory / "sshd_config"
        config.write_text(
            "\n".join(
                [
                    f"Port {self.port}",
                    f"ListenAddress {self.host}",
                    f"HostKey {self.host_key_path}",
                    f"PidFile {self.directory / 'sshd.pid'}",
                    f"AuthorizedKeysFile {self.authorized_keys}",
                    "PasswordAuthentication yes",
                    "KbdInteractiveAuthentication no",
                    "PubkeyAuthentication yes",
                    "UsePAM yes",
                    "PermitRootLogin no",
                    "StrictModes no",
                    f"AllowUsers {self.user}",
                    "Subsystem sftp internal-sftp",
                    "MaxStartups 100",
                    "LogLevel VERBOSE",
                    "",
                ]
            )
        )
        check = subprocess.run(
            [str(SSHD), "-t", "-f", str(config)], capture_output=True, text=True, check=False
        )
        if check.returncode != 0:
            raise RuntimeError(f"sshd rejects the test config: {check.stderr}")

    def start(self) -> None:
        log = (self.directory / "sshd.log").open("ab")
        self.process = subprocess.Popen(
            [str(SSHD), "-D", "-e", "-f", str(self.directory / "sshd_config")],
            stdout=log,
            stderr=log,
        )
        log.close()
        deadline = time.monotonic() + 15
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"sshd exited: {(self.directory / 'sshd.log').read_text()}")
            try:
                with socket.create_connection((self.host, self.port), timeout=1) as sock:
                    if sock.recv(64).startswith(b"SSH-2.0-"):
                        return
            except OSError:
                time.sleep(0.05)
        raise RuntimeError("sshd did not start listening")

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(10)
        self.process = None

    def restart(self, *, new_host_key: bool = False) -> None:
        self.stop()
        if new_host_key:
            self._write_host_key()
        self.start()


def start_server(user: str, password: str) -> SSHServer:
    directory = Path(tempfile.mkdtemp(prefix="unity-sshd-"))
    server = SSHServer(
        directory, user, password, asyncssh.generate_private_key("ssh-ed25519", comment="fixture")
    )
    try:
        server.setup()
        server.start()
    except BaseException:
        server.stop()
        shutil.rmtree(directory, ignore_errors=True)
        raise
    return server


def stop_server(server: SSHServer) -> None:
    server.stop()
    shutil.rmtree(server.directory, ignore_errors=True)
