"""The committed stubs in mesh/pb are exactly what the protos generate."""

from __future__ import annotations

from tools import codegen


def test_regenerating_the_stubs_changes_nothing(tmp_path):
    written = codegen.generate(out_root=tmp_path)
    assert written, "no proto compiled"
    for path in [*written, tmp_path / codegen.PACKAGE_DIR / "__init__.py"]:
        committed = codegen.ROOT / path.relative_to(tmp_path)
        assert committed.read_bytes() == path.read_bytes(), f"{committed} is stale: run make protos"


def test_greeter_proto_is_the_chapters():
    from mesh.pb import greeter_pb2

    service = greeter_pb2.DESCRIPTOR.services_by_name["Greeter"]
    assert [m.name for m in service.methods] == ["SayHello"]
    reply = greeter_pb2.HelloReply.DESCRIPTOR
    assert [(f.name, f.number) for f in reply.fields] == [("id", 1), ("name", 2), ("age", 3), ("title", 4)]
    assert reply.fields_by_name["title"].is_repeated
    assert [f.name for f in greeter_pb2.HelloRequest.DESCRIPTOR.fields] == ["name"]
