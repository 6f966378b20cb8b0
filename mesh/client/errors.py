"""Unified error handling (统一错误处理): rich gRPC errors that say *why*, machine-readably, from the
service that failed a call all the way to the gateway's HTTP answer.

A status code says how a call failed; an application needs the reason. gRPC's rich error model
(``google.rpc.Status``, sent in the ``grpc-status-details-bin`` trailer; ``grpcio-status`` reads
and writes it) adds typed details; this workbench uses ``google.rpc.ErrorInfo`` — a stable
``reason`` (``FRAUD_RISK``), its ``domain``, and ``metadata`` a client may act on:

- :func:`abort_with_reason` fails the call being served with a code, a message and an ErrorInfo;
- :func:`pass_on` fails it with a downstream call's error, keeping that error's details (so the
  reason climbs the call chain with the status, as the code already does);
- :func:`reason_of` reads the ErrorInfo of a failed call (``None`` when there is none), which the
  gateway puts in its JSON error body beside the HTTP status.
"""

from __future__ import annotations

from typing import Any

import grpc
from google.rpc import error_details_pb2, status_pb2
from grpc_status import rpc_status

__all__ = ["DOMAIN", "abort_with_reason", "pass_on", "reason_of"]

#: The domain of the reasons the workbench's services give (ErrorInfo.domain).
DOMAIN = "shop.workbench"


def abort_with_reason(context: grpc.ServicerContext, code: grpc.StatusCode, message: str, reason: str,
                      **metadata: Any) -> None:
    """End the call being served with ``code`` and ``message``, and an ErrorInfo of ``reason``."""
    info = error_details_pb2.ErrorInfo(reason=reason, domain=DOMAIN,
                                       metadata={k: str(v) for k, v in metadata.items()})
    status = status_pb2.Status(code=code.value[0], message=message)
    status.details.add().Pack(info)
    context.abort_with_status(rpc_status.to_status(status))


def pass_on(context: grpc.ServicerContext, error: grpc.RpcError, what: str) -> None:
    """End the call being served with a downstream ``error``: its code, ``what`` before its
    message, and its details (if it had any) unchanged."""
    status = _status_of(error)
    if status is None or not status.details:
        context.abort(error.code(), f"{what}: {error.details()}")
    status.message = f"{what}: {status.message}"
    context.abort_with_status(rpc_status.to_status(status))


def reason_of(error: grpc.RpcError) -> dict[str, Any] | None:
    """Return the ErrorInfo of a failed call as ``{"reason", "domain", "metadata"}``, or None."""
    status = _status_of(error)
    for detail in status.details if status is not None else ():
        if detail.Is(error_details_pb2.ErrorInfo.DESCRIPTOR):
            info = error_details_pb2.ErrorInfo()
            detail.Unpack(info)
            return {"reason": info.reason, "domain": info.domain, "metadata": dict(info.metadata)}
    return None


def _status_of(error: grpc.RpcError) -> status_pb2.Status | None:
    """The rich status a failed call carried, if it carried one (errors the mesh makes itself, and
    in-process ones, carry none)."""
    if not hasattr(error, "trailing_metadata"):
        return None
    try:
        return rpc_status.from_call(error)
    except (ValueError, TypeError, AttributeError):  # a status that contradicts the call's own code
        return None
