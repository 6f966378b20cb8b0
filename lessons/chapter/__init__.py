"""The chapter's own code samples: as printed, as corrected, and run for real.

``printed("greeter_server")`` is the sample exactly as the chapter prints it (kept in
``printed/*.txt`` because it does not compile or run as it stands); ``corrected(...)`` is the
runnable version beside this file, with each change marked ``FIX``; :data:`DEFECTS` lists what was
wrong. :func:`first_error` shows the error the printed code stops at; :func:`start_server` and
:func:`run_client` run the corrected samples as separate processes, as the chapter runs them.
"""

from __future__ import annotations

import difflib
import os
import signal
import socket
import subprocess
import sys
from pathlib import Path

from mesh.pb import greeter_pb2, greeter_pb2_grpc

HERE = Path(__file__).resolve().parent
SAMPLES = ("greeter_server", "greeter_client")

DEFECTS = [
    {"sample": "compile command", "printed": "-I. ... ./proto/Greeter.proto",
     "problem": "writes Greeter_pb2.py into proto/, but the samples import it from the top level",
     "fix": "compile with -I./proto (the workbench compiles protos/ into mesh/pb once)"},
    {"sample": "greeter_server", "printed": "Greeter_pb2_grpc.ServerInterfaceServicer",
     "problem": "service Greeter generates GreeterServicer", "fix": "subclass GreeterServicer"},
    {"sample": "greeter_server", "printed": "HelloReply(..., int = 24, ...)",
     "problem": "HelloReply has no field `int`", "fix": "age = 24"},
    {"sample": "greeter_server", "printed": "G_pb2_grpc.add_ServerInterfaceServicer_to_server",
     "problem": "G_pb2_grpc is undefined, and the generated function is add_GreeterServicer_to_server",
     "fix": "Greeter_pb2_grpc.add_GreeterServicer_to_server"},
    {"sample": "greeter_server", "printed": "logging.basicConfig()",
     "problem": "logging is used but never imported", "fix": "import logging"},
    {"sample": "greeter_server", "printed": 'register("greeter_server", "0.0.0.0", 12006)',
     "problem": "0.0.0.0 is a listen-anywhere address: a TCP check or a client cannot dial it",
     "fix": "register (and listen on) 127.0.0.1"},
    {"sample": "greeter_server", "printed": "while True: time.sleep(10000)",
     "problem": "Ctrl-C may be caught by one of gRPC's threads: Python notes it, but the main thread "
                "sleeps on (up to 10000 s) and the server neither deregisters nor stops",
     "fix": "server.wait_for_termination(), which wakes every 0.1 s to act on it"},
    {"sample": "greeter_client", "printed": "'''查询出可用的一个ip，和端口''' at column 0",
     "problem": "the docstring is not indented: IndentationError before anything runs",
     "fix": "indent it with the function body"},
    {"sample": "greeter_client", "printed": "consul_resolver.port = 8900",
     "problem": "Consul answers DNS on 8600 by default", "fix": "port 8600"},
    {"sample": "greeter_client", "printed": "consul_resolver.query(...)",
     "problem": "dnspython 2 deprecates query()", "fix": "resolve()"},
    {"sample": "greeter_client", "printed": "Greeter_pb2_grpc.ServerInterfaceStub",
     "problem": "the generated stub is GreeterStub", "fix": "GreeterStub"},
    {"sample": "greeter_client", "printed": "dnsanswer[0].address, dnsanswer_srv[0].port",
     "problem": "two queries, each shuffled: the address and the port may come from different "
                "instances", "fix": "take both from one SRV answer (get_ip_port_from_srv)"},
    {"sample": "library", "printed": "import consul  (python-consul)",
     "problem": "python-consul is unmaintained since 2018",
     "fix": "py-consul, its maintained successor, with the same `import consul`"},
]


def printed(sample: str) -> str:
    """Return the sample's source exactly as the chapter prints it."""
    return (HERE / "printed" / f"{_check(sample)}.py.txt").read_text(encoding="utf-8")


def corrected(sample: str) -> str:
    """Return the source of the corrected, runnable sample."""
    return (HERE / f"{_check(sample)}.py").read_text(encoding="utf-8")


def diff(sample: str) -> str:
    """Return a unified diff from the printed sample to the corrected one."""
    return "".join(difflib.unified_diff(
        printed(sample).splitlines(keepends=True), corrected(sample).splitlines(keepends=True),
        fromfile=f"{sample} (as printed)", tofile=f"{sample} (corrected)"))


