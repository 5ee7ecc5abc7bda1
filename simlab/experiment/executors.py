"""Where runs execute: in this process, a local process pool, or Dask (LocalCluster or a scheduler).

Every executor gets the same tasks and the caller orders the rows, so results
are identical whatever runs them; only the wall time differs.
"""
from __future__ import annotations

import logging
import os
from typing import Any, Callable, Sequence

from simlab.errors import ScenarioError, SimlabError, SimulationError

EXECUTORS = ("local", "dask", "serial")

Task = tuple  # positional arguments of the task function


def check_executor(executor: str, scheduler: str | None) -> None:
    if executor not in EXECUTORS:
        raise ScenarioError(f"executor: expected one of {', '.join(EXECUTORS)}, found {executor!r}")
    if scheduler is not None and executor != "dask":
        raise ScenarioError(f"scheduler: expected only with executor 'dask', found it with {executor!r}")


def workers(executor: str) -> int:
    """How many tasks run at once (to size chunks); a remote cluster is sized when it answers."""
    return 1 if executor == "serial" else (2 if executor == "dask" else os.cpu_count() or 1)


def execute(
    fn: Callable[..., Any],
    tasks: Sequence[Task],
    executor: str = "local",
    scheduler: str | None = None,
    on_result: Callable[[int, Any], None] = lambda i, r: None,
) -> list[Any]:
    """fn(*task) for every task; on_result(i, result) as each finishes (any order); results in task order."""
    check_executor(executor, scheduler)
    results: list[Any] = [None] * len(tasks)

    def done(i: int, result: Any) -> None:
        results[i] = result
        on_result(i, result)

    if not tasks:
        return results
    if executor == "serial":
        for i, task in enumerate(tasks):
            done(i, fn(*task))
    elif executor == "local":
        _run_pool(fn, tasks, done)
    else:
        _run_dask(fn, tasks, scheduler, done)
    return results


IDLE = 120
"""Seconds an idle worker of the local pool waits for more runs before it exits."""


def _run_pool(fn, tasks, done) -> None:
    # loky (joblib's process pool): workers are fresh interpreters (fork + exec, so no thread of this
    # process is inherited mid-lock) that never re-import __main__, so replicate() works at the top level
    # of a script without an `if __name__ == "__main__"` guard, as in a notebook or the REPL; and its
    # shutdown can kill the workers, so Ctrl-C does not wait for the runs in flight. The pool is loky's
    # reusable one: a compare's, a sweep's or an optimizer's next batch finds its workers started and their
    # caches (scenarios, station tables) warm; idle workers exit after IDLE seconds, and with this process.
    from concurrent.futures import as_completed

    from loky import get_reusable_executor
    from loky.process_executor import BrokenProcessPool

    pool = get_reusable_executor(max_workers=os.cpu_count() or 1, timeout=IDLE)
    try:
        futures = {pool.submit(fn, *task): i for i, task in enumerate(tasks)}
        for future in as_completed(futures):
            done(futures[future], future.result())
    except BrokenProcessPool as exc:
        pool.shutdown(wait=True, kill_workers=True)
        raise SimulationError(
            f"executor: a worker process died ({exc}); runs already returned are kept only with an output directory"
        ) from None
    except BaseException:  # Ctrl-C, SIGTERM or a failing run: stop the runs in flight, drop the queued ones
        pool.shutdown(wait=True, kill_workers=True)
        raise


def _run_dask(fn, tasks, scheduler, done) -> None:
    try:
        from dask.distributed import Client, LocalCluster, as_completed
    except ImportError:
        raise ScenarioError(
            "executor: 'dask' needs dask.distributed; install simlab[scale] (pip install 'simlab[scale]')"
        ) from None
    import dask

    cluster = None
    if scheduler is None:
        # The worker's statistical profiler holds sampled frames, and with them the engine's
        # buffer views, past their function's return (see the report on the request recorder);
        # it also costs CPU the runs need, so the cluster simlab starts goes without it.
        with dask.config.set({"distributed.worker.profile.enabled": False}):
            cluster = LocalCluster(
                n_workers=2, threads_per_worker=1, processes=True, host="127.0.0.1", dashboard_address=None,
                silence_logs=logging.ERROR,  # worker start/stop chatter is not the user's business
            )
    try:
        try:
            client = Client(cluster if cluster is not None else scheduler, timeout="10s")
        except OSError as exc:
            raise SimlabError(f"scheduler: cannot reach the Dask scheduler at {scheduler!r} ({exc})") from None
        with client:
            # pure=False: equal tasks are still separate runs; key order keeps results traceable.
            futures = [client.submit(fn, *task, pure=False) for task in tasks]
            index = {f.key: i for i, f in enumerate(futures)}
            for future in as_completed(futures):
                done(index[future.key], future.result())
    finally:
        if cluster is not None:
            cluster.close()
