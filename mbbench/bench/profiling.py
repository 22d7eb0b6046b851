"""Where the milliseconds go: ONNX Runtime's own profiler, read per node, per op type and per block.

Portable (onnxruntime, numpy and the standard library), so it runs on a device too (``--target``, through
:mod:`mbbench.bench.agent`). What is measured:

- with ``reference`` (the default), the rounds are first timed as ``mbbench bench`` times them, in a session
  without the profiler: the profiler's own cost is then on record next to the profile;
- then one session built as ``mbbench bench`` builds it, with ``enable_profiling`` on and ORT's optimized graph
  saved: the cold run and the warm-up rounds come first and their events are dropped (the profiler is a session
  option, on from the start; the raw trace keeps them), then ``rounds`` profiled rounds;
- end to end is ORT's ``model_run`` event of each profiled round; node time is the sum of the kernel events
  inside it; what is left, ORT's own work around and between the kernels, is shown as "between ops", a row of
  its own, so the shares of the end-to-end mean add up to 100%;
- each kernel is one node of the optimized graph, counted once, under the op type ORT ran (``FusedConv``,
  ``QuickGelu``, an NCHWc ``Conv``, a ``ReorderInput`` it inserted), with the original ops it covers and its
  block: see :mod:`mbbench.bench.attribution` for how both are read.
"""

from __future__ import annotations

import dataclasses
import functools
import gc
import json
import math
import os
import tempfile
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import onnxruntime as ort

from mbbench.bench.attribution import (
    DEFAULT_DEPTH,
    Attribution,
    Graph,
    GraphMapping,
    TraceTimes,
    block_name,
    foreign_path,
    map_graphs,
    module_path,
    read_graph,
    read_trace,
)
from mbbench.bench.environment import machine_facts, usable_cores
from mbbench.bench.load import LoadProbe
from mbbench.bench.modelfile import ModelFile, inspect_model
from mbbench.bench.options import BenchConfig, BenchOptionError, _check_int
from mbbench.bench.session import ModelRunError, check_provider, make_inputs, pin_cpus, session_options, timed_rounds
from mbbench.bench.stats import LatencyStats, latency_stats
from mbbench.bench.summary import oversubscription_warning
from mbbench.errors import MbbenchError
from mbbench.runtimes.onnxruntime import error_text as _first_line
from mbbench.runtimes.onnxruntime import input_specs

#: The views of a profile: by ORT op type (the kernel), by block (module path), or node by node.
BY = ("op", "block", "node")
MAX_DEPTH = 32
MAX_TOP = 100_000
#: The row that holds what falls between the kernels (end to end minus node time).
BETWEEN_OPS = "(between ops)"
#: ORT's profiler stops recording past this many events (``Profiler::global_max_num_events_``, 1000 * 1000).
MAX_TRACE_EVENTS = 1_000_000


class ProfileError(ModelRunError):
    """A model could not be profiled (it does not load or run, or its trace is incomplete)."""


# --- the result ---------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class NodeTime:
    """One kernel: the node ORT ran, its time per round and what it stands for."""

    node: str
    #: the kernel's op type as ORT ran it (``FusedConv``, ``QuickGelu``, ``ReorderInput``)
    op_type: str
    block: str
    #: the full module path (``layer_3.1/global_rep.0/pre_norm_mha.1``), as :func:`module_path` gives it
    path: str
    mean_ms: float
    #: of the end-to-end mean
    share: float
    #: kernel calls per round
    calls: float
    #: the original op types it covers (``("Conv", "Relu")``); empty when ORT inserted the node
    covers: tuple[str, ...] = ()
    domain: str = ""
    provider: str = ""
    #: the block came from a neighbour (the node's name holds no module path)
    inherited: bool = False
    #: the original nodes it covers, by name, in graph order (empty when ORT inserted it)
    sources: tuple[str, ...] = ()

    @property
    def fused(self) -> bool:
        """The kernel stands for other original ops than a single one of its own type."""
        return bool(self.covers) and self.covers != (self.op_type,)

    @property
    def covers_text(self) -> str:
        """``Conv+Relu``; ``(inserted by ORT)`` for a node with no original; empty for a plain node."""
        if not self.covers:
            return "(inserted by ORT)"
        return "+".join(self.covers) if self.fused else ""


