"""``mbbench profile --target``: profile on a device over SSH, one target after the other.

The same steps as a bench fleet (:mod:`mbbench.remote.fleet`): check the device's Python, push the portable core
and the models (by sha256, skipped when already there), then run ``python -m mbbench.bench.agent`` with a job of
kind ``profile``. The device sends one profile per (model, threads) as JSON, the raw ORT trace included; this side
names the local file and the target in it.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from typing import Any

from mbbench.bench.modelfile import ModelFile
from mbbench.bench.profiling import Profile
from mbbench.errors import UserInputError
from mbbench.remote.fleet import RemoteSettings, _Device, describe_device, portable_core, run_agent
from mbbench.remote.ssh import Target, TargetError, parse_target


def profile_targets(
    models: Sequence[ModelFile],
    targets: Iterable[str | Target],
    *,
    settings: RemoteSettings = RemoteSettings(),
    note: Callable[[str], None] | None = None,
    done: Callable[[Profile], None] | None = None,
    **options: Any,
) -> list[Profile]:
    """Profile every model on every target (``options`` are :func:`mbbench.bench.profiling.profile_models`'s:
    threads, rounds, warmup, depth, graph_opt, provider, seed, reference). A target that fails raises
    :class:`~mbbench.remote.ssh.TargetError` (one line), after the profiles of the targets before it."""
    from mbbench.bench.profiling import profile_options

    # check every option here, before any connection (the device would only find out after the push)
    config, _depth = profile_options(**options)
    options = {**options, "threads": list(config.threads)}
    parsed = [t if isinstance(t, Target) else parse_target(t) for t in targets]
    if len({t.name for t in parsed}) != len(parsed):
        raise UserInputError("the same --target is given twice; each device is profiled once per run")
    if not models:
        raise UserInputError("no models to profile")
    core = portable_core()
    profiles: list[Profile] = []
    for target in parsed:
        device = _Device(target, settings)
        device.check()
        device.push(core, models)
        if note is not None:
            note(describe_device(target, device.facts(core[0])))
        profiles += _profile_on(device, core[0], models, options, note, done)
    return profiles


def _profile_on(device: _Device, core_id: str, models: Sequence[ModelFile], options: dict[str, Any],
                note, done) -> list[Profile]:
    name = device.target.name
    by_sha = {m.sha256: m for m in models}
    out: list[Profile] = []
    error = None
    with run_agent(device, core_id, list(by_sha.values()), {"kind": "profile", "options": options}) as agent:
        for event in agent.events():
            kind = event.get("event")
            if kind == "profile":
                data = event["profile"]
                local = by_sha.get(data.get("sha256"))
                profile = Profile.from_dict({**data, "target": name,
                                             "file": local.path.as_posix() if local else data.get("file")})
                out.append(profile)
                if done is not None:
                    done(profile)
            elif kind == "note" and note is not None:
                note(f"{name}: {event.get('message')}")
            elif kind == "error":
                error = f"{name}: {event.get('message')}"
    if error is not None:
        raise TargetError(error)
    failure = agent.failure()
    if failure is not None:
        raise TargetError(f"{failure}; {len(out)} profile(s) finished there")
    return out
