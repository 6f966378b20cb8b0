from google.protobuf.internal import containers as _containers
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class StatusRequest(_message.Message):
    __slots__ = ("recent_errors",)
    RECENT_ERRORS_FIELD_NUMBER: _ClassVar[int]
    recent_errors: int
    def __init__(self, recent_errors: _Optional[int] = ...) -> None: ...

class Breaker(_message.Message):
    __slots__ = ("name", "state")
    NAME_FIELD_NUMBER: _ClassVar[int]
    STATE_FIELD_NUMBER: _ClassVar[int]
    name: str
    state: str
    def __init__(self, name: _Optional[str] = ..., state: _Optional[str] = ...) -> None: ...

class RecentError(_message.Message):
    __slots__ = ("time", "method", "code", "message", "trace_id")
    TIME_FIELD_NUMBER: _ClassVar[int]
    METHOD_FIELD_NUMBER: _ClassVar[int]
    CODE_FIELD_NUMBER: _ClassVar[int]
    MESSAGE_FIELD_NUMBER: _ClassVar[int]
    TRACE_ID_FIELD_NUMBER: _ClassVar[int]
    time: float
    method: str
    code: str
    message: str
    trace_id: str
    def __init__(self, time: _Optional[float] = ..., method: _Optional[str] = ..., code: _Optional[str] = ..., message: _Optional[str] = ..., trace_id: _Optional[str] = ...) -> None: ...

class StatusReply(_message.Message):
    __slots__ = ("instance", "service", "version", "health", "calls_served", "in_flight", "settings", "breakers", "recent_errors")
    class SettingsEntry(_message.Message):
        __slots__ = ("key", "value")
        KEY_FIELD_NUMBER: _ClassVar[int]
        VALUE_FIELD_NUMBER: _ClassVar[int]
        key: str
        value: str
        def __init__(self, key: _Optional[str] = ..., value: _Optional[str] = ...) -> None: ...
    INSTANCE_FIELD_NUMBER: _ClassVar[int]
    SERVICE_FIELD_NUMBER: _ClassVar[int]
    VERSION_FIELD_NUMBER: _ClassVar[int]
    HEALTH_FIELD_NUMBER: _ClassVar[int]
    CALLS_SERVED_FIELD_NUMBER: _ClassVar[int]
    IN_FLIGHT_FIELD_NUMBER: _ClassVar[int]
    SETTINGS_FIELD_NUMBER: _ClassVar[int]
    BREAKERS_FIELD_NUMBER: _ClassVar[int]
    RECENT_ERRORS_FIELD_NUMBER: _ClassVar[int]
    instance: str
    service: str
    version: str
    health: str
    calls_served: int
    in_flight: int
    settings: _containers.ScalarMap[str, str]
    breakers: _containers.RepeatedCompositeFieldContainer[Breaker]
    recent_errors: _containers.RepeatedCompositeFieldContainer[RecentError]
    def __init__(self, instance: _Optional[str] = ..., service: _Optional[str] = ..., version: _Optional[str] = ..., health: _Optional[str] = ..., calls_served: _Optional[int] = ..., in_flight: _Optional[int] = ..., settings: _Optional[_Mapping[str, str]] = ..., breakers: _Optional[_Iterable[_Union[Breaker, _Mapping]]] = ..., recent_errors: _Optional[_Iterable[_Union[RecentError, _Mapping]]] = ...) -> None: ...