@dataclass(frozen=True)
class Group:
    """Kernels of one op type or one block."""

    name: str
    mean_ms: float
    share: float
    calls: float
    nodes: int
    #: for an op type: the original ops its fused kernels cover (``Sigmoid+Mul``), each once
    covers: tuple[str, ...] = ()


@dataclass(frozen=True)
class Profile:
    """Where one model's milliseconds go at one thread count. ``nodes`` are in execution order."""

    model: str
    file: str
    threads: int
    rounds: int
    warmup: int
    depth: int
    #: ORT's ``model_run`` duration of each profiled round, ms
    run_ms: tuple[float, ...]
    #: the executor's part of each round (``SequentialExecutor::Execute``), ms
    execute_ms: tuple[float, ...]
    nodes: tuple[NodeTime, ...]
    #: the same rounds timed as ``mbbench bench`` times them, in a session without the profiler (ms; empty when
    #: not measured): what the profiler itself costs is the difference
    plain_ms: tuple[float, ...] = ()
    sha256: str = ""
    graph_opt: str = "all"
    provider: str = "CPUExecutionProvider"
    onnxruntime_version: str = ort.__version__
    session_ms: float | None = None
    oversubscribed: bool = False
    cores: int | None = None
    others_cpu_pct: float | None = None
    loadavg_1m: float | None = None
    contended: bool | None = None
    #: original nodes folded into constants at load, and gone nodes no kernel could be traced to
    folded: int = 0
    untraced: int = 0
    original_nodes: int | None = None
    host: str = ""
    cpu_model: str = ""
    target: str | None = None
    notes: tuple[str, ...] = ()
    #: ORT's raw JSON trace (all runs, warm-up included)
    trace: str = field(default="", repr=False, compare=False)

    # -- the numbers ----------------------------------------------------------------------------------------

    @property
    def label(self) -> str:
        """The model, and the device when it was profiled on a ``--target``."""
        return f"{self.model} on {self.target}" if self.target else self.model

    @property
    def stats(self) -> LatencyStats:
        """Statistics of the end-to-end time of the profiled rounds."""
        return latency_stats(self.run_ms)

    @property
    def end_to_end_ms(self) -> float:
        return float(np.mean(self.run_ms))

    @property
    def node_ms(self) -> float:
        return float(sum(n.mean_ms for n in self.nodes))

    @property
    def between_ops_ms(self) -> float:
        return self.end_to_end_ms - self.node_ms

    @property
    def coverage(self) -> float:
        """Node time over end-to-end time."""
        return self.node_ms / self.end_to_end_ms if self.end_to_end_ms > 0 else math.nan

    @property
    def between_ops_share(self) -> float:
        return 1.0 - self.coverage

    @property
    def outside_executor_ms(self) -> float:
        """The part of "between ops" outside the executor (input checks, output hand-over in ``run``)."""
        return self.end_to_end_ms - float(np.mean(self.execute_ms)) if self.execute_ms else math.nan

    @property
    def plain_ms_mean(self) -> float:
        """The end-to-end mean without the profiler (NaN when it was not measured)."""
        return float(np.mean(self.plain_ms)) if self.plain_ms else math.nan

    @property
    def kernels_per_run(self) -> float:
        return float(sum(n.calls for n in self.nodes))

    @property
    def inherited(self) -> int:
        """Kernels whose block came from a neighbour (no module path in their own names)."""
        return sum(1 for n in self.nodes if n.inherited)

    def by_op(self) -> list[Group]:
        """Per op type (the kernel ORT ran), largest first."""
        groups = self._group(lambda n: n.op_type)
        return sorted(groups, key=lambda g: -g.mean_ms)

    def by_block(self, depth: int | None = None) -> list[Group]:
        """Per block at ``depth`` (default: the profile's), in execution order."""
        if depth is None or depth == self.depth:
            return self._group(lambda n: n.block)
        depth = check_depth(depth)
        return self._group(lambda n: block_name(tuple(n.path.split("/")) if n.path else (), depth))

    def top(self, k: int = 10) -> list[NodeTime]:
        """The ``k`` slowest kernels."""
        return sorted(self.nodes, key=lambda n: -n.mean_ms)[:k]

    def groups(self, by: str) -> list[Group]:
        """``by_op()``, ``by_block()`` or one group per node (``node``)."""
        if by == "op":
            return self.by_op()
        if by == "block":
            return self.by_block()
        if by == "node":
            return [Group(n.node, n.mean_ms, n.share, n.calls, 1, (n.covers_text,) if n.covers_text else ())
                    for n in self.nodes]
        raise BenchOptionError(f"by must be one of {', '.join(BY)}, not {by!r}")

    def _group(self, key: Callable[[NodeTime], str]) -> list[Group]:
        found: dict[str, list[NodeTime]] = {}
        for node in self.nodes:
            found.setdefault(key(node), []).append(node)
        total = self.end_to_end_ms
        out = []
        for name, members in found.items():
            ms = float(sum(n.mean_ms for n in members))
            covers = tuple(dict.fromkeys(n.covers_text for n in members if n.covers_text))
            out.append(Group(name, ms, ms / total if total > 0 else math.nan, float(sum(n.calls for n in members)),
                             len(members), covers))
        return out

    # -- as data --------------------------------------------------------------------------------------------

    def to_dict(self, trace: bool = True) -> dict[str, Any]:
        data = dataclasses.asdict(self)
        if not trace:
            data.pop("trace")
        return data

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Profile:
        known = {f.name for f in dataclasses.fields(cls)}
        values = {k: v for k, v in data.items() if k in known}
        values["nodes"] = tuple(
            NodeTime(**{**n, "covers": tuple(n.get("covers") or ()), "sources": tuple(n.get("sources") or ())})
            for n in values.get("nodes", ())
        )
        for name in ("run_ms", "execute_ms", "plain_ms", "notes"):
            values[name] = tuple(values.get(name) or ())
        return cls(**values)


