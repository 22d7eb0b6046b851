"""Reaching a device the way the user's own ``ssh`` does: OpenSSH's client, their config, their keys.

Everything goes through the ``ssh`` binary, so host aliases, ``IdentityFile``, ``ProxyJump``, agents and known_hosts
work exactly as on the user's command line (``--ssh-config`` is ``ssh -F``). Three options are always forced:
``BatchMode=yes`` (never a password or passphrase prompt), ``StrictHostKeyChecking=yes`` (an unknown or changed host
key is refused, never accepted silently) and a ``ConnectTimeout``. Keep-alives detect a connection that died.

Every remote command is a string for the remote shell built with :func:`shlex.quote` for each word that comes from
data (paths, names): a file name is data, never shell.
"""

from __future__ import annotations

import re
import shlex
import signal
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import unquote, urlsplit

from mbbench.errors import MbbenchError, UserInputError

DEFAULT_CACHE = "~/.cache/mbbench"
DEFAULT_CONNECT_TIMEOUT = 10


class TargetError(MbbenchError):
    """A target cannot be reached or used; the message names the target and what to do."""


@dataclass(frozen=True)
class Target:
    """``ssh://[user@]host[:port][/workdir]``; ``workdir`` is the device's cache folder."""

    url: str
    host: str
    user: str | None = None
    port: int | None = None
    workdir: str = DEFAULT_CACHE

    @property
    def name(self) -> str:
        """The URL as given, without any secret (the ``target`` column)."""
        return self.url

    def remote_path(self, *parts: str) -> str:
        """A path under the workdir, quoted for the remote shell (``~/`` expands to the remote ``$HOME``)."""
        return quote_home("/".join([self.workdir.rstrip("/"), *parts]) if parts else self.workdir)


#: signals a process dies of by itself: a crash
CRASH_SIGNALS = frozenset({signal.SIGILL, signal.SIGTRAP, signal.SIGABRT, signal.SIGBUS, signal.SIGFPE,
                           signal.SIGSEGV, signal.SIGSYS})
#: signals another process sends to end one (a hang-up, the OOM killer's SIGKILL, a closed pipe, a stop)
ENDING_SIGNALS = frozenset({signal.SIGHUP, signal.SIGKILL, signal.SIGPIPE, signal.SIGTERM})


def _signal_name(number: int) -> str:
    try:
        return f"signal {number}, {signal.Signals(number).name}"
    except ValueError:
        return f"signal {number}"


def quote_home(word: str) -> str:
    """``word`` quoted for the remote shell, except that a leading ``~/`` still means the remote ``$HOME``."""
    if word == "~" or word.startswith("~/"):
        rest = word[2:]
        return '"$HOME"' + (f"/{shlex.quote(rest)}" if rest else "")
    return shlex.quote(word)


#: a DNS name is at most 253 characters; a URL far longer than any real one is refused before it is parsed
MAX_HOST_LENGTH = 253
MAX_TARGET_LENGTH = 4096
_HOST = re.compile(r"^[A-Za-z0-9._:%-]+$")


def parse_target(url: str) -> Target:
    """Parse and check a ``--target`` URL (one clear error for anything else)."""
    if not isinstance(url, str) or not url.startswith("ssh://"):
        raise UserInputError(
            f"--target {url!r} is not an ssh:// URL; write it as ssh://[user@]host[:port][/workdir]"
        )
    if len(url) > MAX_TARGET_LENGTH:
        raise UserInputError(
            f"--target {url[:40]!r}... is {len(url):,} characters long; a target URL is at most "
            f"{MAX_TARGET_LENGTH:,} (its host at most {MAX_HOST_LENGTH}): check what was pasted"
        )
    try:
        parts = urlsplit(url)
    except ValueError as error:  # e.g. an unclosed [ of an IPv6 address
        raise UserInputError(
            f"--target {url!r} is not a valid URL ({error}); write it as ssh://[user@]host[:port][/workdir], "
            "an IPv6 address in brackets: ssh://[::1]:2222"
        ) from None
    if parts.password is not None:
        raise UserInputError(
            f"--target {parts.username}@{parts.hostname}: passwords are not accepted (mbbench never prompts and never "
            "stores one); set up a key with ssh-copy-id and give the URL without the password"
        )
    host = parts.hostname
    if host and len(host) > MAX_HOST_LENGTH:
        raise UserInputError(
            f"--target {host[:40]}...: the host is {len(host):,} characters long, and a host name is at most "
            f"{MAX_HOST_LENGTH}"
        )
    if not host or host.startswith("-") or not _HOST.match(host):
        raise UserInputError(f"--target {url!r} has no valid host; write it as ssh://[user@]host[:port][/workdir]")
    try:
        port = parts.port
    except ValueError:
        raise UserInputError(f"--target {url!r}: the port must be a number from 1 to 65535") from None
    if parts.query or parts.fragment:
        raise UserInputError(f"--target {url!r}: a target URL takes no ?query or #fragment")
    user = unquote(parts.username) if parts.username else None
    if user is not None and not re.match(r"^[A-Za-z0-9._][A-Za-z0-9._-]*$", user):
        raise UserInputError(f"--target {url!r}: {user!r} is not a user name ssh accepts")
    path = unquote(parts.path)
    if path in ("", "/"):
        workdir = DEFAULT_CACHE
    elif path.startswith("/~"):
        workdir = path[1:]  # ssh://host/~/bench: relative to the remote home, as git's ssh URLs
    else:
        workdir = path
    if "\n" in workdir or "\x00" in workdir:
        raise UserInputError(f"--target {url!r}: the folder holds a control character")
    return Target(url=url, host=host, user=user, port=port, workdir=workdir)