def first_error(sample: str) -> str:
    """Run the printed sample's module level (not its ``__main__`` block); return the first error.

    The stubs are provided under the names the sample imports, as if it had been compiled right,
    so what fails is the sample itself.
    """
    source = printed(sample)
    try:
        code = compile(source, f"<{sample} as printed>", "exec")
    except SyntaxError as exc:
        return f"{type(exc).__name__}: {exc.msg} (line {exc.lineno})"
    fake_modules = {"Greeter_pb2": greeter_pb2, "Greeter_pb2_grpc": greeter_pb2_grpc}
    saved = {name: sys.modules.get(name) for name in fake_modules}
    sys.modules.update(fake_modules)
    try:
        exec(code, {"__name__": f"printed_{sample}"})
    except Exception as exc:
        return f"{type(exc).__name__}: {exc}"
    finally:
        for name, module in saved.items():
            if module is None:
                sys.modules.pop(name, None)
            else:
                sys.modules[name] = module
    return "no error at module level"


def free_port() -> int:
    """Return a TCP port on 127.0.0.1 that nothing listens on now (for the chapter's server)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def pairing_demo(client, dns_port: int, lookups: int = 50) -> dict[str, int]:
    """Show the A-then-SRV defect: register two instances on different hosts, resolve many times.

    Returns how many lookups paired an address with another instance's port, for the printed
    ``get_ip_port`` and for ``get_ip_port_from_srv``. The two catalog entries are removed after.
    """
    from . import greeter_client

    hosts = {"10.0.0.1": 1001, "10.0.0.2": 2002}
    for i, (address, port) in enumerate(hosts.items()):
        client.catalog.register(f"demo-host-{i}", address, check={"Name": "alive", "Status": "passing"},
                                service={"Service": "pairing_demo", "Port": port})
    greeter_client.consul_resolver.port = dns_port
    try:
        printed_way = [greeter_client.get_ip_port("pairing_demo") for _ in range(lookups)]
        fixed_way = [greeter_client.get_ip_port_from_srv("pairing_demo") for _ in range(lookups)]
    finally:
        for i in range(len(hosts)):
            client.catalog.deregister(f"demo-host-{i}")
    return {
        "lookups": lookups,
        "mismatched (A then SRV, as printed)": sum(hosts[ip] != port for ip, port in printed_way),
        "mismatched (one SRV answer)": sum(hosts[ip] != port for ip, port in fixed_way),
    }


def _check(sample: str) -> str:
    if sample not in SAMPLES:
        raise KeyError(f"unknown sample {sample!r}; the chapter's samples are {SAMPLES}")
    return sample


def _env(consul_http_addr: str, **extra: str) -> dict[str, str]:
    env = dict(os.environ, CONSUL_HTTP_ADDR=consul_http_addr, PYTHONUNBUFFERED="1", **extra)
    return env


def start_server(consul_http_addr: str, port: int = 12006, check_interval: str = "10s",
                 timeout: float = 30.0) -> subprocess.Popen:
    """Start the corrected server as its own process; return once it has registered."""
    proc = subprocess.Popen(
        [sys.executable, "-m", "lessons.chapter.greeter_server"],
        env=_env(consul_http_addr, GREETER_PORT=str(port), GREETER_CHECK_INTERVAL=check_interval),
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )
    lines = []
    for line in proc.stdout:
        lines.append(line)
        if "成功" in line:  # "registered successfully"
            proc.startup_output = "".join(lines)
            return proc
    proc.wait(timeout)
    raise RuntimeError(f"the chapter's server exited ({proc.returncode}):\n{''.join(lines)}"
                       f"{proc.stderr.read()}")


def stop_server(proc: subprocess.Popen, timeout: float = 30.0) -> str:
    """Interrupt the server as Ctrl-C would (it deregisters itself); return what it printed."""
    proc.send_signal(signal.SIGINT)
    out, err = proc.communicate(timeout=timeout)
    return out + err


def run_client(dns_port: int, timeout: float = 30.0) -> str:
    """Run the corrected client as its own process against the registry's DNS; return its output."""
    proc = subprocess.run(
        [sys.executable, "-m", "lessons.chapter.greeter_client"],
        env=dict(os.environ, CONSUL_DNS_PORT=str(dns_port)), capture_output=True, text=True,
        timeout=timeout,
    )
    if proc.returncode != 0:
        raise RuntimeError(f"the chapter's client failed:\n{proc.stderr}")
    return proc.stdout


__all__ = ["DEFECTS", "SAMPLES", "corrected", "diff", "first_error", "free_port", "pairing_demo",
           "printed", "run_client", "start_server", "stop_server"]

