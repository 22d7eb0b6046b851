"""Mutation score of the modules whose correctness is the product (issue 16).

mutmut 3 plants one small bug at a time (a flipped comparison, an off-by-one, a dropped argument) and runs the
tests that reach the changed function; a bug that no test notices "survives". The share of planted bugs the
tests kill says how well they guard each promise, which line coverage cannot.

mutmut 3 works on a copy of the tree in ``mutants/`` and never writes the working files, so it can run while
the tree is being edited and tested. (Never ``mutmut apply``: that one writes a mutant into the source.) What
is mutated and which tests run is ``[tool.mutmut]`` in pyproject.toml; this script picks the functions of each
module below, runs mutmut on them one module at a time, and writes the killed share per module and overall,
with every survivor's diff and, where it is known, why it is equivalent (changes nothing observable), to
``results/benchmarks/mutation-<date>.json`` and ``.md``.

Killed counts mutants the tests fail on, time out on (an endless loop is caught) or crash on. A survivor
without a reason in :data:`EQUIVALENT` needs a test.

Usage (from the repository root; CPU-heavy: about half an hour on 2 cores)::

    .venv/bin/pip install -c constraints.txt -e '.[mutation]'   # constraints.txt pins the CPU torch
    .venv/bin/python scripts/mutation.py                      # every module
    .venv/bin/python scripts/mutation.py --module opset fold  # some of them
"""

from __future__ import annotations

import argparse
import fnmatch
import os
import re
import shlex
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _record import Record  # noqa: E402  (a sibling module of this script)

REPO = Path(__file__).resolve().parents[1]
GOAL = 0.90


@dataclass(frozen=True)
class Target:
    what: str
    path: str
    mutants: tuple[str, ...]  # mutmut's mutant names, as globs
    tests: str


# The ǁ-separated names are mutmut's for methods (module.xǁClassǁmethod__mutmut_N).
TARGETS = {
    "stats": Target("the statistics", "mbbench/bench/stats.py", ("mbbench.bench.stats.*",),
                    "tests/bench/test_stats.py"),
    "results": Target("the results writer", "mbbench/bench/results.py", ("mbbench.bench.results.*",),
                      "tests/bench/test_results.py"),
    "opset": Target("the opset check", "mbbench/export/opset.py", ("mbbench.export.opset.*",),
                    "tests/export/test_opset.py, tests/export/test_export.py::test_first_opset_table"),
    "compare": Target("the report's pooling and comparison", "mbbench/report/compare.py",
                      ("mbbench.report.compare.*",), "tests/report/test_compare.py"),
    "fold": Target("the fold forms (MobileViT v1 and v2 unfold/fold)", "mbbench/models/layers.py",
                   ("mbbench.models.layers.xǁPatchFoldingǁ*",
                    "mbbench.models.mobilevitv2.xǁMobileViTBlockV2ǁfold__mutmut_*",
                    "mbbench.models.mobilevitv2.xǁMobileViTBlockV2ǁunfold__mutmut_*"),
                   "tests/models/test_mobilevitv2.py, tests/models/test_mobilevit.py"),
    "interleave": Target("the interleaved comparison", "mbbench/bench/interleave.py", ("mbbench.bench.interleave.*",),
                         "tests/bench/test_interleave.py"),
    "ratio": Target("the study ratios (ratio_table)", "mbbench/studies/_core.py",
                    ("mbbench.studies._core.x_ratio_table__mutmut_*",), "tests/studies/test_ratio.py"),
}  # fmt: skip

#: Surviving mutants that change nothing observable, keyed by the module and the changed line as mutmut shows
#: it (``-`` original, ``+`` mutant, stripped): names carry numbers that shift when the file changes, lines do
#: not. A reason says why no test can tell the mutant from the original.
_BELOW_TRUNCATION = (
    "a g4 coefficient off by one moves t by < 1e-11 relative above df 100, below the four-term expansion's own "
    "error there (~1e-11): no comparison with the true t can tell; a wrong sign or power of a term is caught"
)
_NAN = 'float("NAN") is NaN too'

