"""The channel between a learner's answers and the tests (tools.grading.wire): plain data crosses by
value, everything else as a handle; nothing the answers send can run code on the checker's side or
win a comparison by itself; callbacks work both ways; a dead or lying peer ends the channel."""

from __future__ import annotations

import io
import os
import pickle
import socket
import struct
import threading
from collections import Counter

import pytest

from tools.grading.answers import serve_answers
from tools.grading.values import Remote, RemoteCallable
from tools.grading.wire import AnswersGone, LearnerCodeError, Peer, serve_callbacks


class AlwaysEqual:
    def __eq__(self, other):
        return True

    __hash__ = object.__hash__


@pytest.fixture
def answers():
    """A checker-side peer talking to an answers-side peer (in a forked process) on ``NAMESPACE``."""
    ours, theirs = socket.socketpair()
    pid = os.fork()
    if pid == 0:  # pragma: no cover - the answers' process
        ours.close()
        charges: Counter = Counter()

        def handler(order):
            charges[order] += 1

        namespace = {
            "plain": {"a": [1, 2.5, "x", b"y", None, (True,), frozenset({3})]},
            "mixed": {"f": len, "n": 1},
            "add": lambda x, y: x + y,
            "rigged": AlwaysEqual(),
            "charges": charges, "handler": handler,
            "ask_clock": lambda clock: clock() * 2,
            "boom": lambda: (_ for _ in ()).throw(ValueError("bad input")),
            "leave": lambda: os._exit(7),
            "quit": lambda: (_ for _ in ()).throw(SystemExit(0)),
        }
        peer = Peer(theirs, serve_answers(namespace))
        peer.wait_closed()
        os._exit(0)
    theirs.close()
    peer = Peer(ours, serve_callbacks)
    yield peer
    peer.close()
    os.waitpid(pid, 0)


def test_plain_data_crosses_as_itself(answers):
    value = answers.request("get", "plain")
    assert value == {"a": [1, 2.5, "x", b"y", None, (True,), frozenset({3})]}
    assert type(value) is dict and type(value["a"][5]) is tuple
    assert answers.request("get", "missing") is None  # as otter passes a name the notebook lacks


def test_a_container_holding_anything_but_data_is_a_handle_whole(answers):
    mixed = answers.request("get", "mixed")
    assert isinstance(mixed, Remote) and mixed["n"] == 1 and mixed["f"]("abc") == 3 and len(mixed) == 2


def test_a_frame_with_a_handle_as_a_key_is_read_without_asking_the_other_side():
    """Building a received set or dict hashes its keys on the thread that reads the channel: a
    handle's hash must not be a question to the other side (it would wait for itself)."""
    ours, theirs = socket.socketpair()
    peer = Peer(ours, serve_callbacks)

    class Handles(pickle.Pickler):
        def persistent_id(self, obj):
            return ("mine", 7, False) if obj == "handle" else None

    buffer = io.BytesIO()
    Handles(buffer, protocol=5).dump(("ok", 1, {"handle", "other"}))
    frame = buffer.getvalue()
    result = {}

    def ask():
        result["value"] = peer.request("get", "x")

    asker = threading.Thread(target=ask)
    asker.start()
    theirs.recv(1 << 16)  # the request
    theirs.sendall(struct.pack("!I", len(frame)) + frame)
    asker.join(5)
    assert not asker.is_alive(), "the reader waited on the other side to hash a handle"
    (handle,) = [item for item in result["value"] if isinstance(item, Remote)]
    assert handle is peer.handle(7, False)  # one stand-in per handle
    theirs.close()
    peer.close()


def test_functions_are_handles_that_call_across(answers):
    add = answers.request("get", "add")
    assert isinstance(add, RemoteCallable) and add(2, 3) == 5 and add("a", "b") == "ab"


def test_an_object_that_says_it_equals_everything_cannot_say_so_here(answers):
    rigged = answers.request("get", "rigged")
    assert isinstance(rigged, Remote) and not isinstance(rigged, RemoteCallable)
    with pytest.raises(TypeError, match="no plain value"):
        assert rigged == 42


def test_a_learners_counter_is_shared_and_compared_by_value(answers):
    charges, handler = answers.request("get", "charges"), answers.request("get", "handler")
    handler("o-1")
    handler("o-1")
    assert charges == Counter({"o-1": 2}) and len(charges) == 1 and "o-1" in charges
    charges.clear()
    assert charges == {}


def test_the_answers_can_call_back_the_tests_clock(answers):
    now = [1.5]
    assert answers.request("get", "ask_clock")(lambda: now[0]) == 3.0


def test_exceptions_pass_as_builtin_ones_and_never_as_a_base_exception(answers):
    with pytest.raises(ValueError, match="bad input"):
        answers.request("get", "boom")()
    with pytest.raises(LearnerCodeError, match="SystemExit"):
        answers.request("get", "quit")()


def test_an_answers_process_that_exits_fails_the_call_in_time(answers):
    with pytest.raises(AnswersGone):
        answers.request("get", "leave")()


def test_a_message_naming_a_class_ends_the_channel_instead_of_running_it():
    ours, theirs = socket.socketpair()
    peer = Peer(ours, serve_callbacks)
    forged = pickle.dumps(("ok", 1, os.system), protocol=5)  # would name posix.system
    theirs.sendall(struct.pack("!I", len(forged)) + forged)
    assert peer.wait_closed(5) and "not a message" in peer.why_closed and "posix.system" in peer.why_closed
    theirs.close()
    peer.close()


def test_a_frame_over_the_cap_ends_the_channel_without_reading_it():
    ours, theirs = socket.socketpair()
    peer = Peer(ours, serve_callbacks)
    theirs.sendall(struct.pack("!I", 1 << 31))
    assert peer.wait_closed(5) and "MiB at once" in peer.why_closed
    theirs.close()
    peer.close()
