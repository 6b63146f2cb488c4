"""Start processes, threads and an OTLP receiver for the tests and the perf lab (neither imports the other)."""
