"""Self time and the critical path of a trace, on hand-built span trees (traces.analysis: pure functions)."""

from traces.analysis import Interval, Section, critical_path, on_critical_path, self_times, union_length
from traces.monitor import percentile


def span(span_id, parent, start, end):
    return Interval(span_id, parent, start, end)


def test_union_length_counts_overlaps_once():
    assert union_length([(0, 10), (5, 15), (20, 25), (21, 22), (30, 30)]) == 20
    assert union_length([]) == 0


def test_self_time_subtracts_the_union_of_overlapping_children():
    spans = [
        span("root", "", 0, 100),
        span("a", "root", 10, 40),
        span("b", "root", 30, 60),  # overlaps a: 10..60 is covered once
        span("c", "root", 80, 90),
        span("a1", "a", 15, 20),
    ]
    assert self_times(spans) == {"root": 100 - 50 - 10, "a": 30 - 5, "b": 30, "c": 10, "a1": 5}


def test_self_time_counts_only_the_part_of_a_child_inside_its_parent():
    spans = [span("root", "", 0, 50), span("late", "root", 40, 70), span("early", "root", -10, 5)]
    assert self_times(spans)["root"] == 50 - 10 - 5


def test_a_span_whose_parent_is_elsewhere_is_a_root():
    spans = [span("local", "remote-parent", 0, 10), span("child", "local", 2, 4)]
    assert self_times(spans) == {"local": 8, "child": 2}
    assert critical_path(spans) == [Section("local", 4, 10), Section("child", 2, 4), Section("local", 0, 2)]


def test_sequential_children_are_all_on_the_critical_path():
    # create_order's steps run one after another: every step decides the end.
    spans = [
        span("root", "", 0, 100),
        span("s1", "root", 10, 30),
        span("s2", "root", 30, 60),  # starts exactly where s1 ends
        span("s3", "root", 65, 90),
    ]
    assert critical_path(spans) == [
        Section("root", 90, 100),
        Section("s3", 65, 90),
        Section("root", 60, 65),
        Section("s2", 30, 60),
        Section("s1", 10, 30),
        Section("root", 0, 10),
    ]
    assert on_critical_path(spans) == {"root": 25, "s1": 20, "s2": 30, "s3": 25}


def test_of_concurrent_children_only_the_last_to_finish_is_on_the_path():
    spans = [
        span("root", "", 0, 100),
        span("fast", "root", 10, 50),
        span("slow", "root", 10, 80),  # runs alongside fast and ends later
        span("before", "root", 2, 8),
    ]
    path = critical_path(spans)
    assert [section.span_id for section in path] == ["root", "slow", "root", "before", "root"]
    assert "fast" not in on_critical_path(spans)
    assert path[1] == Section("slow", 10, 80) and path[2] == Section("root", 8, 10)


def test_the_path_descends_into_the_last_finishing_grandchild():
    spans = [
        span("root", "", 0, 100),
        span("create_order", "root", 20, 90),
        span("save_order", "create_order", 30, 50),
        span("insert", "save_order", 35, 45),
        span("select", "create_order", 60, 85),
        span("auth", "root", 5, 15),
    ]
    assert critical_path(spans) == [
        Section("root", 90, 100),
        Section("create_order", 85, 90),
        Section("select", 60, 85),
        Section("create_order", 50, 60),
        Section("save_order", 45, 50),
        Section("insert", 35, 45),
        Section("save_order", 30, 35),
        Section("create_order", 20, 30),
        Section("root", 15, 20),
        Section("auth", 5, 15),
        Section("root", 0, 5),
    ]


def test_a_child_that_overflows_its_parent_is_clipped_to_it():
    # A child that ends after its parent (an async call): it decides the parent's end only up to that end.
    spans = [span("root", "", 0, 50), span("async", "root", 30, 200), span("outside", "root", 60, 70)]
    assert critical_path(spans) == [Section("async", 30, 50), Section("root", 0, 30)]
    assert self_times(spans)["root"] == 30


def test_an_empty_trace_has_no_path():
    assert critical_path([]) == [] and on_critical_path([]) == {} and self_times([]) == {}


def test_percentile_is_the_nearest_rank():
    values = list(range(1, 101))
    assert [percentile(values, p) for p in (50, 95, 99, 100)] == [50, 95, 99, 100]
    assert percentile([7], 95) == 7 and percentile([], 50) is None
    assert percentile([1, 2, 3, 4], 50) == 2 and percentile([1, 2, 3, 4], 51) == 3
