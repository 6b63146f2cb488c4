"""The checkout's cost: the tracing curve's HTTP rounds, its statements, the raw-driver floor, the layers,
gRPC."""
