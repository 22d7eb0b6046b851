"""Every row's label says what it measured (issue 20, A2): precision, input size and opset where rows differ."""

from mbbench.bench.formatting import row_facts, variant_labels
from mbbench.bench.summary import footer_lines, summary_grid

SHA = {k: k * 64 for k in "abcdef"}


def row(model, precision="fp32", size=224, opset=17, sha="a", **extra):
    return {"model": model, "threads": 1, "mean_ms": 1.0, "std_ms": 0.1, "precision": precision,
            "input_shape": f"1x3x{size}x{size}", "opset": opset, "sha256": SHA[sha], **extra}


def test_a_name_measured_in_two_precisions_says_each():
    # the case: an int8 run beside an earlier fp32 run, both labelled by the bare name
    labels, networks, shared = variant_labels([row("mobileone-s0", "int8", sha="b"), row("mobileone-s0")])
    assert labels == ["mobileone-s0 (int8)", "mobileone-s0 (fp32)"]
    assert networks == ["mobileone-s0", "mobileone-s0"]
    assert shared == ["224x224 input", "opset 17", "runtime onnxruntime"]


def test_uniform_facts_are_said_once_and_mixed_ones_on_every_row():
    labels, _, shared = variant_labels([row("act-relu"), row("act-gelu", sha="b")])
    assert labels == ["act-relu", "act-gelu"] and shared == ["fp32", "224x224 input", "opset 17", "runtime onnxruntime"]
    labels, _, shared = variant_labels([row("mobileone-s0", opset=12), row("mobilevit-xxs", size=256, sha="b")])
    assert labels == ["mobileone-s0 (224px, opset 12)", "mobilevit-xxs (256px, opset 17)"] and shared == ["fp32", "runtime onnxruntime"]


def test_bench_stem_labels_read_as_the_network_and_its_facts():
    facts = row_facts({"model": "mobilevitv2-050-256-opset18-col2im-int8", "opset": 18})
    assert (facts["name"], facts["precision"], facts["size"], facts["fold"]) == ("mobilevitv2-050", "int8", "256",
                                                                                  "col2im")
    assert row_facts({"model": "mobileone-s0-224-opset12-unfused"})["unfused"] == "unfused"
    # a name that merely looks alike (its opset disagrees with the row's) is left alone
    assert row_facts({"model": "net-1-opset2", "opset": 13})["name"] == "net-1-opset2"


def test_two_files_that_would_read_the_same_are_told_apart():
    labels, _, _ = variant_labels([row("mobilevitv2-050", fold="col2im", sha="a"),
                                   row("mobilevitv2-050", fold="pixel", sha="b"),
                                   row("mobileone-s0", sha="c"), row("mobileone-s0", sha="d")])
    assert labels == ["mobilevitv2-050 (fold col2im)", "mobilevitv2-050 (fold pixel)",
                      "mobileone-s0 (sha256 cccccccc)", "mobileone-s0 (sha256 dddddddd)"]
    # the same file at two thread counts is one label
    labels, _, _ = variant_labels([row("mobileone-s0"), {**row("mobileone-s0"), "threads": 2}])
    assert labels == ["mobileone-s0", "mobileone-s0"]


def test_the_bench_summary_uses_the_labels_and_says_what_is_shared():
    rows = [row("mobileone-s0-224-opset17"), row("mobileone-s0-224-opset17-int8", "int8", sha="b")]
    _, lines = summary_grid(rows)
    assert [label for label, _ in lines] == ["mobileone-s0 (fp32)", "mobileone-s0 (int8)"]
    assert footer_lines(rows)[0] == "Every row: 224x224 input, opset 17, runtime onnxruntime."


def test_many_flagged_rows_are_summarised_not_listed():
    rows = [{**row(f"net{i}", sha="abcdef"[i % 6]), "unstable": True, "cv": 0.3, "rounds": 10, "p50_ms": 1.0,
             "min_ms": 0.5, "max_ms": 3.0} for i in range(5)]
    lines = footer_lines(rows)
    flagged = [line for line in lines if line.startswith("  ")]
    assert lines[1].startswith("! unstable (5 of 5 rows)")
    assert len(flagged) == 4 and flagged[-1].startswith("  and 2 more")


def test_rows_of_several_runtimes_say_each_and_one_runtime_is_said_once():
    rows = [row("mobileone-s0"), {**row("mobileone-s0", sha="b"), "runtime": "mnn"}]
    labels, networks, shared = variant_labels(rows)
    assert labels == ["mobileone-s0 (onnxruntime)", "mobileone-s0 (mnn)"] and "runtime onnxruntime" not in shared
    assert networks == labels  # a precision comparison never pairs two runtimes
    legacy = {k: v for k, v in row("mobileone-s0").items() if k != "runtime"}  # a CSV from before runtimes
    assert variant_labels([legacy])[2][-1] == "runtime onnxruntime"


def test_rows_run_with_different_runtime_settings_say_the_settings_that_differ():
    """One file with ORT's arena on and off (mbbench bench --runtime-option ...): the rows once read the same."""
    on = "arena=on;graph_opt=ORT_ENABLE_ALL;mem_pattern=on"
    labels, _, _ = variant_labels([
        row("mobileone-s0", applied_settings=on),
        row("mobileone-s0", applied_settings=on.replace("arena=on", "arena=off")),
        row("mobileone-s0", applied_settings=on.replace("mem_pattern=on", "mem_pattern=off")),
        row("mobilevit-xxs", sha="b", applied_settings=on),  # alone under its name: nothing to tell apart
        row("mobilevit-xxs", sha="b"),  # no settings read back (an older CSV): left as it was
    ])
    assert labels == ["mobileone-s0 (arena=on, mem_pattern=on)", "mobileone-s0 (arena=off, mem_pattern=on)",
                      "mobileone-s0 (arena=on, mem_pattern=off)", "mobilevit-xxs", "mobilevit-xxs"]
