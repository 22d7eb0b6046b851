"""An emulated arm64 device: try ``--target`` where phones live without owning one.

Phones and boards are arm64. This builds, once, an arm64 Debian userland with Python, the aarch64 onnxruntime
and numpy wheels from PyPI, and a wrapper script that runs that Python under ``qemu-aarch64-static`` (user-mode
emulation: no binfmt_misc, no chroot, no root needed once the two Debian packages are installed). Give the
wrapper to ``--remote-python`` with a loopback SSH target and the whole device path runs on aarch64: the pushed
core, the isolated worker, the device facts, the profile.

How it is made (each step a fact found on this kind of machine):

- ``debootstrap --foreign --arch=arm64 --variant=minbase --include=python3,...``: the first stage only (the
  second would need binfmt_misc), then every downloaded package unpacked with ``dpkg-deb -x`` (Python needs no
  maintainer scripts). The mirror is the one this machine's apt uses.
- The aarch64 wheels of this machine's own onnxruntime and numpy versions, installed by this machine's pip with
  ``--platform`` into a folder of their own (nothing runs under emulation to install them).
- ``qemu-aarch64-static -L ROOT -0 WRAPPER``: ``-L`` lets host paths through (the device cache, the pushed core),
  ``-0`` makes ``sys.executable`` the wrapper, so the isolated worker re-enters qemu (without it: "Exec format
  error").
- qemu shows the host's x86 ``/proc/cpuinfo``, on which onnxruntime's CPU detection segfaults: an aarch64 one
  (Neoverse-N1) is placed at ``ROOT/proc/cpuinfo``, which ``-L`` serves instead.

What emulation cannot tell: speed (it is hundreds of times slower than the real core, and the numbers say
nothing about any phone), real thermal and frequency facts (there are no cpufreq or thermal files), nor a
device's own onnxruntime build. It does tell whether the device path, the facts, the outputs and the profile
are right on arm64.
"""

from __future__ import annotations

import hashlib
import os
import re
import shutil
import subprocess
import sys
from collections.abc import Callable
from importlib.metadata import version
from pathlib import Path

from mbbench._io import atomic_write_text
from mbbench.errors import MbbenchError

#: Debian release of the userland (its Python must have onnxruntime and numpy wheels on PyPI)
SUITE = "bookworm"
PYTHON = "python3.11"
PACKAGES = ("python3", "libpython3.11")
WHEELS = ("onnxruntime", "numpy")
#: platform tags of the aarch64 wheels, newest first
PLATFORMS = ("manylinux_2_28_aarch64", "manylinux_2_27_aarch64", "manylinux_2_17_aarch64", "manylinux2014_aarch64")
DEFAULT_MIRROR = "http://deb.debian.org/debian"
#: an aarch64 Neoverse-N1 /proc/cpuinfo block (implementer 0x41, part 0xd0c), one per emulated core
CPUINFO_BLOCK = ("processor\t: {index}\nBogoMIPS\t: 50.00\nFeatures\t: fp asimd evtstrm aes pmull sha1 sha2 crc32 "
                 "atomics fphp asimdhp cpuid asimdrdm lrcpc dcpop asimddp ssbs\nCPU implementer\t: 0x41\n"
                 "CPU architecture: 8\nCPU variant\t: 0x3\nCPU part\t: 0xd0c\nCPU revision\t: 1\n\n")
CORES = 2
WRAPPER = """#!/bin/sh
# An aarch64 Python under qemu user-mode emulation (made by mbbench.remote.emulated).
PYTHONPATH="${{PYTHONPATH:+$PYTHONPATH:}}{site}" exec {qemu} -L {root} -0 {wrapper} {root}/usr/bin/{python} "$@"
"""


class EmulationUnavailable(MbbenchError):
    """The emulated device cannot be made here (a tool is missing, the archive or PyPI cannot be reached)."""


def default_cache() -> Path:
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return Path(base) / "mbbench" / "emulated"


def recipe() -> str:
    """What defines the device: a change to any of it makes a new one (the folder's name holds its digest)."""
    parts = [SUITE, PYTHON, *PACKAGES, *(f"{w}=={version(w)}" for w in WHEELS), CPUINFO_BLOCK, str(CORES), WRAPPER]
    return hashlib.sha256("\n".join(parts).encode()).hexdigest()[:12]


