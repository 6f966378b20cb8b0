"""What gRPC status codes say about a call, as the policies read them (by name: no grpc import)."""

OK = "OK"

#: The instance is unwell: what outlier detection counts against it.
SERVER_ERRORS = frozenset({"UNAVAILABLE", "INTERNAL", "UNKNOWN", "DEADLINE_EXCEEDED", "DATA_LOSS"})

#: The request was wrong, not the service: a circuit breaker does not count these as failures.
CLIENT_ERRORS = frozenset({"INVALID_ARGUMENT", "NOT_FOUND", "ALREADY_EXISTS", "PERMISSION_DENIED",
                           "UNAUTHENTICATED", "FAILED_PRECONDITION", "OUT_OF_RANGE", "CANCELLED"})

#: The call could not be served (rejected, timed out, nobody there): a fallback may answer instead.
FALLBACK_CODES = frozenset({"UNAVAILABLE", "DEADLINE_EXCEEDED", "RESOURCE_EXHAUSTED"})

__all__ = ["CLIENT_ERRORS", "FALLBACK_CODES", "OK", "SERVER_ERRORS"]
