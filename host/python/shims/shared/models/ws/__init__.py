"""Stand-in for `shared.models.ws`: only what AstraFlow handlers import is provided."""
