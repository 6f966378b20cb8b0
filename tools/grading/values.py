"""What crosses the grading channel: plain data as itself, anything else as a handle.

Plain data is the exact built-in types (``None``, ``bool``, ``int``, ``float``, ``str``, ``bytes``
and ``list``, ``tuple``, ``dict``, ``set``, ``frozenset`` of them); :func:`lower` makes a value ready
to send (a NumPy scalar becomes the number it holds; anything else, or a container holding
anything else, goes as a handle). A :class:`Remote` stands in for the other side's object: it
forwards attribute reads, calls and the :data:`OPERATORS`, and compares the plain value the other
side reports for it, so an object whose ``__eq__`` always says yes cannot say so across.
:func:`operate` runs an operator for the other side.
"""

from __future__ import annotations

import itertools
from typing import Any

__all__ = ["ATOMS", "CONTAINERS", "OPERATORS", "Export", "Remote", "RemoteCallable", "is_data", "lower",
           "lower_arguments", "operate"]

ATOMS = (type(None), bool, int, float, str, bytes)
CONTAINERS = (list, tuple, dict, set, frozenset)
#: Operators a handle forwards (the answers side runs the built-in of the same name on its object).
OPERATORS = frozenset({"len", "iter", "next", "getitem", "setitem", "delitem", "contains", "bool",
                       "repr", "str", "value"})

class Export:
    """Marks a value :func:`lower` found not to be plain data: it goes as a handle."""

    __slots__ = ("value",)

    def __init__(self, value: Any):
        self.value = value


def lower(value: Any, depth: int = 0) -> Any:
    """``value`` made ready to send: plain data as itself, every NumPy scalar as the Python number
    it holds (a learner's ``np.percentile`` is a ``float`` on the other side), a handle of ours
    as itself, and anything else — a container holding anything else too — marked to go as a
    handle. So a container that arrives holds only data and handles, and building it (hashing
    its keys) never needs to ask the other side anything."""
    kind = type(value)
    if kind in ATOMS or isinstance(value, Remote):
        return value
    if kind in CONTAINERS and depth <= 100:
        pairs = value.items() if kind is dict else ((item, None) for item in value)
        lowered = [(lower(a, depth + 1), lower(b, depth + 1)) for a, b in pairs]
        if any(isinstance(a, Export) or isinstance(b, Export) for a, b in lowered):
            return Export(value)
        return dict(lowered) if kind is dict else kind(a for a, _ in lowered)
    if getattr(kind, "__module__", "") == "numpy" and callable(getattr(value, "item", None)) \
            and getattr(value, "ndim", None) == 0:
        item = value.item()
        if type(item) in ATOMS:
            return item
    return Export(value)


def lower_arguments(args: tuple) -> tuple:
    """A request's arguments lowered item by item, their own tuples and dicts kept as they are
    (a call's positional and keyword arguments; an operator's)."""
    def one(value):
        if type(value) is tuple:
            return tuple(lower(item) for item in value)
        if type(value) is dict:
            return {key: lower(item) for key, item in value.items()}
        return lower(value)

    return tuple(one(value) for value in args)


def is_data(value: Any, depth: int = 0) -> bool:
    """Whether ``value`` is plain data of the exact built-in types, all the way down."""
    kind = type(value)
    if kind in ATOMS:
        return True
    if kind not in CONTAINERS or depth > 100:
        return False
    items = itertools.chain.from_iterable(value.items()) if kind is dict else value
    return all(is_data(item, depth + 1) for item in items)


class Remote:
    """A handle to an object on the other side. Attribute reads and the operators below go there;
    a comparison compares the plain value the other side reports (``value``) with ours."""

    __slots__ = ("__weakref__", "_id", "_peer")

    def __init__(self, peer: Any, ident: int):  # a wire.Peer
        object.__setattr__(self, "_peer", peer)
        object.__setattr__(self, "_id", ident)

    def __getattr__(self, name: str):
        return self._peer.request("getattr", self, name)

    def __setattr__(self, name: str, value: Any) -> None:
        self._peer.request("setattr", self, name, value)

    def __repr__(self) -> str:
        return self._peer.request("op", self, "repr", ())

    def __str__(self) -> str:
        return self._peer.request("op", self, "str", ())

    def __len__(self) -> int:
        return self._peer.request("op", self, "len", ())

    def __iter__(self):
        return self._peer.request("op", self, "iter", ())

    def __next__(self):
        return self._peer.request("op", self, "next", ())

    def __getitem__(self, key):
        return self._peer.request("op", self, "getitem", (key,))

    def __setitem__(self, key, value) -> None:
        self._peer.request("op", self, "setitem", (key, value))

    def __delitem__(self, key) -> None:
        self._peer.request("op", self, "delitem", (key,))

    def __contains__(self, item) -> bool:
        return self._peer.request("op", self, "contains", (item,))

    def __bool__(self) -> bool:
        return self._peer.request("op", self, "bool", ())

    def __hash__(self) -> int:
        # Local, never a question to the other side: a handle may be a key of a dict being built
        # by the thread that reads the channel.
        return hash((id(self._peer), self._id))

    def _value(self):
        value = self._peer.request("op", self, "value", ())
        if not is_data(value):
            raise TypeError("the other side gave no plain value to compare")
        return value

    def __eq__(self, other):
        return self._value() == other

    def __ne__(self, other):
        return self._value() != other

    def __lt__(self, other):
        return self._value() < other

    def __le__(self, other):
        return self._value() <= other

    def __gt__(self, other):
        return self._value() > other

    def __ge__(self, other):
        return self._value() >= other


class RemoteCallable(Remote):
    """A handle to a function, class or other callable on the other side."""

    __slots__ = ()

    def __call__(self, *args, **kwargs):
        return self._peer.request("call", self, args, kwargs)


def operate(target: Any, name: str, args: tuple) -> Any:
    """Run operator ``name`` (one of :data:`OPERATORS`) on ``target``, for the other side."""
    if name not in OPERATORS:
        raise ValueError(f"no such operator: {name!r}")
    if name == "value":
        return _as_data(target)
    simple = {"len": len, "iter": iter, "next": next, "bool": bool, "repr": repr, "str": str}
    if name in simple:
        return simple[name](target)
    if name == "getitem":
        return target[args[0]]
    if name == "setitem":
        target[args[0]] = args[1]
        return None
    if name == "delitem":
        del target[args[0]]
        return None
    if name == "contains":
        return args[0] in target
    raise ValueError(f"no such operator: {name!r}")


def _as_data(value: Any, depth: int = 0) -> Any:
    """The plain value of ``value`` (a ``Counter`` as a ``dict``, a named tuple as a ``tuple``), for
    the checker to compare; a ``TypeError`` when it has none."""
    if depth > 100:
        raise TypeError("nested too deep to compare")
    for base in (bool, int, float, str, bytes):
        if isinstance(value, base):
            return base(value)
    if value is None:
        return None
    if isinstance(value, dict):
        return {_as_data(k, depth + 1): _as_data(v, depth + 1) for k, v in value.items()}
    for base in (list, tuple, set, frozenset):
        if isinstance(value, base):
            return base(_as_data(item, depth + 1) for item in value)
    if getattr(type(value), "__module__", "") == "numpy" and callable(getattr(value, "tolist", None)):
        return _as_data(value.tolist(), depth + 1)
    raise TypeError(f"a {type(value).__name__} has no plain value to compare")