def ssh_binary() -> str:
    found = shutil.which("ssh")
    if not found:
        raise UserInputError("--target needs OpenSSH's ssh client on this machine; install openssh-client")
    return found


@dataclass
class SshTransport:
    """One target's SSH connection settings; each call is one ``ssh`` process."""

    target: Target
    ssh_config: Path | None = None
    connect_timeout: int = DEFAULT_CONNECT_TIMEOUT

    def argv(self, command: str) -> list[str]:
        argv = [ssh_binary()]
        if self.ssh_config is not None:
            argv += ["-F", str(self.ssh_config)]
        argv += [
            "-o", "BatchMode=yes",
            "-o", "StrictHostKeyChecking=yes",
            "-o", f"ConnectTimeout={self.connect_timeout}",
            "-o", "ServerAliveInterval=15",
            "-o", "ServerAliveCountMax=4",
            "-o", "LogLevel=ERROR",
        ]
        if self.target.port is not None:
            argv += ["-p", str(self.target.port)]
        if self.target.user is not None:
            argv += ["-l", self.target.user]
        # "--" ends ssh's options: a host named "-oProxyCommand=..." stays a host name
        return argv + ["--", self.target.host, command]

    def run(self, command: str, stdin: bytes | None = None, timeout: float | None = None) -> bytes:
        """Run ``command`` remotely and return its standard output; a failure is a :class:`TargetError`."""
        try:
            proc = subprocess.run(self.argv(command), input=stdin if stdin is not None else b"",
                                  capture_output=True, timeout=timeout)
        except subprocess.TimeoutExpired:
            raise TargetError(f"{self.target.name}: no answer within {timeout:g} s") from None
        if proc.returncode != 0:
            raise TargetError(self.explain(proc.returncode, proc.stderr.decode(errors="replace")))
        return proc.stdout

    def popen(self, command: str) -> subprocess.Popen:
        return subprocess.Popen(self.argv(command), stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                stderr=subprocess.PIPE)

    def explain(self, status: int, stderr: str) -> str:
        """One line for a failed ``ssh`` call, in the user's words, with what to do."""
        name = self.target.name
        text = " ".join(stderr.split())
        host = self.target.host
        if "Host key verification failed" in text or "REMOTE HOST IDENTIFICATION HAS CHANGED" in text or (
                "host key" in text.lower() and "known" in text.lower()):
            changed = "has changed" if "CHANGED" in text else "is not known"
            login = f"ssh -F {shlex.quote(str(self.ssh_config))} {host}" if self.ssh_config else f"ssh {host}"
            return (f"{name}: the host key of {host} {changed}; check it and trust it by running '{login}' once "
                    "yourself (mbbench never accepts a host key on its own)")
        if "Permission denied" in text:
            return (f"{name}: the server refused every key (no password is ever tried); add your public key to the "
                    "device's ~/.ssh/authorized_keys (ssh-copy-id) or name one with IdentityFile in the ssh config")
        for marker, what in (
            ("Could not resolve hostname", "the host name does not resolve"),
            ("Connection refused", "the connection was refused (is sshd running, on that port?)"),
            ("timed out", "the connection timed out"),
            ("No route to host", "there is no route to the host"),
            ("Network is unreachable", "the network is unreachable"),
            ("Connection closed", "the connection was closed"),
            ("Broken pipe", "the connection broke"),
        ):
            if marker in text:
                return f"{name}: cannot reach {host}: {what}"
        if status - 128 in CRASH_SIGNALS:
            return (f"{name}: the device's Python crashed ({_signal_name(status - 128)}): a native library (the "
                    "runtime, numpy) that does not run on that CPU or OS; try 'python -c \"import onnxruntime\"' "
                    f"there and reinstall what crashes{f' ({text[-160:]})' if text else ''}")
        if status - 128 in ENDING_SIGNALS:
            why = " (out of memory? the kernel's OOM killer sends it)" if status - 128 == signal.SIGKILL else ""
            return f"{name}: the device's Python was ended by {_signal_name(status - 128)}{why}"
        if status == 255:
            return f"{name}: ssh failed: {text[:200] or 'no message'}"
        return f"{name}: the remote command failed (exit status {status}): {text[-300:] or 'no message'}"
