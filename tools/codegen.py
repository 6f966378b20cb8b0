"""Generate the Python gRPC stubs in ``mesh/pb`` from the ``.proto`` files in ``protos/``.

Run ``python -m tools.codegen`` after editing a proto. The stubs are committed so that an
installed package works without grpcio-tools at build time; ``tests/test_codegen.py`` proves
that regenerating changes nothing.

The proto files are mapped onto the virtual path ``mesh/pb`` so that the generated
``*_pb2_grpc.py`` imports its sibling as ``from mesh.pb import x_pb2`` instead of the
top-level ``import x_pb2`` that plain ``protoc`` writes.
"""

from __future__ import annotations

import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PROTO_DIR = ROOT / "protos"
PACKAGE_DIR = "mesh/pb"


def proto_files(proto_dir: Path = PROTO_DIR) -> list[Path]:
    """Return the ``.proto`` files to compile, sorted by name."""
    return sorted(proto_dir.glob("*.proto"))


def generate(out_root: Path = ROOT, proto_dir: Path = PROTO_DIR) -> list[Path]:
    """Compile every proto into ``out_root/mesh/_pb`` and return the files written."""
    from grpc_tools import protoc

    target = out_root / PACKAGE_DIR
    target.mkdir(parents=True, exist_ok=True)
    (target / "__init__.py").write_text('"""Generated protobuf and gRPC stubs. Do not edit."""\n')
    include = protoc._get_resource_file_name("grpc_tools", "_proto")
    written = []
    for proto in proto_files(proto_dir):
        args = [
            "grpc_tools.protoc",
            f"-I{PACKAGE_DIR}={proto_dir}",
            f"-I{include}",
            f"--python_out={out_root}",
            f"--pyi_out={out_root}",
            f"--grpc_python_out={out_root}",
            str(proto_dir / proto.name),
        ]
        if protoc.main(args) != 0:
            raise RuntimeError(f"protoc failed on {proto}")
        stem = proto.stem
        written += [target / f"{stem}_pb2.py", target / f"{stem}_pb2.pyi", target / f"{stem}_pb2_grpc.py"]
    return written


if __name__ == "__main__":
    for path in generate():
        print(path.relative_to(ROOT))
    sys.exit(0)
