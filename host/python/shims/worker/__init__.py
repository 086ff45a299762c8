"""Stand-in for the AstraFlow Python worker's `worker` package (import shim for handlers)."""