# --- measuring ----------------------------------------------------------------------------------------------


def check_depth(depth: Any) -> int:
    return _check_int("depth", depth, 1, MAX_DEPTH)


def check_top(top: Any) -> int:
    return _check_int("top", top, 1, MAX_TOP)


def profile_model(
    model: str | os.PathLike | ModelFile,
    threads: int = 1,
    rounds: int = 30,
    warmup: int = 5,
    depth: int = DEFAULT_DEPTH,
    *,
    reference: bool = True,
    **bench: Any,
) -> Profile:
    """Profile one ONNX file at ``threads`` intra-op threads, in this process (see the module docstring).

    ``rounds`` profiled rounds follow one cold run and ``warmup`` warm-up rounds; ``depth`` is the number of
    module-path levels a block keeps (:func:`block_name`). With ``reference``, the same rounds (and at least
    ``min_time`` seconds) are first timed in a session without the profiler (``plain_ms``), so the profiler's own
    cost is on record. ``bench`` takes every other :class:`~mbbench.bench.options.BenchConfig` option (graph_opt,
    spinning, inter_threads, provider, input_shapes, seed, cpus; ``isolate`` is :func:`profile_models`' concern).
    Raises :class:`ProfileError` when the model does not load or run, and a
    :class:`~mbbench.errors.UserInputError` for an option out of range.
    """
    file = model if isinstance(model, ModelFile) else inspect_model(model)
    config = BenchConfig(threads=threads, rounds=rounds, warmup=warmup, **{**bench, "isolate": False})
    if len(config.threads) != 1:
        raise BenchOptionError("profile_model takes one thread count; profile_models takes several")
    threads = config.threads[0]
    depth = check_depth(depth)
    check_provider(config.provider)
    cores = usable_cores()
    notes: list[str] = []
    if threads > cores:
        notes.append(oversubscription_warning(threads, cores))
    path = Path(file.path)
    original = _graph_or_none(path.read_bytes())
    previous_affinity = pin_cpus(config.cpus)
    try:
        return _profile(file, path, original, threads, config, depth, reference, cores, notes)
    finally:
        if previous_affinity is not None:
            os.sched_setaffinity(0, previous_affinity)


