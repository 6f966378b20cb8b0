"""The demo shop: six services whose calls nest three levels deep and fan out.

    frontend.Checkout -> orders.CreateOrder -> inventory.Reserve
                                            -> payments.Charge -> fraud.Score
    frontend.Home     -> recommendations.Recommend -> inventory.Stock x count (in parallel)

Each service spends ``work_ms`` (a live setting in the config center) on every call, bounded by
its caller's deadline, then calls its dependencies through ``runtime.client(...)``, which applies
the caller's policies and carries the deadline and the trace on. Frontend.Home degrades to an
empty list when recommendations fail (graceful degradation, 服务降级, at the edge). Orders, payments
and the frontend log what happened to an order (``mesh.service.shop``; see :mod:`mesh.telemetry.logs`).
"""

from __future__ import annotations

import hashlib
import logging
from dataclasses import dataclass

import grpc

from mesh.pb import shop_pb2, shop_pb2_grpc

from ..client.errors import abort_with_reason, pass_on
from ._kind import ServiceKind

log = logging.getLogger("mesh.service.shop")


@dataclass(frozen=True)
class ShopSettings:
    """What the config center can change in a running shop service."""

    work_ms: float = 2.0


PRICES = {"apple": 120, "pear": 90, "plum": 60, "fig": 250, "kiwi": 75, "lime": 40, "date": 300, "yuzu": 500}


def _work(runtime, context) -> None:
    runtime.work(runtime.config.current.work_ms / 1000.0, context)


def _rpc_error(context: grpc.ServicerContext, exc: grpc.RpcError, what: str) -> None:
    """Pass a downstream failure up with its status and its reason (so both propagate along the
    chain, as they would)."""
    pass_on(context, exc, what)


class FrontendServicer(shop_pb2_grpc.FrontendServicer):
    def __init__(self, runtime):
        self.runtime = runtime

    def Checkout(self, request, context):
        _work(self.runtime, context)
        try:
            order = self.runtime.client("orders").CreateOrder(
                shop_pb2.OrderRequest(user=request.user, items=request.items, card=request.card))
        except grpc.RpcError as exc:
            _rpc_error(context, exc, "orders failed")
        return shop_pb2.CheckoutReply(order_id=order.order_id, status="confirmed",
                                      total_cents=order.total_cents)

    def Home(self, request, context):
        _work(self.runtime, context)
        try:
            reply = self.runtime.client("recommendations").Recommend(
                shop_pb2.RecommendRequest(user=request.user, count=request.count or 3))
        except grpc.RpcError as exc:
            log.warning("home page degraded: recommendations failed (%s)", exc.code().name,
                        extra={"user": request.user})
            return shop_pb2.HomeReply(products=[], degraded=True)
        return shop_pb2.HomeReply(products=reply.products, degraded=False)


class OrdersServicer(shop_pb2_grpc.OrdersServicer):
    def __init__(self, runtime):
        self.runtime = runtime

    def CreateOrder(self, request, context):
        _work(self.runtime, context)
        total = sum(PRICES.get(i.sku, 100) * max(i.quantity, 1) for i in request.items)
        try:
            self.runtime.client("inventory").Reserve(shop_pb2.ReserveRequest(items=request.items))
            payment = self.runtime.client("payments").Charge(
                shop_pb2.ChargeRequest(user=request.user, amount_cents=total, card=request.card))
        except grpc.RpcError as exc:
            log.warning("order not placed: %s", exc.details(),
                        extra={"user": request.user, "total_cents": total})
            _rpc_error(context, exc, "order not placed")
        order_id = f"o-{payment.payment_id}"
        log.info("order placed", extra={"order_id": order_id, "user": request.user, "total_cents": total})
        return shop_pb2.OrderReply(order_id=order_id, total_cents=total)


