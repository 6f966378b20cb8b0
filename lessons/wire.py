"""Lesson 02 (RPC and protobuf): what a protobuf message looks like on the wire, and what it costs
next to JSON (section 6.6.2).

- :func:`varint` and :func:`varint_steps`: the base-128 varint that protobuf writes integers,
  field tags and lengths in — seven bits per byte, low group first, the top bit saying "more".
  Written out here for teaching (the library does not expose it); tests prove every byte equals
  what protobuf itself writes.
- :func:`fields`: a serialized message read back field by field (number, wire type, bytes),
  through protobuf's own ``UnknownFieldSet`` — the message parsed as an empty one, so that every
  field stays unknown and raw.
- :func:`compare_formats`: protobuf vs JSON for the same messages — bytes, and microseconds to
  encode and decode, measured here, one row per message. JSON is timed two ways: through
  ``google.protobuf.json_format`` (message to text and back, what a service would do) and as the
  standard library's C-accelerated ``json`` on the same data already in a dict (JSON's best case).
"""

from __future__ import annotations

import json
import timeit
from collections.abc import Sequence
from typing import Any

import matplotlib.pyplot as plt
import numpy as np
from google.protobuf import empty_pb2, json_format
from google.protobuf.message import Message
from google.protobuf.unknown_fields import UnknownFieldSet

__all__ = ["WIRE_TYPES", "compare_formats", "fields", "plot_formats", "varint", "varint_steps"]

#: Protobuf's wire types (the low three bits of a field's tag).
WIRE_TYPES = {0: "VARINT", 1: "I64", 2: "LEN", 5: "I32"}


def varint(value: int) -> bytes:
    """Return ``value`` as protobuf writes it: a base-128 varint (negatives as 64-bit two's complement)."""
    if value < 0:
        value += 1 << 64  # int32/int64 negatives always take ten bytes
    out = bytearray()
    while True:
        group, value = value & 0x7F, value >> 7
        if value:
            out.append(group | 0x80)
        else:
            out.append(group)
            return bytes(out)


def varint_steps(value: int) -> list[dict[str, Any]]:
    """Return one row per byte of ``varint(value)``: the seven bits it carries and its "more" bit."""
    return [{"byte": f"{b:08b}", "hex": f"{b:02x}", "more": bool(b & 0x80), "bits": f"{b & 0x7F:07b}",
             "adds": (b & 0x7F) << (7 * i)} for i, b in enumerate(varint(value))]


def fields(message: Message) -> list[dict[str, Any]]:
    """Return one row per field on the wire: number, name, wire type, tag and payload bytes, and
    the value as written (a ``sint`` field shows its zig-zag code; text is decoded as UTF-8).

    Fields appear in the order they were written; a repeated field appears once per element.
    """
    raw = empty_pb2.Empty()
    raw.ParseFromString(message.SerializeToString())
    by_number = message.DESCRIPTOR.fields_by_number
    rows = []
    for field in UnknownFieldSet(raw):
        descriptor = by_number.get(field.field_number)
        tag = varint(field.field_number << 3 | field.wire_type)
        payload = _payload(field.wire_type, field.data)
        rows.append({"number": field.field_number, "name": descriptor.name if descriptor else "?",
                     "wire_type": WIRE_TYPES.get(field.wire_type, str(field.wire_type)),
                     "tag": tag.hex(" "), "payload": payload.hex(" "), "bytes": len(tag) + len(payload),
                     "wire_value": field.data.decode(errors="replace") if isinstance(field.data, bytes)
                     else field.data})
    return rows


def _payload(wire_type: int, data: Any) -> bytes:
    if wire_type == 0:
        return varint(data)
    if wire_type == 1:
        return int(data).to_bytes(8, "little")
    if wire_type == 5:
        return int(data).to_bytes(4, "little")
    return varint(len(data)) + data  # LEN: its length, then the bytes


def compare_formats(messages: dict[str, Message], number: int = 2000) -> list[dict[str, Any]]:
    """Return, per named message, its size and encode/decode time as protobuf and as compact JSON.

    Times are the mean over ``number`` runs on this machine, in microseconds; compare them within
    one run (they move with the machine's load).
    """
    rows = []
    for label, message in messages.items():
        kind = type(message)
        binary = message.SerializeToString()
        text = json_format.MessageToJson(message, indent=None)
        if json_format.Parse(text, kind()) != message or kind.FromString(binary) != message:
            raise ValueError(f"{label}: the message does not survive a round trip")
        data = json_format.MessageToDict(message)
        rows.append({
            "message": label,
            "protobuf_bytes": len(binary), "json_bytes": len(text.encode()),
            "protobuf_encode_us": _micros(message.SerializeToString, number),
            "json_encode_us": _micros(lambda m=message: json_format.MessageToJson(m, indent=None), number),
            "json_stdlib_encode_us": _micros(lambda d=data: json.dumps(d, separators=(",", ":")), number),
            "protobuf_decode_us": _micros(lambda b=binary, k=kind: k.FromString(b), number),
            "json_decode_us": _micros(lambda t=text, k=kind: json_format.Parse(t, k()), number),
            "json_stdlib_decode_us": _micros(lambda t=text: json.loads(t), number),
        })
    return rows


def _micros(call, number: int) -> float:
    return timeit.timeit(call, number=number) / number * 1e6


def plot_formats(rows: Sequence[dict[str, Any]], axes=None):
    """Draw protobuf against JSON per message: bytes on the wire, and encode + decode time
    (rows from :func:`compare_formats`)."""
    if axes is None:
        _, axes = plt.subplots(1, 2, figsize=(12, 0.7 * len(rows) + 1.6), sharey=True,
                               layout="constrained")
    labels = [r["message"] for r in rows]
    y = np.arange(len(rows))
    size_ax, time_ax = axes
    size_ax.barh(y - 0.2, [r["protobuf_bytes"] for r in rows], height=0.4, label="protobuf", color="#1565c0")
    size_ax.barh(y + 0.2, [r["json_bytes"] for r in rows], height=0.4, label="JSON", color="#ef6c00")
    size_ax.set_yticks(y, labels)
    size_ax.set_xlabel("bytes on the wire")
    size_ax.set_title("size", fontsize=10)
    size_ax.legend(loc="lower right")
    ways = [("protobuf", "protobuf", "#1565c0"), ("json", "JSON (json_format)", "#ef6c00"),
            ("json_stdlib", "JSON (json module, from a dict)", "#ffb74d")]
    for offset, (key, label, colour) in zip((-0.27, 0, 0.27), ways, strict=True):
        total = [r[f"{key}_encode_us"] + r[f"{key}_decode_us"] for r in rows]
        time_ax.barh(y + offset, total, height=0.27, label=label, color=colour)
    time_ax.set_xscale("log")
    time_ax.set_xlabel("encode + decode, µs per message (log scale)")
    time_ax.set_title("time", fontsize=10)
    time_ax.legend(loc="upper left", bbox_to_anchor=(1.01, 1), fontsize=8)
    return axes