def _profile(file, path, original, threads, config, depth, reference, cores, notes) -> Profile:
    plain_ms: tuple[float, ...] = ()
    if reference:
        options = session_options(threads, config)
        plain_ms = tuple(ns / 1e6 for ns in _run_rounds(path, options, config, timed=True)[0])
    with tempfile.TemporaryDirectory(prefix="mbbench-profile-") as tmp:
        options = session_options(threads, config)
        options.enable_profiling = True
        options.profile_file_prefix = str(Path(tmp) / "trace")
        optimized_file = Path(tmp) / "optimized.onnx"
        options.optimized_model_filepath = str(optimized_file)

        def check_events(session) -> None:
            graph = _graph_or_none(optimized_file.read_bytes()) if optimized_file.is_file() else None
            kernels = len(graph.nodes) if graph is not None else 0
            runs = 1 + config.warmup + config.rounds
            if kernels and runs * (kernels + 2) > MAX_TRACE_EVENTS:
                most = MAX_TRACE_EVENTS // (kernels + 2) - 1 - config.warmup
                raise BenchOptionError(
                    f"{path.name} runs {kernels} kernels a round and ORT's profiler records at most "
                    f"{MAX_TRACE_EVENTS:,} events: use --rounds {max(most, 2)} or fewer (with --warmup "
                    f"{config.warmup})")

        _, load, trace_file = _run_rounds(path, options, config, timed=False, before=check_events)
        optimized = _graph_or_none(optimized_file.read_bytes()) if optimized_file.is_file() else None
        trace_text = Path(trace_file).read_text(encoding="utf-8", errors="replace")
    if optimized is None:
        notes.append("ORT did not write its optimized graph: fused kernels are shown without the ops they cover")
    try:
        events = json.loads(trace_text)
    except ValueError:
        raise ProfileError(f"{path.name}: ORT's trace is not readable JSON") from None
    if isinstance(events, Mapping):  # the Chrome trace format also allows {"traceEvents": [...]}
        events = events.get("traceEvents", [])
    times = read_trace(events, skip=1 + config.warmup)
    if len(times.runs_us) != config.rounds:
        raise ProfileError(
            f"{path.name}: ORT's trace holds {times.runs_seen} of the {1 + config.warmup + config.rounds} runs "
            f"(its profiler stops at {MAX_TRACE_EVENTS:,} events); use fewer --rounds")
    mapping = map_graphs(original, optimized) if original is not None and optimized is not None else None
    return build_profile(
        file, times, mapping, threads=threads, rounds=config.rounds, warmup=config.warmup, depth=depth,
        domains={n.name: n.domain for n in optimized.nodes} if optimized is not None else {},
        graph_opt=config.graph_opt, provider=config.provider, oversubscribed=threads > cores, cores=cores,
        load=load.as_columns(), notes=notes, trace=trace_text, plain_ms=plain_ms,
        host=str(machine_facts()["host"]), cpu_model=str(machine_facts()["cpu_model"]),
    )  # fmt: skip


