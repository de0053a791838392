"""Forked workers: results in input order, the caller's own work run once while theirs goes on, and work
of another kind handed to a worker, with a pool and inline alike."""

import os

import pytest

from appliance.workers import ForkedWorkers


def _square_and_pid(n: int) -> tuple[int, int]:
    return n * n, os.getpid()


@pytest.mark.parametrize("workers", [1, 2])
def test_map_keeps_order_and_runs_the_callers_work_once_while_the_jobs_are_out(workers):
    calls = []
    with ForkedWorkers(workers, _square_and_pid) as pool:
        results = pool.map(((n,) for n in range(40)), ahead=5, meanwhile=lambda: calls.append(os.getpid()))
        assert calls == []  # nothing runs until the caller asks for the first result
        found = list(results)
        other = pool.submit(_square_and_pid, 7).result()
    assert [square for square, _ in found] == [n * n for n in range(40)]
    assert calls == [os.getpid()]
    assert other[0] == 49
    elsewhere = {pid for _, pid in [*found, other]} != {os.getpid()}
    assert elsewhere == (workers > 1)


def test_map_without_jobs_still_runs_the_callers_work():
    calls = []
    with ForkedWorkers(2, _square_and_pid) as pool:
        assert list(pool.map(iter(()), meanwhile=lambda: calls.append(1))) == []
    assert calls == [1]


def test_one_worker_may_work_beside_the_caller_instead_of_inline():
    with ForkedWorkers(1, _square_and_pid, inline=False) as pool:
        square, pid = pool.submit(_square_and_pid, 3).result()
        assert [r[0] for r in pool.map((n,) for n in range(5))] == [0, 1, 4, 9, 16]
    assert square == 9 and pid != os.getpid()
