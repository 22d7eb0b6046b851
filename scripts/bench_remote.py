"""Does measuring through ``--target`` change the number? Local vs the same machine over SSH, interleaved.

This is a benchmark, not a test. It starts a private OpenSSH server on 127.0.0.1 (the one the tests use, with
generated keys; or give ``--target`` and ``--ssh-config`` for a real device), exports MobileOne-S0 (or takes
``--model``), and then, ``--repeats`` times in alternation, measures it locally (``run_sweep``, isolated worker, as
``mbbench bench``) and through ``bench_targets`` on the loopback target, with the same configuration. On loopback
the device is this machine, so the p50 ratio remote / local must sit within 0.97-1.03: whatever the transport costs
(SSH, JSON lines, the CSV append) happens between configurations, outside the timed region.

It also records the push: the first run to a fresh cache folder pushes the core and the model; the second run
must push 0 bytes of models. Last, unless ``--no-fleet``, a two-device fleet (two aliases of the loopback server,
each with its own cache folder) is measured into one CSV and ``mbbench report`` of it is written next to the JSON
(``remote-fleet-<time>.md``): the README's fleet example.

Usage::

    python scripts/bench_remote.py --conditions "quiet machine"
    python scripts/bench_remote.py --model models/mobileone-s0-224-opset17.onnx --repeats 8 --rounds 50
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(Path(__file__).resolve().parent))
from _record import Record  # noqa: E402

LOW, HIGH = 0.97, 1.03


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", type=Path, help="an .onnx file (default: export mobileone-s0 to a temp folder)")
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--rounds", type=int, default=30)
    parser.add_argument("--repeats", type=int, default=6, help="local/remote pairs, interleaved")
    parser.add_argument("--target", help="a real ssh:// target instead of the private loopback server")
    parser.add_argument("--ssh-config", type=Path)
    parser.add_argument("--remote-python", default=None)
    parser.add_argument("--conditions", default="")
    parser.add_argument("--output-dir", type=Path)
    parser.add_argument("--no-fleet", action="store_true", help="skip the two-device fleet report")
    args = parser.parse_args()

    from mbbench.bench.modelfile import inspect_model
    from mbbench.bench.options import BenchConfig
    from mbbench.bench.runner import run_sweep
    from mbbench.remote import RemoteSettings, bench_targets

    work = Path(tempfile.mkdtemp(prefix="mbbench-remote-"))
    server = None
    if args.target:
        target, settings = args.target, RemoteSettings(ssh_config=args.ssh_config,
                                                       remote_python=args.remote_python or "python3")
    else:
        from tests.remote.conftest import start_sshd

        server = start_sshd(work / "sshd")
        target = server.target("dev-a", work / "device-cache")
        settings = RemoteSettings(ssh_config=server.config, remote_python=args.remote_python or sys.executable)
    record = Record("remote-loopback" if server else "remote-target", args.output_dir)
    try:
        if args.model:
            model_path = args.model
        else:
            from mbbench.export import export_onnx

            model_path = export_onnx("mobileone-s0", output_dir=work / "models").path
        model = inspect_model(model_path)
        config = BenchConfig(threads=(args.threads,), rounds=args.rounds, warmup=5)

        first = bench_targets([model], config, [target], output=work / "push1.csv", settings=settings)
        second = bench_targets([model], config, [target], output=work / "push2.csv", settings=settings)
        if first.target_failures or second.target_failures:
            print((first.target_failures or second.target_failures)[0].message, file=sys.stderr)
            return 1
        pushed_first = first.pushed_model_bytes[target]
        pushed_second = second.pushed_model_bytes[target]

        local, remote = [], []
        for i in range(args.repeats):
            order = ("local", "remote") if i % 2 == 0 else ("remote", "local")
            for side in order:
                if side == "local":
                    result = run_sweep([model], config)
                    local.append(float(result.rows[0]["p50_ms"]))
                else:
                    result = bench_targets([model], config, [target], output=work / f"r{i}.csv", settings=settings)
                    remote.append(float(result.rows[0]["p50_ms"]))
            print(f"pair {i + 1}: local p50 {local[-1]:.3f} ms, remote p50 {remote[-1]:.3f} ms, "
                  f"ratio {remote[-1] / local[-1]:.3f}")
        ratios = [r / lo for r, lo in zip(remote, local)]
        median = statistics.median(ratios)
        verdict = "within" if LOW <= median <= HIGH else "OUTSIDE"
        print(f"remote/local p50 ratio: median {median:.3f} (range {min(ratios):.3f}-{max(ratios):.3f}), "
              f"{verdict} {LOW}-{HIGH}")
        print(f"models pushed: first run {pushed_first} bytes, second run {pushed_second} bytes")
        fleet = None
        if server is not None and not args.no_fleet:
            fleet = fleet_report(server, work, model, settings, record)
        record.save({
            "model": model.path.name,
            "threads": args.threads,
            "rounds": args.rounds,
            "repeats": args.repeats,
            "local_p50_ms": local,
            "remote_p50_ms": remote,
            "ratio_median": round(median, 4),
            "ratio_min": round(min(ratios), 4),
            "ratio_max": round(max(ratios), 4),
            "within_0.97_1.03": LOW <= median <= HIGH,
            "pushed_model_bytes_first_run": pushed_first,
            "pushed_model_bytes_second_run": pushed_second,
            "fleet_report": fleet,
        }, args.conditions)
        return 0
    finally:
        if server is not None:
            server.process.terminate()
            server.process.wait(10)


def fleet_report(server, work: Path, model, settings, record) -> str:
    """Two loopback "devices" (dev-a, dev-b), threads 1 and 2, into one CSV; its report as markdown, saved."""
    from mbbench._io import atomic_write_text
    from mbbench.bench.options import BenchConfig
    from mbbench.remote import bench_targets
    from mbbench.report import load, render

    targets = [server.target("dev-a", work / "cache-a"), server.target("dev-b", work / "cache-b")]
    csv = work / "fleet.csv"
    result = bench_targets([model], BenchConfig(threads=(1, 2), rounds=30, warmup=5), targets, output=csv,
                           settings=settings)
    if result.target_failures:
        raise SystemExit(result.target_failures[0].message)
    text = render(load([csv]), "markdown")
    record.output_dir.mkdir(parents=True, exist_ok=True)
    path = record.output_dir / f"remote-fleet-{record.started.strftime('%Y%m%d-%H%M%S')}.md"
    atomic_write_text(path, text)
    print(text)
    print(f"fleet report: {path}")
    return path.name


if __name__ == "__main__":
    sys.exit(main())
