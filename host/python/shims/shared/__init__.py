"""Stand-in for the AstraFlow `shared` package (import shim for handlers)."""
