"""A small, typed client for sluice's HTTP API, on the standard library only.

    from sluice_client import Client
    c = Client()                                  # SLUICE_SERVER / SLUICE_TOKEN, else localhost
    job = c.submit(open("examples/pi.yaml").read())
    done = c.wait(job["id"], progress=print)
    print(done["state"], c.logs(job["id"]))
"""

from __future__ import annotations

import json
import os
import ssl
import time
import urllib.error
import urllib.parse
import urllib.request
from typing import Any, Callable, Iterator, List, Mapping, Optional, Union

from .types import JobList, JobView, LogChunk

DEFAULT_SERVER = "http://127.0.0.1:7467"
#: The API paths this client calls, as (method, OpenAPI path); checked against /openapi.json.
ROUTES = [
    ("post", "/v1/jobs"),
    ("get", "/v1/jobs"),
    ("get", "/v1/jobs/{id}"),
    ("get", "/v1/jobs/{id}/logs"),
    ("post", "/v1/jobs/{id}/cancel"),
    ("get", "/v1/queues"),
    ("get", "/v1/cluster"),
    ("get", "/v1/schedules"),
    ("post", "/v1/schedules"),
    ("get", "/v1/schedules/{namespace}/{name}"),
    ("delete", "/v1/schedules/{namespace}/{name}"),
    ("post", "/v1/schedules/{namespace}/{name}/trigger"),
    ("post", "/v1/schedules/{namespace}/{name}/suspend"),
    ("post", "/v1/schedules/{namespace}/{name}/resume"),
    ("get", "/v1/dlq"),
    ("post", "/v1/dlq/requeue"),
    ("post", "/v1/dlq/purge"),
]

TERMINAL = ("succeeded", "failed", "cancelled")

JobSpec = Union[str, Mapping[str, Any]]


class SluiceError(Exception):
    """An answer other than 2xx: `status` is the HTTP status, `message` the server's error text
    (which names the field and value of a bad spec)."""

    def __init__(self, status: int, message: str, retry_after: Optional[float] = None):
        super().__init__(f"HTTP {status}: {message}")
        self.status = status
        self.message = message
        self.retry_after = retry_after


