"""The blocking-query loop behind every watch: what it asks for next, and what it does when the
registry goes away, restarts, or hands it an answer it cannot apply. The loop is pure logic, so
its query is a script here; the watches built on it run against the real registry elsewhere."""

from __future__ import annotations

import logging
import threading

import consul
import pytest
import requests

from mesh.control import BlockingWatch, kv_query
from mesh.registry import Registry

from .conftest import eventually


class Script:
    """A query that answers from a list (an exception is raised), then blocks until stopped."""

    def __init__(self, *answers):
        self.answers = list(answers)
        self.asked: list[str | None] = []
        self.done = threading.Event()
        self.release = threading.Event()

    def __call__(self, index):
        self.asked.append(index)
        if not self.answers:
            self.done.set()
            self.release.wait(5)
            raise requests.ConnectionError("stopped")
        answer = self.answers.pop(0)
        if isinstance(answer, Exception):
            raise answer
        return answer


def run(script: Script, apply, log_name: str = "test.watch") -> BlockingWatch:
    watch = BlockingWatch(script, apply, "test-watch", "for the test", logging.getLogger(log_name))
    assert script.done.wait(10)
    watch.request_stop()
    script.release.set()
    watch.stop(5)
    assert not watch.alive
    return watch


def test_each_answer_is_applied_and_its_index_asked_next_and_an_index_going_back_starts_over():
    applied = []
    script = Script(("5", "a"), ("7", "b"), ("3", "after a restart"), ("4", "c"))
    watch = run(script, applied.append)
    assert applied == ["a", "b", "after a restart", "c"]
    assert script.asked == [None, "5", "7", None, "4"]  # 3 < 7: the registry restarted, start over
    assert watch.first.is_set()


def test_an_answer_equal_to_the_last_applied_is_not_applied_again():
    applied = []
    script = Script(("5", None), ("6", None), ("7", "a"), ("8", "a"), ("9", "b"), ("10", None))
    run(script, applied.append)
    assert applied == [None, "a", "b", None]
    assert script.asked == [None, "5", "6", "7", "8", "9", "10"]


def test_an_outage_is_logged_once_retried_with_a_growing_pause_and_its_end_said(caplog):
    refused = requests.ConnectionError("connection refused")
    script = Script(("2", "a"), refused, refused, consul.ConsulException("500"), ("3", "b"))
    applied = []
    with caplog.at_level(logging.WARNING, logger="test.watch"):
        run(script, applied.append)
    lines = [r.getMessage() for r in caplog.records if r.name == "test.watch"]
    assert lines == ["registry unreachable for the test (keeping what it last said): connection refused",
                     "registry reachable again for the test"]
    assert applied == ["a", "b"]  # what it read last was kept through the outage
    assert script.asked == [None, "2", "2", "2", "2", "3"]


def test_the_first_event_is_set_by_a_failed_first_read_so_an_owner_does_not_wait_for_long():
    script = Script(requests.ConnectionError("down"))
    watch = run(script, lambda answer: None)
    assert watch.first.is_set()


def test_an_answer_that_cannot_be_applied_is_read_again_from_no_index(caplog):
    applied = []

    def apply(answer):
        applied.append(answer)
        if answer == "ack fails":
            raise consul.ConsulException("cannot write the acknowledgement")
        if answer == "broken":
            raise ValueError("a bug")

    script = Script(("4", "ack fails"), ("4", "broken"), ("4", "fine"))
    with caplog.at_level(logging.WARNING, logger="test.watch"):
        run(script, apply)
    assert applied == ["ack fails", "broken", "fine"]
    assert script.asked == [None, None, None, "4"]
    messages = [(r.levelname, r.getMessage()) for r in caplog.records if r.name == "test.watch"]
    assert messages[0] == ("WARNING", "could not apply an answer for the test, reading it again: "
                                      "cannot write the acknowledgement")
    assert messages[1] == ("ERROR", "could not apply an answer for the test, reading it again")


def test_a_long_outage_is_one_line_and_a_stop_ends_the_pause(caplog):
    tries = []

    def query(index):
        tries.append(index)
        raise requests.ConnectionError("gone")

    log = logging.getLogger("test.quiet")
    with caplog.at_level(logging.WARNING, logger="test.quiet"):
        watch = BlockingWatch(query, lambda answer: None, "quiet", "for the test", log)
        eventually(lambda: len(tries) >= 4, timeout=5)  # pauses of 0.1, 0.2, 0.4 s
        watch.stop(5)
    assert not watch.alive
    assert [r.getMessage() for r in caplog.records if r.name == "test.quiet"] == [
        "registry unreachable for the test (keeping what it last said): gone"]


@pytest.mark.slow
def test_a_key_watched_on_the_real_registry_follows_puts_and_a_delete():
    with Registry(dns_port=None) as registry:
        client = registry.client()
        seen = []
        watch = BlockingWatch(kv_query(client, "ada/faults/greeter-1", wait="1s"),
                              lambda entry: seen.append(entry and entry["Value"]), "kv", "for greeter-1")
        try:
            assert watch.first.wait(5) and seen == [None]
            client.kv.put("ada/faults/greeter-1", "x")
            eventually(lambda: seen[-1] == b"x", timeout=5)
            client.kv.delete("ada/faults/greeter-1")
            eventually(lambda: seen[-1] is None, timeout=5)
        finally:
            watch.stop()
