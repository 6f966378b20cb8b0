"""The one channel between a learner's answers and the tests that check them.

Grading runs the learner's notebook in one process (the *answers*) and the tests in another (the
*checker*) that the learner's code never ran in. The tests reach the answers only through this
channel: a name the tests ask for comes back as a value when it is plain data, and as a *handle* —
a stand-in that forwards calls, attribute reads and the few operators tests use — when it is
anything else (a function, a class, an instance). Whatever crosses is plain data of the exact
built-in types (``None``, ``bool``, ``int``, ``float``, ``str``, ``bytes`` and ``list``, ``tuple``,
``dict``, ``set``, ``frozenset`` of them) or a handle, so nothing the answers send can run code on
the checker's side or answer a comparison in its own favour: an object whose ``__eq__`` always says
yes arrives as a handle, and comparing a handle compares the plain value the answers report for it.

Callbacks work the other way round: a test passes its own clock or list's ``append`` to the
answers, which receive a handle that calls back into the checker. Both sides serve the other's
requests while they wait for a reply (each request runs on a worker thread), so a call can call
back, and so on, to any depth.

Why by hand: RPyC's netrefs proxy data too (a learner's dict would answer ``==`` itself), and a
pickle from the answers may not name a class at all here; the stdlib's pickle does the encoding,
with ``persistent_id`` for handles and an unpickler that refuses every global.
"""

from __future__ import annotations

import builtins
import contextlib
import io
import itertools
import pickle
import queue
import socket
import struct
import threading
from typing import Any

from .values import (
    ATOMS,
    CONTAINERS,
    Export,
    Remote,
    RemoteCallable,
    lower,
    lower_arguments,
    operate,
)

__all__ = ["MAX_FRAME", "AnswersGone", "LearnerCodeError", "Peer", "serve_callbacks"]

#: The largest message either side accepts (a value bigger than this is an error, not a hang).
MAX_FRAME = 32 << 20
_HEADER = struct.Struct("!I")
#: Exceptions raised by the answers that the checker raises as themselves (so a test's
#: ``pytest.raises(ValueError)`` or ``within``'s handling of ``MemoryError`` works); any other is a
#: :class:`LearnerCodeError` naming it. Never a ``BaseException`` that is not an ``Exception``.
PASSED_THROUGH = frozenset({
    "ArithmeticError", "AssertionError", "AttributeError", "ConnectionError", "EOFError",
    "FloatingPointError", "ImportError", "IndexError", "KeyError", "LookupError", "MemoryError",
    "ModuleNotFoundError", "NameError", "NotImplementedError", "OSError", "OverflowError",
    "RecursionError", "RuntimeError", "StopIteration", "TimeoutError", "TypeError", "UnboundLocalError",
    "UnicodeError", "ValueError", "ZeroDivisionError",
})
_MESSAGE_CAP = 4000


class LearnerCodeError(Exception):
    """An exception the answers raised that is not one of :data:`PASSED_THROUGH`."""


class AnswersGone(ConnectionError):
    """The other side of the channel ended (the learner's code exited, crashed or was killed)."""


class _Reply:
    """A reply on its way: a lock held until it comes (the cheapest wake-up between threads; the
    wait is interruptible, so a check's time limit still ends it)."""

    __slots__ = ("_arrived", "_error", "_value")

    def __init__(self):
        self._arrived = threading.Lock()
        self._arrived.acquire()
        self._value: Any = None
        self._error: BaseException | None = None

    def give(self, value: Any) -> None:
        self._value = value
        self._release()

    def fail(self, error: BaseException) -> None:
        self._error = error
        self._release()

    def _release(self) -> None:
        with contextlib.suppress(RuntimeError):  # given twice: the first one stands
            self._arrived.release()

    def wait(self) -> Any:
        self._arrived.acquire()
        self._arrived.release()
        if self._error is not None:
            raise self._error
        return self._value


class _Encoder(pickle.Pickler):
    def __init__(self, file, peer: Peer):
        super().__init__(file, protocol=pickle.HIGHEST_PROTOCOL)
        self._peer = peer

    def persistent_id(self, obj):
        if isinstance(obj, Export):
            return ("mine", self._peer.export(obj.value), callable(obj.value))
        if isinstance(obj, Remote) and object.__getattribute__(obj, "_peer") is self._peer:
            return ("yours", object.__getattribute__(obj, "_id"))
        if type(obj) in ATOMS or type(obj) in CONTAINERS:
            return None  # plain data (lowered): pickled as itself, its items come back here one by one
        return ("mine", self._peer.export(obj), callable(obj))