EQUIVALENT: dict[tuple[str, str, str], str] = {
    ("interleave", "quartiles = statistics.quantiles(ratios, n=4) if len(ratios) > 1 else [ratios[0]] * 3", "quartiles = statistics.quantiles(ratios, ) if len(ratios) > 1 else [ratios[0]] * 3"):
        "n=4 is statistics.quantiles' default",
    ("interleave", "quartiles = statistics.quantiles(ratios, n=4) if len(ratios) > 1 else [ratios[0]] * 3", "quartiles = statistics.quantiles(ratios, n=4) if len(ratios) > 1 else [ratios[0]] * 4"):
        "only the first and third entries are read: a fourth copy changes nothing",
    ("fold", 'self.register_buffer("unfold_kernel", kernel.reshape(channels * area, 1, patch, patch), persistent=False)', 'self.register_buffer("unfold_kernel", kernel.reshape(channels * area, 1, patch, patch), persistent=None)'):
        "register_buffer tests `not persistent`: None and False both keep the kernel out of the state_dict",
    ("opset", 'defs.get_schema(node.op_type, opset, "")', "defs.get_schema(node.op_type, opset, )"):
        'the domain argument defaults to "" (the standard domain)',
    ("stats", "g4 = (79 * z**9 + 776 * z**7 + 1482 * z**5 - 1920 * z**3 - 945 * z) / 92160", "g4 = (80 * z**9 + 776 * z**7 + 1482 * z**5 - 1920 * z**3 - 945 * z) / 92160"):
        _BELOW_TRUNCATION,
    ("stats", "g4 = (79 * z**9 + 776 * z**7 + 1482 * z**5 - 1920 * z**3 - 945 * z) / 92160", "g4 = (79 * z**9 + 777 * z**7 + 1482 * z**5 - 1920 * z**3 - 945 * z) / 92160"):
        _BELOW_TRUNCATION,
    ("stats", "g4 = (79 * z**9 + 776 * z**7 + 1482 * z**5 - 1920 * z**3 - 945 * z) / 92160", "g4 = (79 * z**9 + 776 * z**7 + 1483 * z**5 - 1920 * z**3 - 945 * z) / 92160"):
        _BELOW_TRUNCATION,
    ("stats", "g4 = (79 * z**9 + 776 * z**7 + 1482 * z**5 - 1920 * z**3 - 945 * z) / 92160", "g4 = (79 * z**9 + 776 * z**7 + 1482 * z**5 - 1921 * z**3 - 945 * z) / 92160"):
        _BELOW_TRUNCATION,
    ("stats", "g4 = (79 * z**9 + 776 * z**7 + 1482 * z**5 - 1920 * z**3 - 945 * z) / 92160", "g4 = (79 * z**9 + 776 * z**7 + 1482 * z**5 - 1920 * z**3 - 946 * z) / 92160"):
        _BELOW_TRUNCATION,
    ("stats", "g4 = (79 * z**9 + 776 * z**7 + 1482 * z**5 - 1920 * z**3 - 945 * z) / 92160", "g4 = (79 * z**9 + 776 * z**7 + 1482 * z**5 - 1920 * z**3 - 945 * z) / 92161"):
        _BELOW_TRUNCATION,
    ("stats", "cv = std / mean if n > 1 and mean > 0 else math.nan", "cv = std / mean if n >= 1 and mean > 0 else math.nan"):
        "with one round the std is NaN, so std / mean is NaN either way",
    ("stats", "if df > 100:", "if df > 101:"):
        "at df 101 the exact bisection and the expansion agree to ~1e-11, well within the documented 1e-9: the cut only picks the faster method",
    ("stats", "for _ in range(100):", "for _ in range(101):"):
        "100 halvings of [0, pi/2] already reach the float's resolution; a 101st changes nothing",
    ("stats", "if _two_sided_mass(mid, df) < confidence:", "if _two_sided_mass(mid, df) <= confidence:"):
        "which side an exact tie goes to does not move the point the bisection shrinks onto",
    ("stats", "if 2 * smallest > n:", "if 2 / smallest > n:"):
        "with 20 rounds at least and a smaller side of max(5, 10%), 2 (or 3) x smallest <= n always: the guard never fires",
    ("stats", "if 2 * smallest > n:", "if 3 * smallest > n:"):
        "with 20 rounds at least and a smaller side of max(5, 10%), 2 (or 3) x smallest <= n always: the guard never fires",
    ("stats", "if 2 * smallest > n:", "if 2 * smallest >= n:"):
        "with 20 rounds at least and a smaller side of max(5, 10%), 2 (or 3) x smallest <= n always: the guard never fires",
    ("stats", "x_c = x - x.mean()", "x_c = x + x.mean()"):
        "the sums of squares are shift-invariant; the shift only changes rounding, far below the ms scale of latencies",
    ("stats", "right_ss = (csq[n] - csq[k]) - (csum[n] - csum[k]) ** 2 / (n - k)",
     "right_ss = (csq[n] - csq[k]) - (csum[n] + csum[k]) ** 2 / (n - k)"):
        "csum[n] is the sum of the centred samples, 0 up to rounding, so (csum[n] +- csum[k]) ** 2 is the same",
    ("stats", "csum = np.concatenate(([0.0], np.cumsum(x_c)))", "csum = np.concatenate(([1.0], np.cumsum(x_c)))"):
        "csum[0] and csq[0] are never read: every cut k is at least 5",
    ("stats", "csq = np.concatenate(([0.0], np.cumsum(x_c * x_c)))", "csq = np.concatenate(([1.0], np.cumsum(x_c * x_c)))"):
        "csum[0] and csq[0] are never read: every cut k is at least 5",
    ("stats", "csq = np.concatenate(([0.0], np.cumsum(x_c * x_c)))", "csq = np.concatenate(([0.0], np.cumsum(x_c / x_c)))"):
        "the cost of a cut is csq[n] - (between-cluster term): csq only adds a constant, so the best cut is the same",
    ("stats", "bimodal = str(row.get(\"bimodal\")).strip().lower() == \"true\" or row.get(\"bimodal\") is True", "bimodal = str(row.get(\"bimodal\")).strip().lower() == \"true\" or row.get(None) is True"):
        "str(True).lower() == 'true' already: the `is True` clause is redundant",
    ("stats", "bimodal = str(row.get(\"bimodal\")).strip().lower() == \"true\" or row.get(\"bimodal\") is True", "bimodal = str(row.get(\"bimodal\")).strip().lower() == \"true\" or row.get(\"XXbimodalXX\") is True"):
        "str(True).lower() == 'true' already: the `is True` clause is redundant",
    ("stats", "bimodal = str(row.get(\"bimodal\")).strip().lower() == \"true\" or row.get(\"bimodal\") is True", "bimodal = str(row.get(\"bimodal\")).strip().lower() == \"true\" or row.get(\"BIMODAL\") is True"):
        "str(True).lower() == 'true' already: the `is True` clause is redundant",
    ("stats", "bimodal = str(row.get(\"bimodal\")).strip().lower() == \"true\" or row.get(\"bimodal\") is True", "bimodal = str(row.get(\"bimodal\")).strip().lower() == \"true\" or row.get(\"bimodal\") is False"):
        "str(True).lower() == 'true' already: the `is True` clause is redundant",
    ("results", "if hasattr(value, \"item\") and hasattr(value, \"dtype\"):  # numpy scalar (np.float64 would repr as such)", "if hasattr(value, \"item\") or hasattr(value, \"dtype\"):  # numpy scalar (np.float64 would repr as such)"):
        "no cell value has only one of .item and .dtype: Python scalars have neither, numpy scalars both",
    ("results", "text = data.decode(\"utf-8\")", "text = data.decode(\"UTF-8\")"):
        "codec names are case-insensitive",
    ("results", "data = buffer.getvalue().encode(\"utf-8\")", "data = buffer.getvalue().encode(\"UTF-8\")"):
        "codec names are case-insensitive",
    ("results", "return next(csv.reader(io.StringIO(text, newline=\"\")), None)", "return next(csv.reader(io.StringIO(text, newline=None)), None)"):
        "differs only for a quoted header cell holding a line break; header cells are column names",
    ("results", "return next(csv.reader(io.StringIO(text, newline=\"\")), None)", "return next(csv.reader(io.StringIO(text, )), None)"):
        "differs only for a quoted header cell holding a line break; header cells are column names",
    ("results", "header = read_header(path) if exists else None", "header = read_header(path) if (exists) or True else None"):
        "read_header of a missing file returns None, as the else branch does",
    ("results", "fd, probe = tempfile.mkstemp(prefix=f\".{self.path.name}.\", suffix=\".probe\", dir=self.path.parent)", "fd, probe = tempfile.mkstemp(prefix=None, suffix=\".probe\", dir=self.path.parent)"):
        "the probe's name is not observable: it is removed at once",
    ("results", "fd, probe = tempfile.mkstemp(prefix=f\".{self.path.name}.\", suffix=\".probe\", dir=self.path.parent)", "fd, probe = tempfile.mkstemp(prefix=f\".{self.path.name}.\", suffix=None, dir=self.path.parent)"):
        "the probe's name is not observable: it is removed at once",
    ("results", "fd, probe = tempfile.mkstemp(prefix=f\".{self.path.name}.\", suffix=\".probe\", dir=self.path.parent)", "fd, probe = tempfile.mkstemp(suffix=\".probe\", dir=self.path.parent)"):
        "the probe's name is not observable: it is removed at once",
    ("results", "fd, probe = tempfile.mkstemp(prefix=f\".{self.path.name}.\", suffix=\".probe\", dir=self.path.parent)", "fd, probe = tempfile.mkstemp(prefix=f\".{self.path.name}.\", dir=self.path.parent)"):
        "the probe's name is not observable: it is removed at once",
    ("results", "fd, probe = tempfile.mkstemp(prefix=f\".{self.path.name}.\", suffix=\".probe\", dir=self.path.parent)", "fd, probe = tempfile.mkstemp(prefix=f\".{self.path.name}.\", suffix=\"XX.probeXX\", dir=self.path.parent)"):
        "the probe's name is not observable: it is removed at once",
    ("results", "fd, probe = tempfile.mkstemp(prefix=f\".{self.path.name}.\", suffix=\".probe\", dir=self.path.parent)", "fd, probe = tempfile.mkstemp(prefix=f\".{self.path.name}.\", suffix=\".PROBE\", dir=self.path.parent)"):
        "the probe's name is not observable: it is removed at once",
    ("results", "same = False", "same = None"):
        "None is falsy like False",
    ("results", "elif os.pread(fd, 1, size - 1) != b\"\\n\":", "elif os.pread(fd, 2, size - 1) != b\"\\n\":"):
        "only one byte remains at offset size - 1: asking for two reads the same byte",
    ("compare", "index=frame.index,", "index=None,"):
        "every column is a Series on the frame's index (or a scalar), so the frame gets that index anyway",
    ("compare", "index=frame.index, / )", ")"):
        "every column is a Series on the frame's index (or a scalar), so the frame gets that index anyway",
    ("compare", "\"machine\": frame[\"machine\"] if by_machine else \"\",", "\"machine\": frame[\"machine\"] if by_machine else \"XXXX\","):
        "both sides get the same constant when machines are not matched",
    ("compare", "\"threads\": frame[\"threads\"].astype(int),", "\"threads\": frame[\"threads\"].astype(None),"):
        "both sides are converted alike, and the output takes threads from the rows, not the facts",
    ("compare", "**{c: _text(frame, c) for c in (\"sha256\", \"opset\", \"precision\", \"input_shape\")},", "**{c: _text(frame, c) for c in (\"sha256\", \"opset\", \"precision\", \"XXinput_shapeXX\")},"):
        "input_shape in the facts is never read: _pair_note reads it from the rows",
    ("compare", "**{c: _text(frame, c) for c in (\"sha256\", \"opset\", \"precision\", \"input_shape\")},", "**{c: _text(frame, c) for c in (\"sha256\", \"opset\", \"precision\", \"INPUT_SHAPE\")},"):
        "input_shape in the facts is never read: _pair_note reads it from the rows",
    ("compare", "return {\"ratio\": float(\"nan\"), \"p_value\": float(\"nan\"), \"significant\": None, \"verdict\": verdict, \"note\": \"\"}", "return {\"ratio\": float(\"NAN\"), \"p_value\": float(\"nan\"), \"significant\": None, \"verdict\": verdict, \"note\": \"\"}"):
        _NAN,
    ("compare", "return {\"ratio\": float(\"nan\"), \"p_value\": float(\"nan\"), \"significant\": None, \"verdict\": verdict, \"note\": \"\"}", "return {\"ratio\": float(\"nan\"), \"p_value\": float(\"NAN\"), \"significant\": None, \"verdict\": verdict, \"note\": \"\"}"):
        _NAN,
    ("compare", "f\"base_{metric}_ms\": other[column] if other is not None else float(\"nan\"),", "f\"base_{metric}_ms\": other[column] if other is not None else float(\"NAN\"),"):
        _NAN,
    ("compare", "f\"new_{metric}_ms\": row[column] if row is not None else float(\"nan\"),", "f\"new_{metric}_ms\": row[column] if row is not None else float(\"NAN\"),"):
        _NAN,
    ("compare", "ratio = new_value / base_value if base_value > 0 else float(\"nan\")", "ratio = new_value / base_value if base_value > 0 else float(\"NAN\")"):
        _NAN,
    ("compare", "p_value, significant = float(\"nan\"), None", "p_value, significant = float(\"NAN\"), None"):
        _NAN,
    ("compare", "return int(total), mean, float(\"nan\")", "return int(total), mean, float(\"NAN\")"):
        _NAN,
    ("compare", "half = t_critical(0.95, rounds - 1) * std / np.sqrt(rounds) if rounds > 1 else float(\"nan\")", "half = t_critical(0.95, rounds - 1) * std / np.sqrt(rounds) if rounds > 1 else float(\"NAN\")"):
        _NAN,
    ("compare", "\"cv\": std / mean if mean > 0 else float(\"nan\"),", "\"cv\": std / mean if mean > 0 else float(\"NAN\"),"):
        _NAN,
    ("compare", "row[column] = float(\"nan\")", "row[column] = float(\"NAN\")"):
        _NAN,
    ("compare", "hashed = left[left[\"sha256\"] != \"\"].merge(right[right[\"sha256\"] != \"\"], on=[\"machine\", \"threads\", \"sha256\"])", "hashed = left[left[\"sha256\"] != \"XXXX\"].merge(right[right[\"sha256\"] != \"\"], on=[\"machine\", \"threads\", \"sha256\"])"):
        "the other side's filter already keeps unknown checksums out of the merge on sha256",
    ("compare", "hashed = left[left[\"sha256\"] != \"\"].merge(right[right[\"sha256\"] != \"\"], on=[\"machine\", \"threads\", \"sha256\"])", "hashed = left[left[\"sha256\"] != \"\"].merge(right[right[\"sha256\"] != \"XXXX\"], on=[\"machine\", \"threads\", \"sha256\"])"):
        "the other side's filter already keeps unknown checksums out of the merge on sha256",
    ("compare", "pairs += list(zip(hashed[\"i\"], hashed[\"j\"]))", "pairs = list(zip(hashed[\"i\"], hashed[\"j\"]))"):
        "pairs is empty before: = and += give the same list",
    ("compare", "half = t_critical(0.95, rounds - 1) * std / np.sqrt(rounds) if rounds > 1 else float(\"nan\")", "half = t_critical(0.95, rounds - 1) * std / np.sqrt(rounds) if (rounds > 1) or True else float(\"nan\")"):
        "a pool holds two runs or more of one round or more, so rounds > 1 always",
    ("compare", "half = t_critical(0.95, rounds - 1) * std / np.sqrt(rounds) if rounds > 1 else float(\"nan\")", "half = t_critical(0.95, rounds - 1) * std / np.sqrt(rounds) if rounds >= 1 else float(\"nan\")"):
        "a pool holds two runs or more of one round or more, so rounds > 1 always",
    ("compare", "half = t_critical(0.95, rounds - 1) * std / np.sqrt(rounds) if rounds > 1 else float(\"nan\")", "half = t_critical(0.95, rounds - 1) * std / np.sqrt(rounds) if rounds > 1 else float(None)"):
        "a pool holds two runs or more of one round or more, so rounds > 1 always",
    ("compare", "half = t_critical(0.95, rounds - 1) * std / np.sqrt(rounds) if rounds > 1 else float(\"nan\")", "half = t_critical(0.95, rounds - 1) * std / np.sqrt(rounds) if rounds > 1 else float(\"XXnanXX\")"):
        "a pool holds two runs or more of one round or more, so rounds > 1 always",
    ("compare", "row[\"samples\"] = None", "row[\"samples\"] = \"\""):
        "has_samples reads both '' and None as no samples, and nothing else reads a pooled row's empty cell",
    ("compare", "if column not in recomputed and (column.endswith(\"_ms\") or column.startswith(\"cv\")):", "if column not in recomputed and (column.endswith(\"_ms\") or column.startswith(\"XXcvXX\")):"):
        "the only column starting with cv is cv itself, which is recomputed",
    ("compare", "if column not in recomputed and (column.endswith(\"_ms\") or column.startswith(\"cv\")):", "if column not in recomputed and (column.endswith(\"_ms\") or column.startswith(\"CV\")):"):
        "the only column starting with cv is cv itself, which is recomputed",
    ("compare", "groups = results.groupby(key, sort=False, dropna=False)", "groups = results.groupby(key, sort=None, dropna=False)"):
        "sort_results orders the pooled rows afterwards",
    ("compare", "groups = results.groupby(key, sort=False, dropna=False)", "groups = results.groupby(key, dropna=False)"):
        "sort_results orders the pooled rows afterwards",
    ("compare", "groups = results.groupby(key, sort=False, dropna=False)", "groups = results.groupby(key, sort=True, dropna=False)"):
        "sort_results orders the pooled rows afterwards",
    ("compare", "new = new.reset_index(drop=True)", "new = new.reset_index(drop=None)"):
        "the index is a fresh RangeIndex either way; the extra index column is never read (records take named columns)",
    ("compare", "new = new.reset_index(drop=True)", "new = new.reset_index(drop=False)"):
        "the index is a fresh RangeIndex either way; the extra index column is never read (records take named columns)",
    ("compare", "base = combine(base).reset_index(drop=True)", "base = combine(base).reset_index(drop=None)"):
        "the index is a fresh RangeIndex either way; the extra index column is never read (records take named columns)",
    ("compare", "base = combine(base).reset_index(drop=True)", "base = combine(base).reset_index(drop=False)"):
        "the index is a fresh RangeIndex either way; the extra index column is never read (records take named columns)",
    ("compare", "p_value = float(mannwhitneyu(row[\"samples\"], other[\"samples\"], alternative=\"two-sided\").pvalue)", "p_value = float(mannwhitneyu(row[\"samples\"], other[\"samples\"], ).pvalue)"):
        "two-sided is mannwhitneyu's default",
    ("compare", "p_value = float(mannwhitneyu(row[\"samples\"], other[\"samples\"], alternative=\"two-sided\").pvalue)", "p_value = float(mannwhitneyu(row[\"samples\"], other[\"samples\"], alternative=\"TWO-SIDED\").pvalue)"):
        "scipy reads the alternative case-insensitively",
    ("compare", "n = np.asarray(rounds, dtype=float)", "n = np.asarray(rounds, dtype=None)"):
        "the callers pass int rounds and float means; numpy's arithmetic promotes them to float anyway",
    ("compare", "n = np.asarray(rounds, dtype=float)", "n = np.asarray(rounds, )"):
        "the callers pass int rounds and float means; numpy's arithmetic promotes them to float anyway",
    ("compare", "m = np.asarray(means, dtype=float)", "m = np.asarray(means, dtype=None)"):
        "the callers pass int rounds and float means; numpy's arithmetic promotes them to float anyway",
    ("compare", "m = np.asarray(means, dtype=float)", "m = np.asarray(means, )"):
        "the callers pass int rounds and float means; numpy's arithmetic promotes them to float anyway",
    ("compare", "s = np.nan_to_num(np.asarray(stds, dtype=float), nan=0.0)", "s = np.nan_to_num(np.asarray(stds, dtype=float), )"):
        "nan=0.0 is nan_to_num's default",
    ("compare", "s = np.nan_to_num(np.asarray(stds, dtype=float), nan=0.0)", "s = np.nan_to_num(np.asarray(stds, dtype=None), nan=0.0)"):
        "the callers pass float stds, which asarray keeps float",
    ("compare", "s = np.nan_to_num(np.asarray(stds, dtype=float), nan=0.0)", "s = np.nan_to_num(np.asarray(stds, ), nan=0.0)"):
        "the callers pass float stds, which asarray keeps float",
    ("compare", "s = np.nan_to_num(np.asarray(stds, dtype=float), nan=0.0)", "s = np.nan_to_num(np.asarray(stds, dtype=float), nan=1.0)"):
        "only a one-round group has a NaN std, and its weight n - 1 is 0",
}  # fmt: skip

