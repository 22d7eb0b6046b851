import math
import numpy as np
import pandas as pd
import pytest

from mbbench.errors import UserInputError
from mbbench.report import REQUIRED_COLUMNS, filter_results, load, model_order
from mbbench.report.load import family_of, natural_key

from .builders import REQUIRED, result_row, shifted_samples, write_csv


def test_required_columns_are_the_bench_schema():
    assert list(REQUIRED_COLUMNS) == REQUIRED


def test_load_orders_by_family_then_size_then_threads(study_csv):
    results = load(study_csv)
    assert list(results["model"]) == ["mobileone-s0"] * 3 + ["mobilevit-xxs"] * 2 + ["mobilevit-xs"] * 3
    assert list(results["threads"]) == [1, 2, 4, 1, 2, 1, 2, 4]
    assert results["machine"].unique().tolist() == ["hostA (CPU-X)"]
    assert results["run"].unique().tolist() == ["study"]
    assert results["oversubscribed"].tolist() == [False, False, True, False, False, False, False, True]
    assert results["samples"].isna().all()


def test_natural_order_without_params_handles_mobilevit_letters_and_numbers():
    names = ["mobilevitv2-200", "act-relu", "mobilevit-s", "mobileone-s10", "mobilevitv2-050", "mobilevit-xxs",
             "mobileone-s2", "mobilevit-xs", "zzz", "mobilevitv2-075"]  # fmt: skip
    frame = pd.DataFrame({"model": names, "family": [family_of(n) for n in names], "params": np.nan})
    assert model_order(frame) == [
        "mobileone-s2", "mobileone-s10", "mobilevit-xxs", "mobilevit-xs", "mobilevit-s",
        "mobilevitv2-050", "mobilevitv2-075", "mobilevitv2-200", "act-relu", "zzz",
    ]  # fmt: skip
    assert natural_key("mobilevit-xxs") < natural_key("mobilevit-xs") < natural_key("mobilevit-s")


def test_family_from_name_when_column_missing_or_empty(tmp_path):
    rows = [result_row("mobilevitv2-050", 1, 3.0, 0.1), result_row("mobileone-s1", 1, 2.0, 0.1, family="")]
    results = load(write_csv(tmp_path / "r.csv", rows))
    assert dict(zip(results["model"], results["family"])) == {"mobileone-s1": "mobileone", "mobilevitv2-050": "mobilevitv2"}


def test_minimal_phone_csv_with_only_required_columns(tmp_path):
    frame = pd.DataFrame([result_row("act-relu", 1, 1.5, 0.1)])[REQUIRED]
    path = tmp_path / "phone.csv"
    frame.to_csv(path, index=False)
    results = load(path)
    assert results.loc[0, "machine"] == "unknown host"
    assert results.loc[0, "family"] == "other"
    assert np.isnan(results.loc[0, "macs"]) and np.isnan(results.loc[0, "params"])
    assert not results.loc[0, "oversubscribed"] and not results.loc[0, "unstable"]


def test_bool_flags_parse_text(tmp_path):
    rows = [result_row("a", 1, 1.0, 0.1, unstable="yes", oversubscribed="False"),
            result_row("b", 1, 1.0, 0.1, unstable="", oversubscribed="1")]  # fmt: skip
    results = load(write_csv(tmp_path / "r.csv", rows))
    assert results["unstable"].tolist() == [True, False]
    assert results["oversubscribed"].tolist() == [False, True]


def test_rows_repeated_across_csvs_are_labelled_by_run(tmp_path):
    a = write_csv(tmp_path / "a.csv", [result_row("m", 1, 1.0, 0.1)])
    b = write_csv(tmp_path / "b.csv", [result_row("m", 1, 2.0, 0.1)])
    results = load([a, b])
    assert results[["run", "mean_ms"]].values.tolist() == [["a", 1.0], ["b", 2.0]]


def test_rows_repeated_inside_one_csv_are_numbered_runs(tmp_path):
    rows = [result_row("m", 1, 1.0, 0.1), result_row("m", 2, 0.6, 0.1),
            result_row("m", 1, 1.1, 0.1), result_row("m", 2, 0.7, 0.1)]  # fmt: skip
    results = load(write_csv(tmp_path / "log.csv", rows))
    assert results[["run", "threads", "mean_ms"]].values.tolist() == [
        ["log#1", 1, 1.0], ["log#1", 2, 0.6], ["log#2", 1, 1.1], ["log#2", 2, 0.7]
    ]  # fmt: skip


def test_same_stem_in_two_directories_keeps_paths_apart(tmp_path):
    (tmp_path / "x").mkdir()
    (tmp_path / "y").mkdir()
    a = write_csv(tmp_path / "x" / "r.csv", [result_row("m", 1, 1.0, 0.1)])
    b = write_csv(tmp_path / "y" / "r.csv", [result_row("m", 1, 2.0, 0.1)])
    assert load([a, b])["run"].tolist() == [str(a), str(b)]


def test_samples_sidecar_is_attached(tmp_path):
    samples = shifted_samples(seed=1)
    path = write_csv(tmp_path / "r.csv", [result_row("mobileone-s0", t, 1.0, 0.1) for t in (1, 2)], samples)
    results = load(path, samples=True)
    np.testing.assert_array_equal(results.loc[0, "samples"], samples[("mobileone-s0", 1)])
    np.testing.assert_array_equal(results.loc[1, "samples"], samples[("mobileone-s0", 2)])


