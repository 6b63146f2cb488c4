"""perf/bench/run.py --plot draws its pictures headless from the run's results (the figures here are made up)."""

from perf.bench.checkout.statements import StatementCount
from perf.bench.common.plots import CLOSE_LAG_PNG, CURVE_PNG, STATEMENTS_PNG, draw_all
from perf.bench.common.results import Results
from perf.bench.timeout.results import Steady, TimeoutResults

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


def results_of_a_run() -> Results:
    results = Results()
    for part, per_second in (
        ("tracing off distinct", 100.0),
        ("always_off distinct", 98.0),
        ("1 % sampled distinct", 97.0),
        ("10 % sampled distinct", 95.0),
        ("tracing on distinct", 86.0),
        ("tracing on+store distinct", 80.0),
    ):
        samples = results.samples(part)
        samples.per_second += [per_second, per_second + 2]
        samples.p50 += [0.030, 0.031]
        samples.p99 += [0.080, 0.090]
    results.statement_counts = [StatementCount(lines, 12, 2, 13, 2) for lines in (1, 10, 50)]
    return results


def test_the_plots_are_written_as_pngs_and_the_close_lag_is_skipped_without_its_data(tmp_path):
    notes = draw_all(results_of_a_run(), tmp_path)

    for name in (CURVE_PNG, STATEMENTS_PNG):
        assert (tmp_path / name).read_bytes().startswith(PNG_MAGIC)
    assert not (tmp_path / CLOSE_LAG_PNG).exists()
    assert notes[-1] == "plot timeout close lag: skipped (no data in this run)"


def test_the_close_lag_is_drawn_from_the_timeout_benchs_steady_runs(tmp_path):
    results = Results()
    results.timeouts = TimeoutResults(
        steadies=[Steady(broker="orm", placed=3, closed=3, rate=50.0, lags=[2.0, 9.5, 31.0])]
    )

    draw_all(results, tmp_path)

    assert (tmp_path / CLOSE_LAG_PNG).read_bytes().startswith(PNG_MAGIC)
    assert not (tmp_path / CURVE_PNG).exists()  # no curve in these results