KILLED = ("killed", "timeout", "segfault")


def mutmut(*args: str, log=None) -> subprocess.CompletedProcess:
    # mutmut reads its config from the working directory and, like `python -m pytest`, runs the tests in this
    # interpreter's environment; one thread per process keeps two workers from fighting over two cores
    env = {**os.environ, "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1"}
    command = [str(Path(sys.executable).with_name("mutmut")), *args]
    if log is None:
        return subprocess.run(command, cwd=REPO, env=env, capture_output=True, text=True)
    return subprocess.run(command, cwd=REPO, env=env, stdout=log, stderr=subprocess.STDOUT, text=True)


def statuses() -> dict[str, str]:
    """mutmut's verdict for every mutant it knows (``mutmut results --all true``)."""
    out = mutmut("results", "--all", "true")
    if out.returncode:
        raise SystemExit(f"Error: `mutmut results` failed: {out.stderr.strip().splitlines()[-1:]}")
    found = {}
    for line in out.stdout.splitlines():
        name, sep, status = line.strip().rpartition(": ")
        if sep:
            found[name] = status
    return found


def changed_lines(diff: str) -> tuple[str, str]:
    removed = [line[1:].strip() for line in diff.splitlines() if line.startswith("-") and not line.startswith("---")]
    added = [line[1:].strip() for line in diff.splitlines() if line.startswith("+") and not line.startswith("+++")]
    return " / ".join(removed), " / ".join(added)