class InventoryServicer(shop_pb2_grpc.InventoryServicer):
    def __init__(self, runtime):
        self.runtime = runtime

    def Reserve(self, request, context):
        _work(self.runtime, context)
        return shop_pb2.ReserveReply(reserved=True)

    def Stock(self, request, context):
        _work(self.runtime, context)
        stock = int(hashlib.blake2b(request.sku.encode(), digest_size=2).hexdigest(), 16) % 50
        return shop_pb2.StockReply(sku=request.sku, stock=stock)


class PaymentsServicer(shop_pb2_grpc.PaymentsServicer):
    def __init__(self, runtime):
        self.runtime = runtime

    def Charge(self, request, context):
        _work(self.runtime, context)
        try:
            score = self.runtime.client("fraud").Score(
                shop_pb2.ScoreRequest(user=request.user, amount_cents=request.amount_cents))
        except grpc.RpcError as exc:
            _rpc_error(context, exc, "payment not checked")
        if score.risk > 0.9:
            log.warning("payment refused: fraud risk %.2f", score.risk,
                        extra={"user": request.user, "amount_cents": request.amount_cents})
            abort_with_reason(context, grpc.StatusCode.FAILED_PRECONDITION, "payment refused: fraud risk",
                              "FRAUD_RISK", risk=f"{score.risk:.2f}")
        digest = hashlib.blake2b(f"{request.user}:{request.amount_cents}".encode(), digest_size=4).hexdigest()
        return shop_pb2.ChargeReply(payment_id=digest)


class FraudServicer(shop_pb2_grpc.FraudServicer):
    def __init__(self, runtime):
        self.runtime = runtime

    def Score(self, request, context):
        _work(self.runtime, context)
        return shop_pb2.ScoreReply(risk=min(request.amount_cents / 100_000, 1.0))


class RecommendationsServicer(shop_pb2_grpc.RecommendationsServicer):
    def __init__(self, runtime):
        self.runtime = runtime

    def Recommend(self, request, context):
        _work(self.runtime, context)
        skus = sorted(PRICES, key=lambda s: hashlib.blake2b(f"{request.user}{s}".encode()).digest())
        skus = skus[: max(1, min(request.count or 3, len(skus)))]
        inventory = self.runtime.client("inventory")
        try:
            stocks = self.runtime.fan_out(
                [lambda s=sku: inventory.Stock(shop_pb2.StockRequest(sku=s)) for sku in skus])
        except grpc.RpcError as exc:
            _rpc_error(context, exc, "stock unknown")
        return shop_pb2.RecommendReply(
            products=[shop_pb2.Product(sku=s.sku, name=s.sku.title(), stock=s.stock) for s in stocks])


def _kind(name: str, service: str, servicer) -> ServiceKind:
    return ServiceKind(name=name, grpc_service=f"shop.{service}", servicer=servicer,
                       add_to_server=getattr(shop_pb2_grpc, f"add_{service}Servicer_to_server"),
                       stub=getattr(shop_pb2_grpc, f"{service}Stub"), settings=ShopSettings)


FRONTEND = _kind("frontend", "Frontend", FrontendServicer)
ORDERS = _kind("orders", "Orders", OrdersServicer)
INVENTORY = _kind("inventory", "Inventory", InventoryServicer)
PAYMENTS = _kind("payments", "Payments", PaymentsServicer)
FRAUD = _kind("fraud", "Fraud", FraudServicer)
RECOMMENDATIONS = _kind("recommendations", "Recommendations", RecommendationsServicer)

SHOP = (FRONTEND, ORDERS, INVENTORY, PAYMENTS, FRAUD, RECOMMENDATIONS)
#: The shop's topology: who calls whom.
SHOP_CALLS = {
    "frontend": ["orders", "recommendations"],
    "orders": ["inventory", "payments"],
    "payments": ["fraud"],
    "recommendations": ["inventory"],
    "inventory": [],
    "fraud": [],
}


def shop_topology(replicas: int = 2) -> dict[str, int]:
    """Return ``{service: replicas}`` for every shop service, ready for ``Mesh(...)``."""
    return {kind.name: replicas for kind in SHOP}
