"""Stand-in for `worker.agent`: only what AstraFlow handlers import is provided."""