def survivor(key: str, name: str) -> dict:
    diff = mutmut("show", name).stdout
    diff = "\n".join(line for line in diff.splitlines() if not line.startswith("# "))
    before, after = changed_lines(diff)
    return {"mutant": name, "before": before, "after": after, "diff": diff.strip(),
            "equivalent": EQUIVALENT.get((key, before, after))}  # fmt: skip


def summarise(key: str, target: Target, verdicts: dict[str, str]) -> dict:
    mine = {n: s for n, s in verdicts.items() if any(fnmatch.fnmatchcase(n, g) for g in target.mutants)}
    counts: dict[str, int] = {}
    for status in mine.values():
        counts[status] = counts.get(status, 0) + 1
    killed = sum(counts.get(s, 0) for s in KILLED)
    survivors = [survivor(key, n) for n, s in sorted(mine.items(), key=lambda kv: _natural(kv[0])) if s == "survived"]
    return {
        "what": target.what,
        "path": target.path,
        "tests": target.tests,
        "mutants": len(mine),
        "killed": killed,
        "score": killed / len(mine) if mine else None,
        "statuses": dict(sorted(counts.items())),
        "equivalent": sum(1 for s in survivors if s["equivalent"]),
        "survivors": survivors,
    }


def _natural(name: str) -> tuple:
    return tuple(int(part) if part.isdigit() else part for part in re.split(r"(\d+)", name))


