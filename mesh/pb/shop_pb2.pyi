from google.protobuf.internal import containers as _containers
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class Item(_message.Message):
    __slots__ = ("sku", "quantity")
    SKU_FIELD_NUMBER: _ClassVar[int]
    QUANTITY_FIELD_NUMBER: _ClassVar[int]
    sku: str
    quantity: int
    def __init__(self, sku: _Optional[str] = ..., quantity: _Optional[int] = ...) -> None: ...

class Product(_message.Message):
    __slots__ = ("sku", "name", "stock")
    SKU_FIELD_NUMBER: _ClassVar[int]
    NAME_FIELD_NUMBER: _ClassVar[int]
    STOCK_FIELD_NUMBER: _ClassVar[int]
    sku: str
    name: str
    stock: int
    def __init__(self, sku: _Optional[str] = ..., name: _Optional[str] = ..., stock: _Optional[int] = ...) -> None: ...

class CheckoutRequest(_message.Message):
    __slots__ = ("user", "items", "card")
    USER_FIELD_NUMBER: _ClassVar[int]
    ITEMS_FIELD_NUMBER: _ClassVar[int]
    CARD_FIELD_NUMBER: _ClassVar[int]
    user: str
    items: _containers.RepeatedCompositeFieldContainer[Item]
    card: str
    def __init__(self, user: _Optional[str] = ..., items: _Optional[_Iterable[_Union[Item, _Mapping]]] = ..., card: _Optional[str] = ...) -> None: ...

class CheckoutReply(_message.Message):
    __slots__ = ("order_id", "status", "total_cents")
    ORDER_ID_FIELD_NUMBER: _ClassVar[int]
    STATUS_FIELD_NUMBER: _ClassVar[int]
    TOTAL_CENTS_FIELD_NUMBER: _ClassVar[int]
    order_id: str
    status: str
    total_cents: int
    def __init__(self, order_id: _Optional[str] = ..., status: _Optional[str] = ..., total_cents: _Optional[int] = ...) -> None: ...

class HomeRequest(_message.Message):
    __slots__ = ("user", "count")
    USER_FIELD_NUMBER: _ClassVar[int]
    COUNT_FIELD_NUMBER: _ClassVar[int]
    user: str
    count: int
    def __init__(self, user: _Optional[str] = ..., count: _Optional[int] = ...) -> None: ...

class HomeReply(_message.Message):
    __slots__ = ("products", "degraded")
    PRODUCTS_FIELD_NUMBER: _ClassVar[int]
    DEGRADED_FIELD_NUMBER: _ClassVar[int]
    products: _containers.RepeatedCompositeFieldContainer[Product]
    degraded: bool
    def __init__(self, products: _Optional[_Iterable[_Union[Product, _Mapping]]] = ..., degraded: _Optional[bool] = ...) -> None: ...

class OrderRequest(_message.Message):
    __slots__ = ("user", "items", "card")
    USER_FIELD_NUMBER: _ClassVar[int]
    ITEMS_FIELD_NUMBER: _ClassVar[int]
    CARD_FIELD_NUMBER: _ClassVar[int]
    user: str
    items: _containers.RepeatedCompositeFieldContainer[Item]
    card: str
    def __init__(self, user: _Optional[str] = ..., items: _Optional[_Iterable[_Union[Item, _Mapping]]] = ..., card: _Optional[str] = ...) -> None: ...

class OrderReply(_message.Message):
    __slots__ = ("order_id", "total_cents")
    ORDER_ID_FIELD_NUMBER: _ClassVar[int]
    TOTAL_CENTS_FIELD_NUMBER: _ClassVar[int]
    order_id: str
    total_cents: int
    def __init__(self, order_id: _Optional[str] = ..., total_cents: _Optional[int] = ...) -> None: ...

class ReserveRequest(_message.Message):
    __slots__ = ("items",)
    ITEMS_FIELD_NUMBER: _ClassVar[int]
    items: _containers.RepeatedCompositeFieldContainer[Item]
    def __init__(self, items: _Optional[_Iterable[_Union[Item, _Mapping]]] = ...) -> None: ...

class ReserveReply(_message.Message):
    __slots__ = ("reserved",)
    RESERVED_FIELD_NUMBER: _ClassVar[int]
    reserved: bool
    def __init__(self, reserved: _Optional[bool] = ...) -> None: ...

class StockRequest(_message.Message):
    __slots__ = ("sku",)
    SKU_FIELD_NUMBER: _ClassVar[int]
    sku: str
    def __init__(self, sku: _Optional[str] = ...) -> None: ...

class StockReply(_message.Message):
    __slots__ = ("sku", "stock")
    SKU_FIELD_NUMBER: _ClassVar[int]
    STOCK_FIELD_NUMBER: _ClassVar[int]
    sku: str
    stock: int
    def __init__(self, sku: _Optional[str] = ..., stock: _Optional[int] = ...) -> None: ...

class ChargeRequest(_message.Message):
    __slots__ = ("user", "amount_cents", "card")
    USER_FIELD_NUMBER: _ClassVar[int]
    AMOUNT_CENTS_FIELD_NUMBER: _ClassVar[int]
    CARD_FIELD_NUMBER: _ClassVar[int]
    user: str
    amount_cents: int
    card: str
    def __init__(self, user: _Optional[str] = ..., amount_cents: _Optional[int] = ..., card: _Optional[str] = ...) -> None: ...

class ChargeReply(_message.Message):
    __slots__ = ("payment_id",)
    PAYMENT_ID_FIELD_NUMBER: _ClassVar[int]
    payment_id: str
    def __init__(self, payment_id: _Optional[str] = ...) -> None: ...

class ScoreRequest(_message.Message):
    __slots__ = ("user", "amount_cents")
    USER_FIELD_NUMBER: _ClassVar[int]
    AMOUNT_CENTS_FIELD_NUMBER: _ClassVar[int]
    user: str
    amount_cents: int
    def __init__(self, user: _Optional[str] = ..., amount_cents: _Optional[int] = ...) -> None: ...

class ScoreReply(_message.Message):
    __slots__ = ("risk",)
    RISK_FIELD_NUMBER: _ClassVar[int]
    risk: float
    def __init__(self, risk: _Optional[float] = ...) -> None: ...

class RecommendRequest(_message.Message):
    __slots__ = ("user", "count")
    USER_FIELD_NUMBER: _ClassVar[int]
    COUNT_FIELD_NUMBER: _ClassVar[int]
    user: str
    count: int
    def __init__(self, user: _Optional[str] = ..., count: _Optional[int] = ...) -> None: ...

class RecommendReply(_message.Message):
    __slots__ = ("products",)
    PRODUCTS_FIELD_NUMBER: _ClassVar[int]
    products: _containers.RepeatedCompositeFieldContainer[Product]
    def __init__(self, products: _Optional[_Iterable[_Union[Product, _Mapping]]] = ...) -> None: ...
