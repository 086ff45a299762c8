"""Stand-in for `shared.models`: only what AstraFlow handlers import is provided."""