class Client:
    """A client of one sluice server.

    `server` defaults to `$SLUICE_SERVER`, else http://127.0.0.1:7467; `token` to
    `$SLUICE_TOKEN` (sent as a Bearer token when set); `timeout` is per request, in seconds.
    `ca_file` (default `$SLUICE_CA_FILE`): for an https:// server, the CA certificates (PEM) to
    trust instead of the system's.
    """

    def __init__(
        self,
        server: Optional[str] = None,
        token: Optional[str] = None,
        timeout: float = 30.0,
        ca_file: Optional[str] = None,
    ) -> None:
        self.server = (server or os.environ.get("SLUICE_SERVER") or DEFAULT_SERVER).rstrip("/")
        self.token = token if token is not None else os.environ.get("SLUICE_TOKEN")
        self.timeout = timeout
        ca_file = ca_file or os.environ.get("SLUICE_CA_FILE") or None
        self._tls = ssl.create_default_context(cafile=ca_file) if ca_file else None

    # ------------------------------------------------------------------ plumbing

    def _request(
        self,
        method: str,
        path: str,
        query: Optional[Mapping[str, Any]] = None,
        body: Optional[bytes] = None,
        content_type: str = "application/json",
    ) -> Any:
        url = self.server + path
        if query:
            q = {k: str(v) for k, v in query.items() if v is not None}
            if q:
                url += "?" + urllib.parse.urlencode(q)
        req = urllib.request.Request(url, data=body, method=method.upper())
        req.add_header("Accept", "application/json")
        if body is not None:
            req.add_header("Content-Type", content_type)
        if self.token:
            req.add_header("Authorization", f"Bearer {self.token}")
        try:
            with urllib.request.urlopen(req, timeout=self.timeout, context=self._tls) as resp:
                raw = resp.read()
        except urllib.error.HTTPError as e:
            raw = e.read()
            try:
                message = json.loads(raw).get("error", raw.decode("utf-8", "replace"))
            except ValueError:
                message = raw.decode("utf-8", "replace")
            retry = e.headers.get("Retry-After") if e.headers else None
            raise SluiceError(e.code, message, float(retry) if retry else None) from None
        if not raw:
            return None
        return json.loads(raw)

    @staticmethod
    def _quote(s: str) -> str:
        return urllib.parse.quote(s, safe="")

    # ------------------------------------------------------------------ jobs

    def submit(self, spec: JobSpec, priority: Optional[str] = None) -> JobView:
        """Queues a job. `spec` is the document's text (YAML or JSON, sent as is, comments kept)
        or a mapping (sluice's own spec or a SparkApplication), sent as JSON."""
        if isinstance(spec, str):
            body = spec.encode("utf-8")
            ctype = "application/json" if spec.lstrip().startswith("{") else "application/yaml"
        else:
            body = json.dumps(spec).encode("utf-8")
            ctype = "application/json"
        return self._request("post", "/v1/jobs", {"priority": priority}, body, ctype)

    def get(self, job_id: str) -> JobView:
        """One job, with its demand, timeline, wait reason and orchestration state."""
        return self._request("get", f"/v1/jobs/{self._quote(job_id)}")

    describe = get

    def list(
        self,
        namespace: Optional[str] = None,
        state: Optional[str] = None,
        label: Optional[str] = None,
        name: Optional[str] = None,
        limit: Optional[int] = None,
        cursor: Optional[str] = None,
    ) -> JobList:
        """One page of jobs, newest first; pass `next_cursor` back as `cursor` for the next."""
        return self._request(
            "get",
            "/v1/jobs",
            {
                "namespace": namespace,
                "state": state,
                "label": label,
                "name": name,
                "limit": limit,
                "cursor": cursor,
            },
        )

    def iter_jobs(self, **filters: Any) -> Iterator[JobView]:
        """Every job the filters select, page after page."""
        cursor = None
        while True:
            page = self.list(cursor=cursor, **filters)
            yield from page["jobs"]
            cursor = page.get("next_cursor")
            if not cursor:
                return

    def cancel(self, job_id: str) -> JobView:
        """Cancels a queued or running job."""
        return self._request("post", f"/v1/jobs/{self._quote(job_id)}/cancel")

    def logs(self, job_id: str, offset: int = 0, max_bytes: Optional[int] = None) -> LogChunk:
        """A chunk of the job's log from `offset`; `complete` once the run ended and all is read."""
        return self._request(
            "get",
            f"/v1/jobs/{self._quote(job_id)}/logs",
            {"offset": offset, "max_bytes": max_bytes},
        )

    def wait(
        self,
        job_id: str,
        timeout: Optional[float] = None,
        interval: float = 1.0,
        progress: Optional[Callable[[JobView], None]] = None,
    ) -> JobView:
        """Polls until the job reaches succeeded, failed or cancelled and returns it. `progress`
        is called with the job each time its state or wait reason changes. Raises TimeoutError
        after `timeout` seconds (none: forever)."""
        deadline = None if timeout is None else time.monotonic() + timeout
        last = None
        while True:
            job = self.get(job_id)
            seen = (job.get("state"), (job.get("wait") or {}).get("reason"), job.get("attempt"))
            if progress is not None and seen != last:
                progress(job)
            last = seen
            if job.get("state") in TERMINAL:
                return job
            if deadline is not None and time.monotonic() >= deadline:
                raise TimeoutError(f"job {job_id} is still {job.get('state')} after {timeout} s")
            time.sleep(interval)

    # ------------------------------------------------------------------ queues and cluster

    def queues(self) -> Any:
        """Queued jobs per namespace and level."""
        return self._request("get", "/v1/queues")

    def cluster(self) -> Any:
        """Capacity, allocation and reservations, as `sluice top` shows them."""
        return self._request("get", "/v1/cluster")

    # ------------------------------------------------------------------ schedules

    def schedules(self, namespace: Optional[str] = None) -> Any:
        return self._request("get", "/v1/schedules", {"namespace": namespace})

    def create_schedule(self, document: JobSpec) -> Any:
        """Creates a schedule from its document (text sent as is, or a mapping as JSON)."""
        if isinstance(document, str):
            body = document.encode("utf-8")
            ctype = "application/json" if document.lstrip().startswith("{") else "application/yaml"
        else:
            body, ctype = json.dumps(document).encode("utf-8"), "application/json"
        return self._request("post", "/v1/schedules", None, body, ctype)

    def schedule(self, namespace: str, name: str) -> Any:
        return self._request("get", f"/v1/schedules/{self._quote(namespace)}/{self._quote(name)}")

    def delete_schedule(self, namespace: str, name: str) -> Any:
        return self._request(
            "delete", f"/v1/schedules/{self._quote(namespace)}/{self._quote(name)}"
        )

    def trigger(self, namespace: str, name: str) -> Any:
        return self._schedule_action(namespace, name, "trigger")

    def suspend(self, namespace: str, name: str) -> Any:
        return self._schedule_action(namespace, name, "suspend")

    def resume(self, namespace: str, name: str) -> Any:
        return self._schedule_action(namespace, name, "resume")

    def _schedule_action(self, namespace: str, name: str, action: str) -> Any:
        return self._request(
            "post", f"/v1/schedules/{self._quote(namespace)}/{self._quote(name)}/{action}"
        )

    # ------------------------------------------------------------------ dead-letter queue

    def dlq(self, namespace: Optional[str] = None) -> Any:
        return self._request("get", "/v1/dlq", {"namespace": namespace})

    def dlq_requeue(
        self, ids: Optional[List[str]] = None, front: bool = False, **selector: Any
    ) -> Any:
        """Requeues dead-lettered jobs chosen by `ids` or the API's other filters (namespace,
        schedule, label, level, older_than, all=True); `front` puts them at the head of their
        level."""
        return self._request("post", "/v1/dlq/requeue", _select(ids, selector, front=front))

    def dlq_purge(
        self, ids: Optional[List[str]] = None, dry_run: bool = False, **selector: Any
    ) -> Any:
        """Deletes dead-lettered jobs (a `dry_run` only lists them)."""
        return self._request("post", "/v1/dlq/purge", _select(ids, selector, dry_run=dry_run))


def _select(ids: Optional[List[str]], selector: Mapping[str, Any], **flags: bool) -> dict:
    q = {k: (str(v).lower() if isinstance(v, bool) else v) for k, v in selector.items()}
    if ids:
        q["id"] = ",".join(ids)
    for k, v in flags.items():
        if v:
            q[k] = "true"
    return q


__all__: List[str] = ["Client", "SluiceError", "ROUTES", "TERMINAL", "DEFAULT_SERVER"]
