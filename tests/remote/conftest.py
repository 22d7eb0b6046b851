"""A real OpenSSH server on 127.0.0.1 for the remote-target tests (never a mock of the transport).

The session-scoped ``sshd`` fixture generates a host key and a client key, writes an ``ssh_config`` with two
aliases for the same server (a fleet of two "devices") and one whose known_hosts is empty (an unknown host key),
and starts ``sshd -D`` on a free port. The remote Python is this interpreter, so onnxruntime and numpy are there.
Skips with the reason when OpenSSH's server is not installed (``.ci/run`` installs it).
"""

from __future__ import annotations

import getpass
import os
import shutil
import socket
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import pytest

SSHD = shutil.which("sshd") or next((p for p in ("/usr/sbin/sshd", "/usr/local/sbin/sshd") if os.path.exists(p)), None)


@dataclass
class SshServer:
    port: int
    config: Path          # ssh_config with the aliases below
    root: Path            # everything the server and the client use
    process: subprocess.Popen
    aliases: tuple[str, ...] = ("dev-a", "dev-b")
    unknown_alias: str = "dev-unknown"
    python: str = sys.executable

    def target(self, alias: str, workdir: Path | str | None = None) -> str:
        return f"ssh://{alias}{workdir if workdir else ''}"

    def ssh(self, alias: str, command: str) -> subprocess.CompletedProcess:
        return subprocess.run(["ssh", "-F", str(self.config), alias, command], capture_output=True, text=True,
                              timeout=30)


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _wait_for_port(port: int, process: subprocess.Popen, timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"sshd exited with status {process.returncode}: {process.stderr.read()}")
        with socket.socket() as sock:
            if sock.connect_ex(("127.0.0.1", port)) == 0:
                return
        time.sleep(0.05)
    raise RuntimeError("sshd did not start listening in time")


def start_sshd(root: Path) -> SshServer:
    root.mkdir(parents=True, exist_ok=True)
    for key in ("host_key", "client_key"):
        subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(root / key)], check=True)
    (root / "authorized_keys").write_text((root / "client_key.pub").read_text())
    os.chmod(root / "authorized_keys", 0o600)
    port = _free_port()
    sshd_config = root / "sshd_config"
    sshd_config.write_text("\n".join([
        f"Port {port}",
        "ListenAddress 127.0.0.1",
        f"HostKey {root / 'host_key'}",
        f"PidFile {root / 'sshd.pid'}",
        f"AuthorizedKeysFile {root / 'authorized_keys'}",
        "PasswordAuthentication no",
        "KbdInteractiveAuthentication no",
        "PubkeyAuthentication yes",
        "PermitRootLogin prohibit-password",
        "StrictModes no",
        "UsePAM no",
        "LogLevel ERROR",
        # the environment a phone's sshd gives: the login shell's, not the test's
        "PermitUserEnvironment no",
        "",
    ]))
    host_public = (root / "host_key.pub").read_text().split()
    (root / "known_hosts").write_text(f"[127.0.0.1]:{port} {host_public[0]} {host_public[1]}\n")
    (root / "known_hosts_empty").write_text("")
    user = getpass.getuser()

    def host_block(alias: str, known_hosts: Path) -> str:
        return "\n".join([
            f"Host {alias}",
            "  HostName 127.0.0.1",
            f"  Port {port}",
            f"  User {user}",
            f"  IdentityFile {root / 'client_key'}",
            "  IdentitiesOnly yes",
            f"  UserKnownHostsFile {known_hosts}",
            "  StrictHostKeyChecking yes",
            "",
        ])

    config = root / "ssh_config"
    config.write_text(
        host_block("dev-a", root / "known_hosts") + host_block("dev-b", root / "known_hosts")
        + host_block("dev-unknown", root / "known_hosts_empty")
    )
    Path("/run/sshd").mkdir(parents=True, exist_ok=True)  # sshd's privilege-separation directory
    process = subprocess.Popen([SSHD, "-D", "-e", "-f", str(sshd_config)], stderr=subprocess.PIPE, text=True)
    _wait_for_port(port, process)
    return SshServer(port=port, config=config, root=root, process=process)


@pytest.fixture(scope="session")
def sshd(tmp_path_factory):
    if SSHD is None:
        pytest.skip("OpenSSH's sshd is not installed (apt-get install openssh-server; .ci/run does this)")
    server = start_sshd(tmp_path_factory.mktemp("sshd"))
    yield server
    server.process.terminate()
    try:
        server.process.wait(timeout=10)
    except subprocess.TimeoutExpired:
        server.process.kill()
