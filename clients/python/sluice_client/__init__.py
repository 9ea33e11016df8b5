"""sluice_client: a typed Python client for the sluice job orchestrator."""

from .client import DEFAULT_SERVER, ROUTES, TERMINAL, Client, SluiceError
from .types import JobList, JobView, LogChunk

__all__ = [
    "Client",
    "SluiceError",
    "JobView",
    "JobList",
    "LogChunk",
    "ROUTES",
    "TERMINAL",
    "DEFAULT_SERVER",
]
