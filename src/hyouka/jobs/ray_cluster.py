"""Ray for hyouka (the ``ray`` extra): connecting with token authentication, and jobs as Ray tasks.

:func:`connect` joins the cluster at an address (``auto``: ``RAY_ADDRESS`` or a cluster running on
this machine, else a new local one; ``ray://head:10001``) always with ``RAY_AUTH_MODE=token``: Ray
then sends and checks a shared token on every request (``RAY_AUTH_TOKEN``, ``RAY_AUTH_TOKEN_PATH``
or ``~/.ray/auth_token``; a new local cluster generates one). A local cluster's dashboard, when Ray
starts one, listens on 127.0.0.1 only. :class:`RayRunner` runs an agent's jobs as Ray tasks that
ask for the job's ``num_gpus`` and ``num_cpus``, so one agent drives a cluster; each task runs
:func:`hyouka.jobs.execute.run_job` on a worker, which reads its keys from its own environment.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from hyouka.jobs.execute import JobOutcome, run_job
from hyouka.jobs.resources import Capacity

MIN_RAY = (2, 52)  # token authentication arrived in Ray 2.52


class RaySetupError(RuntimeError):
    """Ray is missing, too old, or configured without token authentication."""


def require_ray() -> Any:
    """The ``ray`` module, or a clear error naming the extra."""
    try:
        import ray
    except ImportError:
        raise RaySetupError("--ray needs Ray: pip install 'hyouka[ray]'") from None
    version = tuple(int(p) for p in ray.__version__.split(".")[:2] if p.isdigit())
    if version < MIN_RAY:
        raise RaySetupError(f"Ray {ray.__version__} has no token authentication; hyouka needs Ray >= "
                            f"{'.'.join(map(str, MIN_RAY))} (pip install -U 'hyouka[ray]')")
    return ray


def connect(address: str = "auto", *, num_cpus: int | None = None) -> Any:
    """Join (or start) a Ray cluster with token authentication on; returns the ``ray`` module.

    Already connected (e.g. a test's ``ray.init``): that connection is used as it is.
    """
    mode = os.environ.setdefault("RAY_AUTH_MODE", "token")  # read when Ray is imported: set it first
    if mode != "token":
        raise RaySetupError(f"RAY_AUTH_MODE={mode}: hyouka joins Ray clusters with token authentication only "
                            "(RAY_AUTH_MODE=token on every node; `ray get-auth-token --generate` makes a token)")
    ray = require_ray()
    if ray.is_initialized():
        return ray
    if not _token_auth_on():
        raise RaySetupError("Ray was imported before RAY_AUTH_MODE=token was set, so it would run without token "
                            "authentication; set RAY_AUTH_MODE=token in the environment")
    if address in ("", "local"):
        return _start_local(ray, num_cpus)
    if address == "auto":
        try:
            ray.init(address="auto", log_to_driver=False)
            return ray
        except ConnectionError:  # no cluster to join: start one here
            return _start_local(ray, num_cpus)
    ray.init(address=address, log_to_driver=False)
    return ray


def _token_auth_on() -> bool:
    try:
        from ray._private.authentication.authentication_utils import is_token_auth_enabled
    except ImportError:  # a Ray that moved it: RAY_AUTH_MODE=token is set, which is what Ray reads
        return True
    return bool(is_token_auth_enabled())


def _start_local(ray: Any, num_cpus: int | None) -> Any:
    ray.init(num_cpus=num_cpus, dashboard_host="127.0.0.1", log_to_driver=False)
    return ray


def cluster_capacity(ray: Any) -> Capacity:
    total = ray.cluster_resources()
    return Capacity(float(total.get("GPU", 0.0)), float(total.get("CPU", 0.0)))


def worker_store_url(url: str) -> str:
    """The store URL as a worker elsewhere must see it: a SQLite path made absolute, and no password
    (a task's arguments are kept by Ray; workers take the password from their environment, PGPASSWORD)."""
    from sqlalchemy.engine import make_url

    parsed = make_url(url)
    if parsed.drivername.startswith("sqlite") and parsed.database and parsed.database != ":memory:":
        parsed = parsed.set(database=str(Path(parsed.database).expanduser().resolve()))
    return parsed.set(password=None).render_as_string(hide_password=False)


def _job_task(spec: dict[str, Any], job_id: str, store_url: str) -> JobOutcome:
    """One job on a Ray worker (``ray.cancel`` raises KeyboardInterrupt here: the run is interrupted)."""
    return run_job(spec, job_id, store=store_url)


class _RayHandle:
    def __init__(self, ray: Any, ref: Any) -> None:
        self._ray = ray
        self.ref = ref

    @property
    def progress(self) -> str | None:
        return None  # the job's run shows its own progress (`hyouka runs`)

    def done(self) -> bool:
        ready, _ = self._ray.wait([self.ref], timeout=0)
        return bool(ready)

    def outcome(self) -> JobOutcome:
        from ray.exceptions import TaskCancelledError

        try:
            return self._ray.get(self.ref)
        except TaskCancelledError as exc:
            return JobOutcome("interrupted", error=f"cancelled on Ray: {exc}")
        except Exception as exc:  # the worker died, or Ray lost the task
            return JobOutcome("failed", phase="agent", error=f"the Ray task failed: {type(exc).__name__}: {exc}")

    def stop(self) -> None:
        self._ray.cancel(self.ref)


class RayRunner:
    """An agent's jobs as Ray tasks with the job's resources; the capacity is the cluster's."""

    def __init__(self, address: str = "auto") -> None:
        self._ray = connect(address)
        self.capacity = cluster_capacity(self._ray)
        self._remote = self._ray.remote(max_retries=0)(_job_task)  # the queue retries, not Ray

    def start(self, job: dict[str, Any], store_url: str) -> _RayHandle:
        options = {"num_cpus": job["num_cpus"], "num_gpus": job["num_gpus"], "name": f"hyouka-job-{job['id']}"}
        return _RayHandle(self._ray, self._remote.options(**options).remote(job["spec"], job["id"],
                                                                             worker_store_url(store_url)))

    def wait(self, handles: Sequence[Any], timeout: float) -> None:
        refs = [h.ref for h in handles]
        if refs:
            self._ray.wait(refs, num_returns=1, timeout=timeout)