class _Decoder(pickle.Unpickler):
    def __init__(self, file, peer: Peer):
        super().__init__(file)
        self._peer = peer

    def find_class(self, module, name):
        raise pickle.UnpicklingError(f"only plain data crosses, not {module}.{name}")

    def persistent_load(self, pid):
        if type(pid) is tuple and len(pid) == 2 and pid[0] == "yours" and type(pid[1]) is int:
            return self._peer.local(pid[1])
        if type(pid) is tuple and len(pid) == 3 and pid[0] == "mine" and type(pid[1]) is int \
                and type(pid[2]) is bool:
            return self._peer.handle(pid[1], pid[2])
        raise pickle.UnpicklingError("a malformed handle")


class Peer:
    """One end of the channel: sends requests and serves the other end's.

    ``handler(op, target, *args)`` runs an incoming request on this side and returns its result
    (``target`` is one of our exported objects, or a name for ``get``); the default refuses all
    but calls and public attribute reads, which is what the checker grants the answers.
    """

    def __init__(self, sock: socket.socket, handler=None, workers: int = 16):
        self._sock = sock
        self._send_lock = threading.Lock()
        self._pending: dict[int, _Reply] = {}
        self._ids = itertools.count(1)
        self._exports: dict[int, Any] = {}
        self._export_ids: dict[int, int] = {}  # id(obj) -> handle number
        self._exports_lock = threading.Lock()
        self._handles: dict[int, Remote] = {}
        self._handler = handler or serve_callbacks
        # Workers started now, not on demand: a check counting the threads an answer left running
        # must not count these.
        self._work: queue.SimpleQueue = queue.SimpleQueue()
        self._closed = threading.Event()
        self._workers = workers
        for number in range(workers):
            threading.Thread(target=self._work_loop, name=f"grading-wire-{number}", daemon=True).start()
        self.why_closed = ""
        self._reader = threading.Thread(target=self._read, name="grading-wire-reader", daemon=True)
        self._reader.start()

    # -- what this side holds -----------------------------------------------------------------
    def export(self, obj: Any) -> int:
        with self._exports_lock:
            number = self._export_ids.get(id(obj))
            if number is None or self._exports[number] is not obj:
                number = len(self._exports) + 1
                self._exports[number] = obj
                self._export_ids[id(obj)] = number
            return number

    def handle(self, number: int, is_callable: bool) -> Remote:
        """The one stand-in for the other side's object ``number`` (the same each time, so a
        handle met twice is the same object here)."""
        with self._exports_lock:
            found = self._handles.get(number)
            if found is None:
                found = self._handles[number] = (RemoteCallable if is_callable else Remote)(self, number)
            return found

    def local(self, number: int) -> Any:
        with self._exports_lock:
            if number not in self._exports:
                raise pickle.UnpicklingError(f"no object {number} was handed out here")
            return self._exports[number]

    # -- requests ------------------------------------------------------------------------------
    def request(self, op: str, target: Any, *args: Any) -> Any:
        """Send a request and wait for its reply; raise what the other side raised."""
        number = next(self._ids)
        reply = _Reply()
        self._pending[number] = reply
        try:
            self._send(("req", number, op, target, lower_arguments(args)))
        except OSError:
            self._pending.pop(number, None)
            raise AnswersGone(self.why_closed or "the channel is closed") from None
        if self._closed.is_set():
            self._fail_pending()
        return reply.wait()

    def close(self, why: str = "closed") -> None:
        if not self._closed.is_set():
            self.why_closed = why
            self._closed.set()
        with contextlib.suppress(OSError):
            self._sock.shutdown(socket.SHUT_RDWR)
        self._sock.close()

    @property
    def closed(self) -> bool:
        return self._closed.is_set()

    def wait_closed(self, timeout: float | None = None) -> bool:
        return self._closed.wait(timeout)

    # -- framing -------------------------------------------------------------------------------
    def _send(self, message: tuple) -> None:
        buffer = io.BytesIO()
        _Encoder(buffer, self).dump(message)
        data = buffer.getvalue()
        if len(data) > MAX_FRAME:
            raise ValueError(f"a value of {len(data) >> 20} MiB is over the channel's {MAX_FRAME >> 20} MiB")
        with self._send_lock:
            self._sock.sendall(_HEADER.pack(len(data)) + data)

    def _recv_exactly(self, size: int) -> bytes:
        chunks, left = [], size
        while left:
            chunk = self._sock.recv(min(left, 1 << 20))
            if not chunk:
                raise EOFError
            chunks.append(chunk)
            left -= len(chunk)
        return b"".join(chunks)

    def _read(self) -> None:
        why = "the other side closed the channel"
        try:
            while True:
                (size,) = _HEADER.unpack(self._recv_exactly(_HEADER.size))
                if size > MAX_FRAME:
                    why = f"the other side sent {size >> 20} MiB at once (over {MAX_FRAME >> 20} MiB)"
                    break
                message = _Decoder(io.BytesIO(self._recv_exactly(size)), self).load()
                self._dispatch(message)
        except (EOFError, OSError):
            pass
        except Exception as error:  # a malformed message: the channel is over, and says why
            why = f"the other side sent something that is not a message: {type(error).__name__}: {error}"
        self.why_closed = self.why_closed or why
        self._closed.set()
        self._fail_pending()
        for _ in range(self._workers):
            self._work.put(None)  # each worker ends on one

    def _fail_pending(self) -> None:
        for number in list(self._pending):
            reply = self._pending.pop(number, None)
            if reply is not None:
                reply.fail(AnswersGone(self.why_closed or "the channel is closed"))

    def _dispatch(self, message: Any) -> None:
        if type(message) is not tuple or not message:
            raise ValueError("not a message")
        kind = message[0]
        if kind == "req" and len(message) == 5 and type(message[1]) is int and type(message[4]) is tuple:
            self._work.put(message[1:])
            return
        if kind in ("ok", "err") and len(message) >= 3 and type(message[1]) is int:
            reply = self._pending.pop(message[1], None)
            if reply is None:
                return
            if kind == "ok":
                reply.give(message[2])
            else:
                reply.fail(_exception_from(message[2:]))
            return
        raise ValueError(f"an unknown message kind {kind!r}")

    def _work_loop(self) -> None:
        while (request := self._work.get()) is not None:
            self._serve(*request)

    def _serve(self, number: int, op: str, target: Any, args: tuple) -> None:
        try:
            result = self._handler(op, target, *args)
            reply = ("ok", number, lower(result))
        except BaseException as error:  # whatever it was, the asker hears of it
            reply = ("err", number, type(error).__name__, _message_of(error))
        try:
            self._send(reply)
        except ValueError as error:  # the result was too big to send
            self._send(("err", number, "ValueError", str(error)))
        except OSError:
            pass


