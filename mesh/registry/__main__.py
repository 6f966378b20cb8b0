"""Run the embedded registry standalone: ``python -m mesh.registry --http-port 8500 --dns-port 8600``."""

from __future__ import annotations

import argparse
import signal
import sys
import threading
from pathlib import Path

from ._server import Registry
from .acl import ALLOW_ALL, DENY_ALL, ACLConfig


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m mesh.registry",
        description="A Consul-compatible registry on loopback; runs until interrupted.",
    )
    parser.add_argument("--http-port", type=int, default=8500, help="HTTP API port (default 8500)")
    parser.add_argument("--dns-port", type=int, default=8600,
                        help="DNS port, UDP (default 8600; -1 for no DNS server)")
    parser.add_argument("--host", default="127.0.0.1", help="address to listen on (default 127.0.0.1)")
    parser.add_argument("--node", default="workbench", help="node name (default workbench)")
    parser.add_argument("--datacenter", default="dc1", help="datacenter name (default dc1)")
    parser.add_argument("--acl-default-policy", choices=(ALLOW_ALL, DENY_ALL),
                        help="turn Consul's ACL system on; what no rule names is allowed or denied")
    parser.add_argument("--acl-management-token", metavar="TOKEN",
                        help="turn ACLs on with this initial management token (its SecretID); other "
                             "users of the machine can read a command line: prefer the -file form")
    parser.add_argument("--acl-management-token-file", metavar="FILE", type=Path,
                        help="the same, read from the first line of FILE")
    args = parser.parse_args(argv)
    token = args.acl_management_token
    if args.acl_management_token_file is not None:
        try:
            token = args.acl_management_token_file.read_text().strip()
        except OSError as exc:
            parser.error(f"cannot read the management token: {exc}")
    acl = None
    if args.acl_default_policy or token is not None:
        try:
            acl = ACLConfig(args.acl_default_policy or DENY_ALL, token)
        except ValueError as exc:
            parser.error(str(exc))
    registry = Registry(http_port=args.http_port, host=args.host, node_name=args.node,
                        datacenter=args.datacenter, dns_port=None if args.dns_port < 0 else args.dns_port,
                        acl=acl)
    try:
        registry.start()
    except OSError as exc:
        print(f"cannot listen on {args.host} (HTTP {args.http_port}, DNS {args.dns_port}): "
              f"{exc.strerror or exc}", file=sys.stderr)
        return 1
    print(f"registry: HTTP API on {registry.url} (export CONSUL_HTTP_ADDR={registry.http_address})",
          flush=True)
    if acl is not None:
        bootstrap = ("with the management token given" if acl.management_token
                     else "bootstrap once: PUT /v1/acl/bootstrap")
        print(f"registry: ACLs on, default policy {acl.default_policy}; {bootstrap}", flush=True)
    if registry.dns_port is not None:
        print(f"registry: DNS on {registry.host}:{registry.dns_port} (UDP), "
              f"e.g. dig @{registry.host} -p {registry.dns_port} consul.service.consul", flush=True)
    done = threading.Event()
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, lambda *_: done.set())
    done.wait()
    registry.stop()
    print("registry: stopped", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