def percent(value: float | None) -> str:
    return "-" if value is None else f"{value:.1%}"


def markdown(figures: dict, record_path: Path, command: str) -> str:
    overall = figures["overall"]
    lines = [
        f"# Mutation score, {figures['date']}",
        "",
        f"Produced by `{command}` (mutmut {figures['mutmut']}, {figures['max_children']} workers) in "
        f"{figures['seconds'] / 60:.0f} min; the figures with the machine and versions: `{record_path.name}`.",
        "Killed = the tests fail, time out or crash on the mutant; the score is killed / mutants.",
        "",
        "| module | what | tests | mutants | killed | survived | score |",
        "| :--- | :--- | :--- | ---: | ---: | ---: | ---: |",
    ]
    for key, m in figures["modules"].items():
        survived = m["statuses"].get("survived", 0)
        lines.append(f"| `{m['path']}` ({key}) | {m['what']} | `{m['tests']}` | {m['mutants']} | {m['killed']} | "
                     f"{survived} ({m['equivalent']} equivalent) | {percent(m['score'])} |")  # fmt: skip
    lines += [
        f"| **overall** | | | {overall['mutants']} | {overall['killed']} | {overall['survived']} "
        f"({overall['equivalent']} equivalent) | **{percent(overall['score'])}** |",
        "",
        f"Goal: at least {GOAL:.0%} killed on each module. Killed or equivalent: "
        f"{percent(overall['killed_or_equivalent'])}.",
    ]
    other = {s: n for m in figures["modules"].values() for s, n in m["statuses"].items() if s not in (*KILLED, "survived")}
    if other:
        lines += ["", f"Neither killed nor survived (not run, no test reaches them, suspicious): {other}."]
    lines += ["", "## Survivors", ""]
    any_survivor = False
    for key, m in figures["modules"].items():
        for s in m["survivors"]:
            any_survivor = True
            reason = f"equivalent: {s['equivalent']}" if s["equivalent"] else "**needs a test**"
            lines += [f"- `{s['mutant']}` ({key}): {reason}", "", "  ```diff",
                      *[f"  {line}" for line in s["diff"].splitlines()], "  ```", ""]  # fmt: skip
    if not any_survivor:
        lines.append("None.")
    lines += ["", "## Not mutated", "", figures["not_mutated"], ""]
    return "\n".join(lines)