def arm64_python(cache: str | os.PathLike | None = None, *, mirror: str | None = None,
                 note: Callable[[str], None] | None = None) -> Path:
    """The wrapper that runs the emulated arm64 Python (made once into ``cache``, then reused).

    Raises :class:`EmulationUnavailable` (one line, with what to install or why) when it cannot be made."""
    folder = Path(cache) if cache is not None else default_cache()
    device = folder / f"arm64-{SUITE}-{recipe()}"
    wrapper = device / "python"
    if (device / "READY").is_file() and wrapper.is_file():
        return wrapper
    qemu, debootstrap, dpkg_deb = (_tool(name) for name in ("qemu-aarch64-static", "debootstrap", "dpkg-deb"))
    say = note or (lambda message: None)
    folder.mkdir(parents=True, exist_ok=True)
    building = folder / f".building-{os.getpid()}"
    shutil.rmtree(building, ignore_errors=True)
    try:
        root, site = building / "root", building / "site"
        mirror = mirror or apt_mirror()
        say(f"debootstrap (first stage) of Debian {SUITE} arm64 from {mirror}")
        _run([debootstrap, "--arch=arm64", "--variant=minbase", "--foreign", f"--include={','.join(PACKAGES)}",
              SUITE, str(root), mirror], "debootstrap could not fetch the arm64 userland", timeout=900)
        debs = sorted((root / "var" / "cache" / "apt" / "archives").glob("*.deb"))
        say(f"unpacking {len(debs)} packages")
        for deb in debs:
            _run([dpkg_deb, "-x", str(deb), str(root)], f"dpkg-deb could not unpack {deb.name}")
            deb.unlink()
        (root / "proc").mkdir(exist_ok=True)
        (root / "proc" / "cpuinfo").write_text("".join(CPUINFO_BLOCK.format(index=i) for i in range(CORES)))
        pins = [f"{w}=={version(w)}" for w in WHEELS]
        say(f"aarch64 wheels: {', '.join(pins)}")
        _run([sys.executable, "-m", "pip", "install", "--quiet", "--disable-pip-version-check", "--no-compile",
              "--only-binary=:all:", "--implementation", "cp", "--python-version", PYTHON.removeprefix("python"),
              *(f"--platform={p}" for p in PLATFORMS), "--target", str(site), *pins],
             "pip could not fetch the aarch64 wheels", timeout=900)
        shutil.rmtree(device, ignore_errors=True)
        os.replace(building, device)
    except BaseException:
        shutil.rmtree(building, ignore_errors=True)
        raise
    atomic_write_text(wrapper, WRAPPER.format(qemu=qemu, root=device / "root", site=device / "site",
                                              wrapper=wrapper, python=PYTHON))
    wrapper.chmod(0o755)
    check = subprocess.run([str(wrapper), "-c", "import platform, onnxruntime, numpy; print(platform.machine())"],
                           capture_output=True, text=True, timeout=300)
    if check.stdout.strip() != "aarch64":
        raise EmulationUnavailable(f"the emulated Python does not import onnxruntime: "
                                   f"{(check.stderr.strip().splitlines() or ['no message'])[-1][:200]}")
    (device / "READY").write_text(recipe() + "\n")
    return wrapper


def apt_mirror() -> str:
    """The Debian mirror this machine's apt uses (deb822 ``URIs:`` or a ``deb`` line), else deb.debian.org."""
    for path in [Path("/etc/apt/sources.list"), *sorted(Path("/etc/apt/sources.list.d").glob("*"))]:
        try:
            text = path.read_text()
        except OSError:
            continue
        for match in re.finditer(r"^(?:URIs:\s*|deb\s+(?:\[[^\]]*\]\s*)?)(\S+)", text, re.MULTILINE):
            uri = match[1]
            if uri.startswith(("http://", "https://")) and "security" not in uri and uri.rstrip("/").endswith("debian"):
                return uri
    return DEFAULT_MIRROR


def _tool(name: str) -> str:
    found = shutil.which(name) or next((f"{d}/{name}" for d in ("/usr/sbin", "/usr/bin", "/sbin")
                                        if os.access(f"{d}/{name}", os.X_OK)), None)
    if found is None:
        raise EmulationUnavailable(f"{name} is not installed; install Debian's qemu-user-static and debootstrap "
                                   "(apt-get install qemu-user-static debootstrap)")
    return found


def _run(command: list[str], what: str, timeout: float = 300) -> None:
    try:
        proc = subprocess.run(command, capture_output=True, text=True, timeout=timeout)
    except subprocess.TimeoutExpired:
        raise EmulationUnavailable(f"{what}: no answer in {timeout:g} s") from None
    if proc.returncode != 0:
        lines = [line for line in (proc.stderr + proc.stdout).splitlines() if line.strip()]
        raise EmulationUnavailable(f"{what}: {lines[-1][:200] if lines else f'exit status {proc.returncode}'}")
