"""Background jobs with pushed progress: `POST /jobs`, `GET /jobs/{job_id}/progress`.

The seed kept job states in a global dict and had every listener poll it every 0.1 s: late
updates, missed steps between polls, no failure path, and jobs that never went away. Here a
job is an asyncio task that pushes each state change to every listener's queue the moment
it happens; a listener joining late gets the current state first; a failure is an `error`
event; finished jobs expire (then 404). Jobs belong to the app (`app.state`), not to the
module, so two demo apps never share them.

Each state change is numbered (`id`), so a resumed listener continues after what it saw, and
one that already saw the end gets 204.
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator
from typing import Annotated, Any

import orjson
from fastapi import Body, FastAPI, HTTPException, Request, Response
from pydantic import BaseModel, ConfigDict, Field, model_validator

from .._models import Event
from ._basic import DONE, last_event_id
from ._endpoints import Endpoint, add_endpoint
from ._response import EventStreamResponse

__all__ = ["Job", "JobSpec", "install"]

MAX_JOBS = 1_000  # jobs kept at once (running or not yet expired); more get 429


class JobSpec(BaseModel):
    """`POST /jobs` body; every field optional. `fail_at` makes the job fail at that step."""

    model_config = ConfigDict(extra="forbid")
    steps: int = Field(100, ge=1, le=100_000)
    interval: float = Field(0.05, ge=0, le=60, description="seconds per step")
    fail_at: int | None = Field(None, ge=1, description="step at which the job fails")
    expire: float = Field(60.0, ge=0, le=86_400, description="seconds kept after finishing")

    @model_validator(mode="after")
    def _fail_within_steps(self) -> JobSpec:
        if self.fail_at is not None and self.fail_at > self.steps:
            raise ValueError(f"fail_at ({self.fail_at}) must be <= steps ({self.steps})")
        return self


class Job:
    """One running job: its latest event and the queues of the listeners waiting for more."""

    def __init__(self, job_id: str, spec: JobSpec) -> None:
        self.id = job_id
        self.spec = spec
        self.seq = 0
        self.latest: Event = self._event("progress", 0, "running", "Queued")
        self.finished = False
        self.listeners: set[asyncio.Queue[Event]] = set()
        self.task: asyncio.Task[None] | None = None

    def _event(self, kind: str, step: int, status: str, message: str, **extra: Any) -> Event:
        steps = self.spec.steps
        pct = 100 * step / steps
        info = {
            "job_id": self.id,
            "progress": int(pct) if pct.is_integer() else round(pct, 2),
            "step": step,
            "steps": steps,
            "status": status,
            "message": message,
            **extra,
        }
        return Event(event=kind, data=orjson.dumps(info).decode(), id=str(self.seq))

    def publish(self, kind: str, step: int, status: str, message: str, **extra: Any) -> None:
        """Make this the job's state and push it to every listener now."""
        self.seq += 1
        self.latest = self._event(kind, step, status, message, **extra)
        self.finished = kind != "progress"
        for queue in self.listeners:
            queue.put_nowait(self.latest)

    async def run(self) -> None:
        """Do the (simulated) work: one step per `interval`, failing at `fail_at`."""
        spec = self.spec
        try:
            for step in range(1, spec.steps + 1):
                await asyncio.sleep(spec.interval)
                if step == spec.fail_at:
                    raise RuntimeError(f"step {step} failed (fail_at={spec.fail_at})")
                self.publish("progress", step, "running", f"Processing step {step}/{spec.steps}")
        except Exception as exc:
            step = spec.fail_at or 0
            self.publish("error", step - 1, "failed", str(exc), error=type(exc).__name__)
        else:
            self.publish("complete", spec.steps, "completed", "Job completed successfully")

    async def listen(self, after: int) -> AsyncIterator[Event]:
        """The current state (unless the listener saw it), every later change, `[DONE]`."""
        queue: asyncio.Queue[Event] = asyncio.Queue()
        current = self.latest
        self.listeners.add(queue)
        try:
            event = current
            while True:
                if int(event.id) > after:
                    yield event
                if event.event != "progress":
                    yield DONE
                    return
                event = await queue.get()
        finally:
            self.listeners.discard(queue)


def _jobs(app: FastAPI) -> dict[str, Job]:
    jobs = getattr(app.state, "ssenb_jobs", None)
    if jobs is None:
        jobs = {}
        app.state.ssenb_jobs = jobs
    return jobs


async def _run_and_expire(jobs: dict[str, Job], job: Job) -> None:
    await job.run()
    await asyncio.sleep(job.spec.expire)
    jobs.pop(job.id, None)


def install(app: FastAPI) -> None:
    """Add `POST /jobs` and `GET /jobs/{job_id}/progress` to `app` and the index page."""

    @app.post("/jobs", status_code=201, summary="Start a job; progress at /jobs/{id}/progress")
    async def create_job(
        spec: Annotated[JobSpec | None, Body()] = None,
    ) -> dict[str, Any]:
        jobs = _jobs(app)
        if len(jobs) >= MAX_JOBS:
            raise HTTPException(429, f"{MAX_JOBS} jobs are kept already; wait for some to expire")
        spec = spec or JobSpec()
        job = Job(uuid.uuid4().hex[:12], spec)
        jobs[job.id] = job
        job.task = asyncio.create_task(_run_and_expire(jobs, job), name=f"ssenb-job-{job.id}")
        return {
            "job_id": job.id,
            "progress_url": f"/jobs/{job.id}/progress",
            "steps": spec.steps,
            "interval": spec.interval,
        }

    @app.get("/jobs/{job_id}/progress", summary="Pushed progress events of one job")
    async def job_progress(request: Request, job_id: str) -> Response:
        job = _jobs(app).get(job_id)
        if job is None:
            raise HTTPException(404, f"no job {job_id!r} (unknown, or finished and expired)")
        after = last_event_id(request)
        if job.finished and after >= int(job.latest.id):
            return Response(status_code=204)
        return EventStreamResponse(job.listen(after))

    for endpoint in (
        Endpoint("/jobs", '{"steps": 100, "interval": 0.05, "fail_at": null, "expire": 60}',
                 "starts a background job, returns {job_id}", '{"steps": 20}', "POST"),
        Endpoint("/jobs/{job_id}/progress", "-",
                 "pushed progress events, then complete or error, then [DONE]; 404 when "
                 "unknown or expired", "/jobs/<job_id>/progress"),
    ):  # fmt: skip
        add_endpoint(app, endpoint)
