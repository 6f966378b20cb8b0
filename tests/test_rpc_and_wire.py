"""Section 6.6.2 on real sockets: the wire format explained byte for byte as protobuf writes it,
protobuf against JSON, one HTTP/2 connection against REST's, and the streaming calls."""

from __future__ import annotations

import http.client
import threading

import grpc
import numpy as np
import pytest
from google.protobuf import json_format

from lessons import rpc, wire
from mesh.pb import greeter_pb2, greeter_pb2_grpc, shop_pb2, streams_pb2, streams_pb2_grpc
from mesh.services.greeter import GreeterServicer
from mesh.services.ticker import TickerServicer

from .conftest import eventually, listening_ports

EDGES = [1, 127, 128, 300, 16_383, 16_384, 2**31 - 1, -1, -300, -(2**31)]
ADD_GREETER = greeter_pb2_grpc.add_GreeterServicer_to_server
ADD_TICKER = streams_pb2_grpc.add_TickerServicer_to_server
RANDOM = [int(v) for v in np.random.default_rng(1).integers(-(2**31), 2**31, 40) if v != 0]


def _checkout(items: int) -> shop_pb2.CheckoutRequest:
    lines = [shop_pb2.Item(sku=f"sku-{i}", quantity=i + 1) for i in range(items)]
    return shop_pb2.CheckoutRequest(user="ada", card="4242", items=lines)


@pytest.mark.parametrize("value", EDGES + RANDOM)
def test_varint_is_byte_for_byte_what_protobuf_writes(value):
    assert greeter_pb2.HelloReply(age=value).SerializeToString() == b"\x18" + wire.varint(value)  # field 3


def test_zero_is_one_byte_and_proto3_does_not_send_it_at_all():
    assert wire.varint(0) == b"\x00"
    assert greeter_pb2.HelloReply(age=0).SerializeToString() == b""


@pytest.mark.parametrize("value", [0, 1, 127, 128, 300, 2**31 - 1, 2**40 + 5])
def test_varint_steps_add_up_to_the_value_and_only_the_last_byte_stops(value):
    steps = wire.varint_steps(value)
    assert sum(step["adds"] for step in steps) == value
    assert [step["more"] for step in steps] == [True] * (len(steps) - 1) + [False]


@pytest.mark.parametrize("message", [
    greeter_pb2.HelloReply(id=1234, name="Jason", age=24, title=["apple", "purple"]),
    greeter_pb2.HelloReply(age=-1),
    _checkout(3),
    streams_pb2.Number(value=-1),
    streams_pb2.CountdownRequest(start=5, interval=0.25),  # a double: an I64 field
])
def test_the_fields_table_rebuilds_the_message_exactly(message):
    rows = wire.fields(message)
    rebuilt = b"".join(bytes.fromhex(row["tag"] + row["payload"]) for row in rows)
    assert rebuilt == message.SerializeToString()
    assert sum(row["bytes"] for row in rows) == message.ByteSize()
    names = {f.number: f.name for f in message.DESCRIPTOR.fields}
    assert all(row["name"] == names[row["number"]] for row in rows)


def test_zig_zag_keeps_a_small_negative_small():
    (row,) = wire.fields(streams_pb2.Number(value=-1))
    assert (row["wire_type"], row["payload"], row["wire_value"]) == ("VARINT", "01", 1)
    (row,) = wire.fields(greeter_pb2.HelloReply(age=-1))
    assert row["bytes"] == 11  # one tag byte and ten varint bytes


def test_protobuf_is_smaller_than_json_and_the_sizes_are_the_real_ones():
    messages = {"reply": greeter_pb2.HelloReply(id=1234, name="Jason", age=24, title=["apple"]),
                "checkout": _checkout(10)}
    rows = wire.compare_formats(messages, number=20)
    for row, message in zip(rows, messages.values(), strict=True):
        assert row["protobuf_bytes"] == len(message.SerializeToString())
        assert row["json_bytes"] == len(json_format.MessageToJson(message, indent=None).encode())
        assert row["protobuf_bytes"] < row["json_bytes"]
        assert all(row[k] > 0 for k in row if k.endswith("_us"))