def _run_rounds(path: Path, options: ort.SessionOptions, config: BenchConfig, timed: bool, before=None):
    """One session: the cold run, the warm-up, then ``config.rounds`` rounds (timed with ``perf_counter_ns`` when
    ``timed``); returns (round durations in ns or None, the load meanwhile, the trace file or None). The session
    is dropped before returning, so only one is ever alive."""
    session = None
    gc.collect()
    try:
        try:
            session = ort.InferenceSession(str(path), sess_options=options, providers=[config.provider])
        except Exception as exc:
            raise ProfileError(f"cannot load {path.name}: {_first_line(exc)}") from None
        if before is not None:
            before(session)
        try:
            feed, _ = make_inputs(input_specs(session), config.shapes, config.seed)
        except MbbenchError as exc:
            raise ProfileError(f"{path.name}: {exc}") from None
        run = session.run
        try:
            for _ in range(1 + config.warmup):
                run(None, feed)
            probe = LoadProbe()
            if timed:
                samples = timed_rounds(functools.partial(run, None, feed), config.rounds, config.min_time)
            else:
                samples = None
                for _ in range(config.rounds):
                    run(None, feed)
            load = probe.finish(config.threads[0])
        except Exception as exc:
            raise ProfileError(f"cannot run {path.name}: {_first_line(exc)}") from None
        trace = None if timed else session.end_profiling()
    finally:
        session = run = None
        gc.collect()
    return samples, load, trace


def _graph_or_none(data: bytes) -> Graph | None:
    try:
        return read_graph(data)
    except (ValueError, IndexError):
        return None


def build_profile(
    file: ModelFile,
    times: TraceTimes,
    mapping: GraphMapping | None,
    *,
    threads: int,
    rounds: int,
    warmup: int,
    depth: int = DEFAULT_DEPTH,
    domains: Mapping[str, str] | None = None,
    notes: Sequence[str] = (),
    load: Mapping[str, Any] | None = None,
    trace: str = "",
    **facts: Any,
) -> Profile:
    """A :class:`Profile` from a read trace and the graph mapping (None: blocks from the kernels' names only)."""
    if not times.runs_us:
        raise ProfileError(f"{file.path.name}: the trace holds no profiled run")
    end_to_end_ms = float(np.mean(times.runs_us)) / 1e3
    nodes = []
    for kernel in times.kernels:
        attribution = mapping.nodes.get(kernel.node) if mapping is not None else None
        if attribution is None:
            path = module_path(kernel.node)
            attribution = Attribution(path if path is not None else foreign_path(kernel.node),
                                      covers=(kernel.op_type,), inherited=False)
        mean_ms = kernel.total_us / rounds / 1e3
        nodes.append(NodeTime(
            node=kernel.node, op_type=kernel.op_type, block=block_name(attribution.path, depth),
            path="/".join(attribution.path), mean_ms=mean_ms, share=mean_ms / end_to_end_ms,
            calls=kernel.calls / rounds, covers=attribution.covers, domain=(domains or {}).get(kernel.node, ""),
            provider=kernel.provider, inherited=attribution.inherited, sources=attribution.sources,
        ))  # fmt: skip
    notes = list(notes)
    inherited = sum(1 for n in nodes if n.inherited)
    if inherited and mapping is not None:
        notes.append(f"{inherited} of {len(nodes)} kernels have no module path in their names (named by the "
                     "simplifier or by ORT); each took the block of the node whose output it reads.")
    if mapping is not None and mapping.folded:
        notes.append(f"{mapping.folded} of the model's {mapping.original_nodes} nodes have only constant inputs: ORT "
                     "computed them once, at load.")
    if mapping is not None and mapping.untraced:
        notes.append(f"{mapping.untraced} of the model's nodes were rewritten by ORT into kernels that no name or "
                     "edge ties to one of them (e.g. a Transpose folded into two MatMuls): their time is in those "
                     "kernels, not listed under their own op type.")
    return Profile(
        model=file.label, file=Path(file.path).as_posix(), sha256=file.sha256, threads=threads, rounds=rounds,
        warmup=warmup, depth=depth, run_ms=tuple(us / 1e3 for us in times.runs_us),
        execute_ms=tuple(us / 1e3 for us in times.execute_us), nodes=tuple(nodes),
        session_ms=times.session_us / 1e3 if times.session_us is not None else None,
        folded=mapping.folded if mapping else 0, untraced=mapping.untraced if mapping else 0,
        original_nodes=mapping.original_nodes if mapping else None, notes=tuple(notes), trace=trace,
        **{k: v for k, v in (load or {}).items() if k in ("others_cpu_pct", "loadavg_1m", "contended")},
        **facts,
    )  # fmt: skip


