"""Queueing theory the simulator is checked against.

Standard results, with ``lam`` the arrival rate, ``mu`` one server's service rate, ``c`` servers:
M/M/1 mean response time 1/(mu - lam); M/M/c waiting time from Erlang C; M/D/1 from
Pollaczek–Khinchine; M/M/c/c blocking from Erlang B; the mean-field fixed point of JSQ(d); and
two Jackson networks: a tandem of M/M/1 stations, and one M/M/1 station with feedback.
"""

from __future__ import annotations

import math


def mm1_response(lam: float, mu: float) -> float:
    """Mean time in system of M/M/1: 1 / (mu - lam)."""
    if lam >= mu:
        raise ValueError("unstable: lam >= mu")
    return 1.0 / (mu - lam)


def erlang_b(c: int, load: float) -> float:
    """Blocking probability of M/M/c/c with offered load ``load`` = lam/mu (stable recurrence)."""
    b = 1.0
    for k in range(1, c + 1):
        b = load * b / (k + load * b)
    return b


def erlang_c(c: int, load: float) -> float:
    """Probability that an arrival waits in M/M/c, offered load lam/mu < c."""
    if load >= c:
        raise ValueError("unstable: load >= c")
    b = erlang_b(c, load)
    return c * b / (c - load * (1 - b))


def mmc_wait(lam: float, mu: float, c: int) -> float:
    """Mean waiting time (in queue) of M/M/c: C(c, a) / (c mu - lam)."""
    return erlang_c(c, lam / mu) / (c * mu - lam)


def md1_wait(lam: float, service: float) -> float:
    """Mean waiting time of M/D/1 by Pollaczek–Khinchine: rho * s / (2 (1 - rho))."""
    rho = lam * service
    if rho >= 1:
        raise ValueError("unstable: rho >= 1")
    return rho * service / (2 * (1 - rho))


def jsq_d_tail(lam: float, d: int, i: int) -> float:
    """Mean-field fraction of queues with at least ``i`` jobs under power-of-d: lam^((d^i - 1)/(d - 1)).

    For d = 1 (random assignment) the exponent is i, the M/M/1 tail lam^i.
    """
    exponent = i if d == 1 else (d**i - 1) / (d - 1)
    return lam**exponent


def tandem_sojourn(lam: float, mus: list[float]) -> float:
    """Mean time through M/M/1 stations in a line (Burke: each sees Poisson arrivals at ``lam``)."""
    return sum(mm1_response(lam, mu) for mu in mus)


def feedback_sojourn(lam: float, mu: float, p: float) -> float:
    """Mean time in an M/M/1 station whose jobs return to it with probability ``p`` (Jackson): the
    station sees lam / (1 - p), holds L = rho / (1 - rho) jobs, and by Little W = L / lam."""
    rho = lam / (1 - p) / mu
    if rho >= 1:
        raise ValueError("unstable: rho >= 1")
    return rho / (1 - rho) / lam


def mean_ci(values: list[float], z: float = 2.576) -> tuple[float, float]:
    """Return (mean, half-width) of a normal confidence interval (99% by default) over runs."""
    n = len(values)
    mean = sum(values) / n
    if n < 2:
        return mean, math.inf
    var = sum((v - mean) ** 2 for v in values) / (n - 1)
    return mean, z * math.sqrt(var / n)