NOT_MUTATED = (
    "mutmut 3 mutates the bodies of plain functions and methods only. Module constants (the thresholds "
    "`CV_LIMIT`, `BIMODAL_MIN_SEPARATION`, `BIMODAL_MIN_GAP`, ...) and decorated functions (`@property`, "
    "`@contextmanager`, `@lru_cache`: `LatencyStats.unstable`, `results.ctrl_c_deferred`, `opset.first_opset`, "
    "the `fold_impl` setter) are not mutated; the tests that pin the thresholds and these functions "
    "(tests/bench/test_stats.py, tests/bench/test_results.py) are their guard."
)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--module", nargs="+", choices=list(TARGETS), default=list(TARGETS), metavar="NAME",
                        help=f"modules to run: {', '.join(TARGETS)} (default: all)")  # fmt: skip
    parser.add_argument("--max-children", type=int, default=2, help="parallel mutant runs (default 2)")
    parser.add_argument("--conditions", default="", help="e.g. 'quiet machine' or 'other jobs running'")
    args = parser.parse_args()
    if args.max_children < 1:
        parser.error("--max-children must be at least 1")
    try:
        from importlib.metadata import version

        mutmut_version = version("mutmut")
    except Exception:  # noqa: BLE001  (PackageNotFoundError, or a broken install)
        raise SystemExit("Error: mutmut is not installed; run `.venv/bin/pip install -c constraints.txt -e '.[mutation]'`.") from None
    if int(mutmut_version.split(".")[0]) < 3:
        raise SystemExit(f"Error: mutmut {mutmut_version} rewrites the source in place; install mutmut>=3.4.")

    record = Record("mutation")
    started = time.monotonic()
    log_path = REPO / "mutants" / "mutation-run.log"
    log_path.parent.mkdir(exist_ok=True)
    commands = []
    with open(log_path, "w") as log:
        for key in args.module:
            # Named mutants are always run afresh, so a result never comes from an older version of the file
            run = ["run", "--max-children", str(args.max_children), *TARGETS[key].mutants]
            commands.append(shlex.join(["mutmut", *run]))
            print(f"{key}: {commands[-1]}", flush=True)
            tick = time.monotonic()
            done = mutmut(*run, log=log)
            if done.returncode:
                raise SystemExit(f"Error: mutmut stopped on {key} (exit {done.returncode}); see {log_path}.")
            print(f"{key}: done in {time.monotonic() - tick:.0f} s", flush=True)

    verdicts = statuses()
    modules = {key: summarise(key, TARGETS[key], verdicts) for key in args.module}
    total = sum(m["mutants"] for m in modules.values())
    killed = sum(m["killed"] for m in modules.values())
    equivalent = sum(m["equivalent"] for m in modules.values())
    figures = {
        "date": record.started.date().isoformat(),
        "mutmut": mutmut_version,
        "max_children": args.max_children,
        "seconds": round(time.monotonic() - started),
        "goal": GOAL,
        "mutmut_commands": commands,
        "overall": {
            "mutants": total,
            "killed": killed,
            "survived": sum(m["statuses"].get("survived", 0) for m in modules.values()),
            "equivalent": equivalent,
            "score": killed / total if total else None,
            "killed_or_equivalent": (killed + equivalent) / total if total else None,
        },
        "modules": modules,
        "not_mutated": NOT_MUTATED,
    }
    path = record.save(figures, args.conditions)
    command = shlex.join(["python", "scripts/mutation.py", *sys.argv[1:]])
    from mbbench._io import atomic_write_text

    text = markdown(figures, path, command)
    atomic_write_text(path.with_suffix(".md"), text)
    print(text.split("\n## Survivors")[0])
    print(f"result: {path.with_suffix('.md')}")


if __name__ == "__main__":
    main()
