"""``mbbench profile --target``: profile on a device over SSH, one target after the other.

The same steps as a bench fleet (:mod:`mbbench.remote.fleet`): check the device's Python, push the portable core
and the models (by sha256, skipped when already there), then run ``python -m mbbench.bench.agent`` with a job of
kind ``profile``. The device sends one profile per (model, threads) as JSON, the raw ORT trace included; this side
names the local file and the target in it.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable, Mapping, Sequence
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
    info: Callable[[str], None] | None = None,
    **options: Any,
) -> list[Profile]:
    """Profile every model on every target (``options`` are :func:`mbbench.bench.profiling.profile_models`'s:
    threads, rounds, warmup, depth, graph_opt, provider, seed, reference). A target that fails raises
    :class:`~mbbench.remote.ssh.TargetError` (one line), after the profiles of the targets before it. ``note``
    hears warnings (a refused profile), ``info`` one line of what each device is."""
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
        if info is not None:  # what the device is: a fact, not a warning
            info(describe_device(target, device.facts(core[0])))
        profiles += _profile_on(device, core[0], models, options, note, done)
    return profiles


def _profile_on(device: _Device, core_id: str, models: Sequence[ModelFile], options: dict[str, Any],
                note, done) -> list[Profile]:
    name = device.target.name
    by_sha = {m.sha256: m for m in models}
    pending = {(sha, n) for sha in by_sha for n in options["threads"]}
    out: list[Profile] = []
    error = None
    with run_agent(device, core_id, list(by_sha.values()), {"kind": "profile", "options": options}) as agent:
        for event in agent.events():
            kind = event.get("event")
            if kind == "profile":
                checked = check_profile(event, pending, by_sha)
                if isinstance(checked, str):
                    if note is not None:
                        note(f"{name}: a profile was refused: {checked}")
                    continue
                local, data = checked
                profile = Profile.from_dict({**data, "target": name, "file": local.path.as_posix()})
                pending.discard((local.sha256, profile.threads))
                out.append(profile)
                if done is not None:
                    done(profile)
            elif kind == "note" and note is not None:
                note(f"{name}: {str(event.get('message'))[:500]}")
            elif kind == "error":
                error = f"{name}: {str(event.get('message'))[:500]}"
    if error is not None:
        raise TargetError(error)
    failure = agent.failure()
    if failure is not None:
        raise TargetError(f"{failure}; {len(out)} profile(s) finished there")
    if pending:
        raise TargetError(f"{name}: the device's agent ended without {len(pending)} of the "
                          f"{len(pending) + len(out)} profiles asked for; {len(out)} finished there")
    return out


_NUMBERS = ("run_ms", "execute_ms", "plain_ms")
_NODE_TEXT = ("node", "op_type", "block", "path", "domain", "provider")
_NODE_NUMBERS = ("mean_ms", "share", "calls")
MAX_TEXT = 4096


def check_profile(event: Mapping[str, Any], pending: set, by_sha: Mapping[str, ModelFile]):
    """A device's profile event checked against what was asked and against what a profile holds:
    ``(model, data)``, or the reason it is refused (one line). The model and thread count must be ones asked and
    not yet received; times must be finite, non-negative numbers; names must be short text."""
    data = event.get("profile")
    if not isinstance(data, dict):
        return "it is not a profile"
    sha, threads = data.get("sha256"), data.get("threads")
    local = by_sha.get(sha) if isinstance(sha, str) else None
    if local is None or type(threads) is not int:
        return "it names no model and thread count that was asked for"
    if (sha, threads) not in pending:
        return f"{local.label} at {threads} threads was already received or not asked for"
    for key in ("rounds", "warmup", "depth"):
        if type(data.get(key)) is not int or data[key] < 0:
            return f"its {key} is {str(data.get(key))[:40]!r}, not a count"
    for key in _NUMBERS:
        if not _latencies(data.get(key, [])) or (key == "run_ms" and not data.get(key)):
            return f"its {key} is not a list of finite, non-negative times"
    nodes = data.get("nodes")
    if not isinstance(nodes, list):
        return "its nodes are not a list"
    for node in nodes:
        if not isinstance(node, dict):
            return "a node is not an object"
        if any(not isinstance(node.get(k, ""), str) or len(node.get(k, "")) > MAX_TEXT for k in _NODE_TEXT):
            return "a node's name, op type, block or path is not short text"
        if not _latencies([node.get(k) for k in _NODE_NUMBERS]):
            return "a node's time, share or calls is not a finite, non-negative number"
        for key in ("covers", "sources"):
            names = node.get(key, [])
            if not isinstance(names, list) or not all(isinstance(c, str) and len(c) <= MAX_TEXT for c in names):
                return f"a node's covered {'ops' if key == 'covers' else 'nodes'} are not a list of names"
    for key, value in data.items():
        if isinstance(value, str) and key != "trace" and len(value) > MAX_TEXT:
            return f"its {key} is not a value mbbench writes"
    try:
        profile = Profile.from_dict(data)
        profile.by_block(), profile.by_op(), profile.end_to_end_ms
    except (TypeError, ValueError, KeyError, AttributeError) as exc:
        return f"it is not a profile mbbench makes ({type(exc).__name__})"
    return local, data


def _latencies(values: Any) -> bool:
    return isinstance(values, list) and all(
        not isinstance(v, bool) and isinstance(v, (int, float)) and math.isfinite(v) and v >= 0 for v in values)
