"""What every measurement of the lab shares: its database and environment, results, report, plots,
OTLP sink, targets."""
