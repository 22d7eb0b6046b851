#!/usr/bin/env python
"""Make (once) an emulated arm64 device and print the --remote-python that runs on it (issue 26).

    python scripts/arm64_device.py                  # builds into ~/.cache/mbbench/emulated, 32 s, 371 MB here
    python scripts/arm64_device.py --cache DIR

Needs Debian's qemu-user-static and debootstrap (apt-get install qemu-user-static debootstrap), the Debian
archive and PyPI. Then, with an sshd you can log into on this machine:

    mbbench bench mobileone-s0 --resolution 64 --rounds 3 --warmup 0 --target ssh://localhost/tmp/arm64-cache \\
        --remote-python PRINTED_PATH

Emulation is hundreds of times slower than a real core: the numbers say nothing about any phone; the device
path, its facts (aarch64, Neoverse-N1), the outputs and the profile are what it checks. See docs/targets.md.
"""

from __future__ import annotations

import argparse
import sys

from mbbench.remote.emulated import EmulationUnavailable, arm64_python, default_cache


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cache", default=None, help=f"where the device is kept [default: {default_cache()}]")
    parser.add_argument("--mirror", default=None, help="Debian mirror [default: the one this machine's apt uses]")
    args = parser.parse_args()
    try:
        wrapper = arm64_python(args.cache, mirror=args.mirror, note=lambda m: print(m, file=sys.stderr))
    except EmulationUnavailable as exc:
        print(f"Error: {exc}", file=sys.stderr)
        return 1
    print(wrapper)
    return 0


if __name__ == "__main__":
    sys.exit(main())