def test_samples_of_appended_runs_match_by_timestamp(tmp_path):
    # `mbbench bench --append` twice: the same (model, threads, host) twice, told apart by the timestamp
    rows = [result_row("m", 1, 1.0, 0.1, timestamp="t1"), result_row("m", 1, 2.0, 0.1, timestamp="t2")]
    path = write_csv(tmp_path / "log.csv", rows)
    pd.DataFrame(
        [{"model": "m", "threads": 1, "file": "m.onnx", "sha256": "", "host": "hostA", "timestamp": t, "round": i,
          "ms": v} for t, values in (("t1", [1.0, 1.1]), ("t2", [2.0, 2.1, 2.2])) for i, v in enumerate(values, 1)]
    ).to_csv(tmp_path / "log.samples.csv", index=False)  # fmt: skip
    results = load(path, samples=True)
    assert results["run"].tolist() == ["log#1", "log#2"]
    assert [list(s) for s in results["samples"]] == [[1.0, 1.1], [2.0, 2.1, 2.2]]


def test_missing_sidecar_leaves_samples_unknown(study_csv):
    assert load(study_csv, samples=True)["samples"].isna().all()


# --- bad input: one sentence each --------------------------------------------------------------------------


def test_missing_file(tmp_path):
    with pytest.raises(UserInputError, match=r"does not exist"):
        load(tmp_path / "nope.csv")


def test_empty_file(tmp_path):
    path = tmp_path / "empty.csv"
    path.write_text("")
    with pytest.raises(UserInputError, match=r"is empty"):
        load(path)


def test_header_only_file(tmp_path):
    path = tmp_path / "header.csv"
    path.write_text(",".join(REQUIRED) + "\n")
    with pytest.raises(UserInputError, match=r"no result rows"):
        load(path)


def test_wrong_schema_names_missing_columns(tmp_path):
    path = tmp_path / "other.csv"
    pd.DataFrame([result_row("m", 1, 1.0, 0.1)]).drop(columns=["p90_ms", "rounds"]).to_csv(path, index=False)
    with pytest.raises(UserInputError, match=r"missing columns: rounds, p90_ms\)"):
        load(path)


def test_non_numeric_value_names_line_and_column(tmp_path):
    rows = [result_row("m", 1, 1.0, 0.1), result_row("m", 2, 1.0, 0.1)]
    rows[1]["mean_ms"] = "fast"
    with pytest.raises(UserInputError, match=r"line 3: column mean_ms holds 'fast'"):
        load(write_csv(tmp_path / "r.csv", rows))


def test_binary_file(tmp_path):
    path = tmp_path / "model.onnx"
    path.write_bytes(bytes(range(256)) * 4)
    with pytest.raises(UserInputError):
        load(path)


def test_same_file_twice(study_csv):
    with pytest.raises(UserInputError, match=r"given twice"):
        load([study_csv, study_csv])


def test_broken_sidecar_is_named(tmp_path):
    path = write_csv(tmp_path / "r.csv", [result_row("m", 1, 1.0, 0.1)])
    (tmp_path / "r.samples.csv").write_text("model,threads\nm,1\n")
    with pytest.raises(UserInputError, match=r"r\.samples\.csv .*missing columns: ms"):
        load(path, samples=True)
    assert len(load(path)) == 1  # a table without --compare/--combine does not need the sidecar


def test_filter_keeps_matching_rows(study_csv):
    results = filter_results(load(study_csv), models=["mobilevit-*"], threads=[2, 4])
    assert results[["model", "threads"]].values.tolist() == [["mobilevit-xxs", 2], ["mobilevit-xs", 2], ["mobilevit-xs", 4]]


def test_filter_leaving_nothing_says_what_exists(study_csv):
    with pytest.raises(UserInputError, match=r"No rows left after filtering \(threads 8\).*threads 1, 2, 4"):
        filter_results(load(study_csv), threads=[8])



def test_contended_columns_are_optional_and_marked(tmp_path):
    from mbbench.report import render

    old = write_csv(tmp_path / "old.csv", [result_row("m", 1, 10.0, 1.0)])
    assert not load(old)["contended"].any()
    new = write_csv(tmp_path / "new.csv", [
        result_row("m", 1, 10.0, 1.0, contended=True, others_cpu_pct=85.5, loadavg_1m=2.1),
        result_row("m", 2, 6.0, 0.5, contended=False, others_cpu_pct="", loadavg_1m=0.2),
    ])  # fmt: skip
    results = load(new)
    assert results["contended"].tolist() == [True, False]
    assert results["others_cpu_pct"].iloc[0] == 85.5 and math.isnan(results["others_cpu_pct"].iloc[1])
    text = render(results, "markdown", "mean")
    assert "| m | 10.00 ± 1.00 ‡ | 6.00 ± 0.50 |" in text
    assert "‡ contended: other processes used a meaningful share of the cores" in text


def test_families_in_zoo_order_whatever_their_size():
    names = ["mobileformer-26m", "mobilevitv2-050", "mobilevit-xxs", "fastvit-t8", "mobileone-s0", "mobilenetv3-large"]
    params = [9e6, 8e6, 7e6, 4e6, 5e6, 6e6]  # sizes disagree with the family order: the family wins
    frame = pd.DataFrame({"model": names, "family": [family_of(n) for n in names], "params": params})
    assert model_order(frame) == [
        "mobilenetv3-large", "mobileone-s0", "fastvit-t8", "mobilevit-xxs", "mobilevitv2-050", "mobileformer-26m",
    ]  # fmt: skip