@pytest.fixture
def greeter_server():
    server = rpc.LocalServer(ADD_GREETER, GreeterServicer(), name="test-greeter")
    yield server
    server.stop()


def test_concurrent_calls_of_one_channel_share_one_connection(greeter_server):
    with grpc.insecure_channel(greeter_server.address) as channel:
        stub = greeter_pb2_grpc.GreeterStub(channel)
        calls = [stub.SayHello.future(greeter_pb2.HelloRequest(name=f"u{n}"), timeout=5) for n in range(30)]
        assert [c.result().name for c in calls] == [f"u{n}" for n in range(30)]
        assert rpc.connections_to(greeter_server.port) == 1


def test_a_second_local_server_of_the_same_name_stops_the_first_and_stop_ends_its_threads(greeter_server):
    first_port = greeter_server.port
    second = rpc.LocalServer(ADD_GREETER, GreeterServicer(), name="test-greeter")
    assert first_port not in listening_ports() and second.port in listening_ports()
    with grpc.insecure_channel(second.address) as channel:
        assert greeter_pb2_grpc.GreeterStub(channel).SayHello(greeter_pb2.HelloRequest(), timeout=5).age == 24
    second.stop()
    assert second.port not in listening_ports()
    eventually(lambda: not [t for t in threading.enumerate() if t.name.startswith("test-greeter-rpc")])


def test_rest_opens_a_connection_per_call_unless_kept_alive():
    with rpc.RestGreeter() as rest:
        fresh = rpc.call_rest(rest.url, calls=8, name="Ada")
        kept = rpc.call_rest(rest.url, calls=8, keep_alive=True)
        assert {a["name"] for a in fresh} == {"Ada"} and fresh[0]["age"] == 24
        assert len({a["client_port"] for a in fresh}) == 8
        assert len({a["client_port"] for a in kept}) == 1
        connection = http.client.HTTPConnection("127.0.0.1", rest.port, timeout=5)
        connection.request("GET", "/nothing")
        assert connection.getresponse().status == 404
        connection.close()


@pytest.fixture
def ticker():
    server = rpc.LocalServer(ADD_TICKER, TickerServicer(), name="test-ticker")
    channel = grpc.insecure_channel(server.address)
    yield streams_pb2_grpc.TickerStub(channel)
    channel.close()
    server.stop()


def test_the_three_streaming_calls(ticker):
    ticks = ticker.Countdown(streams_pb2.CountdownRequest(start=4, interval=0.01), timeout=5)
    assert [t.remaining for t in ticks] == [4, 3, 2, 1]
    total = ticker.Sum(iter([streams_pb2.Number(value=v) for v in (5, -3, 40, -2**40)]), timeout=5)
    assert (total.sum, total.count) == (42 - 2**40, 4)
    with pytest.raises(grpc.RpcError) as bad:
        list(ticker.Countdown(streams_pb2.CountdownRequest(start=-1), timeout=5))
    assert bad.value.code() == grpc.StatusCode.INVALID_ARGUMENT


def test_a_bidirectional_stream_answers_each_line_before_the_next_is_sent(ticker):
    lines = [streams_pb2.Line(seq=n, text=f"line {n}") for n in range(4)]
    rows = rpc.converse(ticker.Chat, lines, gap=0.2)
    order = [(row["direction"], row["message"].seq) for row in rows]
    assert order == [(d, n) for n in range(4) for d in ("sent", "received")]
    assert [row["message"].text for row in rows if row["direction"] == "received"] == [
        f"heard 'line {n}'" for n in range(4)]


def test_proto_source_reads_the_workbench_protos_and_names_them_when_asked_for_another():
    from lessons.rpc import proto_source

    assert "service Greeter" in proto_source("greeter") and "rpc SayHello" in proto_source("greeter")
    with pytest.raises(ValueError, match=r"no protos/nope\.proto.*'greeter'"):
        proto_source("nope")
