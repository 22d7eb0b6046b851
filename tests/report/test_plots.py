import struct

import pytest
from matplotlib.image import imread

from mbbench.errors import UserInputError
from mbbench.report import (
    PLOT_FILES,
    load,
    plot_latency_vs_macs,
    plot_latency_vs_threads,
    plot_overview,
    plot_speedup,
    save_figure,
    write_plots,
)

from .builders import result_row, write_csv

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


def assert_png(path, min_size=(300, 300)):
    data = path.read_bytes()
    assert data[:8] == PNG_SIGNATURE
    width, height = struct.unpack(">II", data[16:24])  # IHDR follows the signature
    assert width >= min_size[0] and height >= min_size[1]
    assert imread(path).shape[:2] == (height, width)  # decodes in full


def _texts(fig):
    axes = [ax for ax in fig.get_axes() if ax.get_visible()]
    return axes, [ax.get_xlabel() for ax in axes], [ax.get_ylabel() for ax in axes]


def test_latency_vs_threads_labels_and_error_bars(study_csv):
    fig = plot_latency_vs_threads(load(study_csv), "mean")
    (ax,), xlabels, ylabels = _texts(fig)
    assert xlabels == ["intra-op threads"]
    assert ylabels == ["mean latency (ms), error bars ±1 std"]
    assert "hostA (CPU-X)" in ax.get_title()
    assert len(ax.containers) == 3  # one errorbar container per model


def test_speedup_has_ideal_line(study_csv):
    fig = plot_speedup(load(study_csv))
    (ax,), _, ylabels = _texts(fig)
    labels = [line.get_label() for line in ax.get_lines()]
    assert "ideal (linear)" in labels and ylabels == ["speed-up vs 1 thread (x)"]


def test_latency_vs_macs_one_panel_per_thread_count(study_csv):
    fig = plot_latency_vs_macs(load(study_csv), metric="p90")
    axes, xlabels, ylabels = _texts(fig)
    assert [ax.get_title().splitlines()[0] for ax in axes] == ["1 thread", "2 threads", "4 threads"]
    assert set(xlabels) == {"MACs (G, multiply-accumulates)"} and set(ylabels) == {"p90 latency (ms)"}
    assert [len(ax.texts) for ax in axes] == [3, 3, 2]  # a name per point


def test_latency_vs_macs_needs_macs(tmp_path):
    results = load(write_csv(tmp_path / "r.csv", [result_row("m", 1, 1.0, 0.1)]))
    with pytest.raises(UserInputError, match="MACs"):
        plot_latency_vs_macs(results)


def test_overview_png(study_csv, tmp_path):
    path = save_figure(plot_overview(load(study_csv)), tmp_path / "overview.png")
    assert_png(path, min_size=(1000, 800))
    assert sorted(p.name for p in tmp_path.iterdir()) == ["overview.png", "study.csv"]  # no temporary file


def test_write_plots_writes_each(study_csv, tmp_path):
    written = write_plots(load(study_csv), tmp_path / "new" / "plots")
    assert [p.name for p in written] == list(PLOT_FILES)
    for path in written:
        assert_png(path)


def test_write_plots_skips_macs_plot_without_macs(tmp_path):
    rows = [result_row("a", 1, 1.0, 0.1), result_row("a", 2, 0.6, 0.1), result_row("b", 1, 2.0, 0.1)]
    written = write_plots(load(write_csv(tmp_path / "r.csv", rows)), tmp_path / "plots")
    assert [p.name for p in written] == ["latency_vs_threads.png", "speedup_vs_threads.png"]


def test_multiple_machines_and_repeated_runs(tmp_path):
    a = write_csv(tmp_path / "a.csv", [result_row("m", t, 1.0 / t, 0.01, host=h) for t in (1, 2) for h in "xy"])
    b = write_csv(tmp_path / "b.csv", [result_row("m", t, 1.1 / t, 0.01, host="x") for t in (1, 2)])
    fig = plot_latency_vs_threads(load([a, b]))
    first, second = fig.get_axes()
    assert first.get_legend_handles_labels()[1] == ["m [a]", "m [b]"]
    assert second.get_legend_handles_labels()[1] == ["m"]  # y has a single run
    assert "y (CPU-X)" in second.get_title()


def test_save_figure_wants_png(study_csv, tmp_path):
    with pytest.raises(UserInputError, match=r"\.png"):
        save_figure(plot_speedup(load(study_csv)), tmp_path / "speedup.jpg")
    assert list(tmp_path.iterdir()) == [tmp_path / "study.csv"]


def test_failed_write_leaves_old_file(study_csv, tmp_path):
    target = tmp_path / "plot.png"
    target.write_bytes(b"old")
    fig = plot_speedup(load(study_csv))

    def broken(*args, **kwargs):
        raise RuntimeError("renderer crashed")

    fig.savefig = broken
    with pytest.raises(RuntimeError):
        save_figure(fig, target)
    assert target.read_bytes() == b"old"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["plot.png", "study.csv"]


@pytest.mark.parametrize("plot", [plot_latency_vs_threads, plot_speedup])
def test_every_legend_entry_of_the_whole_zoo_is_inside_the_figure(tmp_path, plot):
    """31 series: one column would run off the bottom of the figure (entries 26-31 were lost); every entry's
    text is drawn inside the saved image, and no two entries overlap."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg

    from mbbench.models.zoo import list_models, model_info

    rows = []
    for name in list_models():
        family = model_info(name).family
        rows += [result_row(name, t, 10.0 / t, 0.2, family=family, unstable=(t == 2)) for t in (1, 2)]
    fig = plot(load(write_csv(tmp_path / "zoo.csv", rows)), "mean")
    canvas = FigureCanvasAgg(fig)
    canvas.draw()
    renderer = canvas.get_renderer()
    (legend,) = fig.subfigs[0].legends
    texts = legend.get_texts()
    assert {t.get_text() for t in texts} >= set(list_models())
    frame = fig.bbox
    boxes = [t.get_window_extent(renderer) for t in texts]
    for text, box in zip(texts, boxes):
        assert frame.x0 <= box.x0 and box.x1 <= frame.x1 and frame.y0 <= box.y0 and box.y1 <= frame.y1, text
    for i, a in enumerate(boxes):
        assert not any(a.overlaps(b) for b in boxes[i + 1:]), texts[i].get_text()


@pytest.mark.parametrize("with_macs", [False, True])
def test_the_overview_title_is_clear_of_its_legend(tmp_path, with_macs):
    """Without MACs the panels' legend once shared the title's subfigure and its first entries were drawn over the
    machine's title."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg

    from mbbench.models.zoo import list_models

    rows = [result_row(name, t, 10.0 / t, 0.2, unstable=(t == 2), **({"macs": 1e8 * (i + 1)} if with_macs else {}))
            for i, name in enumerate(list_models()) for t in (1, 2)]
    fig = plot_overview(load(write_csv(tmp_path / "zoo.csv", rows)), "mean")
    canvas = FigureCanvasAgg(fig)
    canvas.draw()
    renderer = canvas.get_renderer()
    (machine,) = fig.subfigs
    title = machine._suptitle.get_window_extent(renderer)
    legends = [legend for sub in [machine, *machine.subfigs] for legend in sub.legends]
    assert legends and not any(title.overlaps(legend.get_window_extent(renderer)) for legend in legends)