def profile_options(
    threads: str | int | Iterable[int] = 1,
    rounds: int = 30,
    warmup: int = 5,
    depth: int = DEFAULT_DEPTH,
    *,
    reference: bool = True,
    **bench: Any,
) -> tuple[BenchConfig, int]:
    """The options of :func:`profile_models` checked (one-line errors) before anything runs: the bench options
    (thread counts parsed) and the depth. Whether ``provider`` exists is the machine's own question: the caller
    asks it where the profile runs."""
    config = BenchConfig(threads=threads, rounds=rounds, warmup=warmup, **bench)
    return config, check_depth(depth)


def profile_models(
    models: Sequence[ModelFile],
    threads: str | int | Iterable[int] = 1,
    rounds: int = 30,
    warmup: int = 5,
    depth: int = DEFAULT_DEPTH,
    *,
    reference: bool = True,
    note: Callable[[str], None] | None = None,
    done: Callable[[Profile], None] | None = None,
    **bench: Any,
) -> list[Profile]:
    """:func:`profile_model` for every (model, threads), models outermost (``shuffle``: in a seeded random order),
    every option checked first; ``bench`` takes every :class:`~mbbench.bench.options.BenchConfig` option, as bench
    does: with ``isolate`` (the default) each profile runs in a fresh worker process, ``cooldown`` pauses between
    them and ``cool_to`` waits for the device to cool before each.

    ``note`` hears what the user should know before the run (oversubscribed thread counts), ``done`` gets each
    profile as it finishes.
    """
    import random

    from mbbench.bench import device
    from mbbench.bench._worker import profile_isolated

    config, depth = profile_options(threads, rounds, warmup, depth, reference=reference, **bench)
    check_provider(config.provider)
    cores = usable_cores()
    if note is not None:
        for count in config.threads:
            if count > cores:
                note(oversubscription_warning(count, cores))
    plan = [(model, count) for model in models for count in config.threads]
    if config.shuffle:
        random.Random(config.seed).shuffle(plan)
    options = {k: v for k, v in config.to_dict().items() if k not in ("threads", "rounds", "warmup", "isolate")}
    out = []
    for index, (model, count) in enumerate(plan):
        if index and config.cooldown:
            time.sleep(config.cooldown)
        if config.cool_to is not None:
            device.wait_until_cool(config.cool_to, config.cool_timeout, note=note)
        if config.isolate:
            profile = profile_isolated(model, count, config.rounds, config.warmup, depth, reference, options)
        else:
            profile = profile_model(model, count, config.rounds, config.warmup, depth, reference=reference,
                                    **options)  # fmt: skip
        out.append(profile)
        if done is not None:
            done(profile)
    return out


def run_profile_job(job: Mapping[str, Any], emit: Callable[..., None]) -> int:
    """The device side of ``mbbench profile --target`` (see :mod:`mbbench.bench.agent`): profile each model of
    ``job`` and emit one ``{"event": "profile", "profile": {...}}`` per (model, threads)."""
    options = job.get("options") or {}
    models = [ModelFile(path=Path(m["path"]), label=str(m["label"]), sha256=m["sha256"], opset=m.get("opset"),
                        manifest=m.get("manifest")) for m in job["models"]]  # fmt: skip
    profile_models(models, note=lambda message: emit("note", message=message),
                   done=lambda profile: emit("profile", profile=_plain(profile.to_dict())), **options)
    emit("done", interrupted=False)
    return 0


def _plain(value: Any) -> Any:
    """JSON-safe: non-finite floats become None, tuples lists."""
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, Mapping):
        return {k: _plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    return value
