"""Helpers for policy unit tests: a fake clock and simple instances."""

from __future__ import annotations

from dataclasses import dataclass


class FakeClock:
    """A clock the test moves by hand; nothing ever sleeps."""

    def __init__(self, now: float = 0.0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


@dataclass(frozen=True)
class Node:
    id: str
    weight: int = 1