def _message_of(error: BaseException) -> str:
    try:
        text = str(error)
    except Exception:  # an exception whose __str__ fails still reaches the asker
        text = f"<{type(error).__name__} whose message could not be read>"
    return text if len(text) <= _MESSAGE_CAP else text[:_MESSAGE_CAP] + " ..."


def _exception_from(fields: tuple) -> Exception:
    name, message = (*fields, "", "")[:2]
    name = name if type(name) is str else "?"
    message = message if type(message) is str else "?"
    if name in PASSED_THROUGH:
        return getattr(builtins, name)(message)
    if name == "LearnerCodeError":  # passed on from the other side: named once
        return LearnerCodeError(message)
    return LearnerCodeError(f"{name}: {message}" if message else name)


def serve_callbacks(op: str, target: Any, *args: Any) -> Any:
    """What the checker lets the answers do with its objects: call them, read public attributes,
    and the operators of :data:`OPERATORS` (iterate a list of its nodes, say); nothing else."""
    if op == "op" and len(args) == 2 and type(args[1]) is tuple:
        return operate(target, *args)
    if op == "call":
        call_args, call_kwargs = args
        return target(*call_args, **call_kwargs)
    if op == "getattr" and type(args[0]) is str and not args[0].startswith("_"):
        return getattr(target, args[0])
    raise PermissionError(f"the tests' objects allow calls, public attributes and operators, not {op}")
