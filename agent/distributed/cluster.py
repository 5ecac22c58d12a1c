"""Joining a Ray cluster, and dividing a batch's concurrency among its workers."""

from __future__ import annotations

import logging
import math
from pathlib import Path

from pydantic import BaseModel

from ..config import Settings
from ..errors import UsageError


def connect(address: str) -> float:
    """Join the cluster at `address` (unless this process already has); returns the CPUs it offers.

    `local` starts a private Ray instance on this machine; `auto` joins the cluster this machine is part
    of (`ray start`, or RAY_ADDRESS); HOST:PORT is a head's GCS address; ray://HOST:10001 is Ray Client.
    """
    try:
        import ray
    except ImportError:
        raise UsageError("--ray needs Ray: pip install 'deepsearch[ray]'") from None
    if not ray.is_initialized():
        # Worker output stays in the Ray session logs: on the driver's terminal it would tear the progress bar.
        options: dict = {"log_to_driver": False, "logging_level": logging.WARNING}
        if address == "local":
            options["include_dashboard"] = False
        try:
            ray.init(address=address, **options)
        except (ConnectionError, RuntimeError, ValueError, TimeoutError) as e:
            reason = (str(e).strip().splitlines() or [type(e).__name__])[0][:300]
            raise UsageError(f"cannot join the Ray cluster at {address!r}: {reason}") from None
    return float(ray.cluster_resources().get("CPU", 0.0))


class WorkerPlan(BaseModel):
    workers: int
    slots: int  # questions in flight per worker


def plan_workers(settings: Settings, *, cluster_cpus: float, concurrency: int, questions: int) -> WorkerPlan:
    """`ray.workers` (or one per `worker_cpus` CPUs), at most one per question in flight or to answer."""
    per = settings.ray.worker_cpus
    wanted = settings.ray.workers or max(1, int(cluster_cpus // per))
    if wanted * per > cluster_cpus:
        raise UsageError(
            f"{wanted} Ray worker(s) × {per:g} CPU need {wanted * per:g} CPUs; the cluster has {cluster_cpus:g} "
            "(lower --ray-workers or ray.worker_cpus, or add nodes)"
        )
    workers = max(1, min(wanted, concurrency, questions))
    return WorkerPlan(workers=workers, slots=math.ceil(concurrency / workers))


def worker_settings(settings: Settings, plan: WorkerPlan, concurrency: int) -> Settings:
    """The settings each worker runs with: its share of the LLM concurrency, paths that mean the same anywhere."""
    ours = settings.model_copy(deep=True)
    # -c and llm.concurrency are totals for the batch; each worker takes its share of both.
    ours.llm.concurrency = max(1, math.ceil(settings.llm.concurrency * plan.slots / concurrency))
    ours.agent.indexes = [_absolute_if_path(v) for v in settings.agent.indexes]
    if ours.llm.model_path:
        ours.llm.model_path = str(Path(ours.llm.model_path).expanduser().resolve())
    return ours


def _absolute_if_path(value: str) -> str:
    """An index given as a path (as `resolve_index_dir` tells them apart), made absolute: a worker's working
    directory is not the driver's. A name stays a name, looked up under index.dir."""
    from deepsearch.tools.index_store import MANIFEST

    if "/" in value or value.startswith(".") or Path(value, MANIFEST).is_file():
        return str(Path(value).expanduser().resolve())
    return value
