"""The shapes of sluice's API answers, as TypedDicts (checked against /openapi.json by the tests).

Each key listed here is a property of the schema of the same name in the server's OpenAPI
document; `tests/test_live.py` fails if one drifts.
"""

from __future__ import annotations

from typing import Any, Dict, List, Optional, TypedDict


class PodDemandView(TypedDict):
    role: str
    count: int
    cpu_milli: int
    memory_mib: int


class DemandView(TypedDict):
    pods: List[PodDemandView]
    total_cpu_milli: int
    total_memory_mib: int


class WaitInfo(TypedDict, total=False):
    position: int
    reason: str
    reason_kind: str


class JobView(TypedDict, total=False):
    id: str
    namespace: str
    name: str
    level: str
    state: str
    attempt: int
    labels: Dict[str, str]
    created_at: str
    enqueued_at: str
    updated_at: str
    started_at: Optional[str]
    finished_at: Optional[str]
    backend_ref: Optional[str]
    exit_code: Optional[int]
    message: Optional[str]
    demand: DemandView
    wait: Optional[WaitInfo]
    timeline: Optional[List[Dict[str, Any]]]
    orchestration: Optional[Dict[str, Any]]
    spec: Dict[str, Any]


class JobList(TypedDict):
    jobs: List[JobView]
    next_cursor: Optional[str]


class LogChunk(TypedDict):
    data: str
    next_offset: int
    complete: bool
    state: str
    attempt: int


#: The JobView keys this client reads; checked against the OpenAPI schema `JobView`.
JOB_VIEW_KEYS = [k for k in JobView.__annotations__]
#: The LogChunk keys; checked against the OpenAPI schema of the logs answer.
LOG_CHUNK_KEYS = [k for k in LogChunk.__annotations__]
