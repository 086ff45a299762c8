"""Stand-in for `worker.agent.runner`: the `ExecutionContext` handlers receive (spec §6.2).

Handlers import it for type hints (`from worker.agent.runner import ExecutionContext`); the
bridge builds one per task.
"""

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Dict, List, Optional


class ResourceUnavailable(LookupError):
    """Raised by the stub registry: this worker manages no shared resources."""


class ResourceRegistry:
    """The worker's resource registry. astra-worker registers no resources, so every lookup
    is empty and leasing fails with a clear error rather than an AttributeError."""

    def list(self) -> List[Any]:
        return []

    def get(self, resource_id: str) -> Optional[Any]:
        return None

    def lease(self, resource_id: str, *args: Any, **kwargs: Any) -> Any:
        raise ResourceUnavailable(
            f"resource {resource_id!r} is not registered on this worker "
            "(astra-worker does not manage shared resources)"
        )

    def release(self, *args: Any, **kwargs: Any) -> None:
        return None


@dataclass
class ExecutionContext:
    run_id: str
    task_id: str
    node_id: str
    package_name: str
    package_version: str
    params: Dict[str, Any]
    data_dir: Path
    tenant: str
    feedback: Any
    metadata: Dict[str, Any] = field(default_factory=dict)
    resource_refs: Optional[List[Any]] = None
    resource_registry: Any = field(default_factory=ResourceRegistry)
    leased_resources: Dict[str, Any] = field(default_factory=dict)
    trace: Any = None
    # Not in the Python worker's context; harmless extras some handlers may find useful.
    node_type: Optional[str] = None
    worker_id: Optional[str] = None
