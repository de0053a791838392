"""Forked worker processes for chunked work (ingestion's preparation, the features' computation): each dies
with its parent, and results come back in input order with a bounded number of chunks in flight, so memory
stays flat however large the input."""

import ctypes
import ctypes.util
import itertools
import multiprocessing
import os
import signal
from collections import deque
from concurrent.futures import Future, ProcessPoolExecutor
from typing import Callable, Iterable, Iterator

_PR_SET_PDEATHSIG = 1


def die_with_parent(parent: int) -> None:
    """A worker holds a forked copy of the keys: when its parent dies (even by SIGKILL), the kernel kills the
    worker too (Linux's parent-death signal), instead of leaving it alive with the keys."""
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6", use_errno=True)
        libc.prctl(_PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0)
    except (OSError, AttributeError):  # not Linux: the orphan check below still runs once
        pass
    if os.getppid() != parent:  # the parent died before the signal was armed
        os._exit(1)


def _start(parent: int, setup: Callable | None, setup_args: tuple) -> None:
    die_with_parent(parent)
    if setup is not None:
        setup(*setup_args)


class ForkedWorkers:
    """Runs `work(*job)` for each job in `workers` forked processes (after `setup(*setup_args)` in each)
    while the caller consumes earlier results; at most one job per worker waits ahead of the caller. With
    one worker, runs inline unless told otherwise (`inline`: one process working beside the caller)."""

    def __init__(self, workers: int, work: Callable, setup: Callable | None = None, setup_args: tuple = (), *,
                 inline: bool | None = None):
        self.workers, self.work = workers, work
        self.setup, self.setup_args = setup, setup_args
        self.inline = workers <= 1 if inline is None else inline
        self.pool = None

    def __enter__(self) -> "ForkedWorkers":
        if not self.inline:
            self.pool = ProcessPoolExecutor(self.workers, mp_context=multiprocessing.get_context("fork"),
                                            initializer=_start,
                                            initargs=(os.getpid(), self.setup, self.setup_args))
        return self

    def __exit__(self, *exc) -> None:
        if self.pool is not None:
            self.pool.shutdown(wait=True, cancel_futures=True)

    def submit(self, function: Callable, *args) -> Future:
        """`function(*args)` in a worker (inline with one), for work of another kind than the pool's jobs."""
        if self.pool is not None:
            return self.pool.submit(function, *args)
        done: Future = Future()
        done.set_result(function(*args))
        return done

    def map(self, jobs: Iterable[tuple], ahead: int | None = None, meanwhile: Callable | None = None) -> Iterator:
        """Results in input order. `meanwhile`: the caller's own work, run once the first jobs are handed out
        so that it overlaps theirs; `ahead`: how many jobs may be handed out before the caller takes the
        first result (one per worker by default; each finished one waits in memory)."""
        if self.pool is None:
            if meanwhile is not None:
                meanwhile()
            for job in jobs:
                yield self.work(*job)
            return
        ahead = max(ahead or 0, self.workers)
        pending: deque = deque()
        jobs = iter(jobs)
        for job in itertools.islice(jobs, ahead):
            pending.append(self.pool.submit(self.work, *job))
        if meanwhile is not None:
            meanwhile()
        for job in jobs:
            pending.append(self.pool.submit(self.work, *job))
            yield pending.popleft().result()
        while pending:
            yield pending.popleft().result()
