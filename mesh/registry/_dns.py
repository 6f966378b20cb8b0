"""Consul's DNS interface on UDP: ``<name>.service.consul`` answers with A and SRV records.

Names answered, as Consul documents them (the datacenter label is optional)::

    <service>.service[.<dc>].consul          A / SRV of its healthy instances
    <tag>.<service>.service[.<dc>].consul    only instances carrying the tag
    _<service>._<tag>.service[.<dc>].consul  RFC 2782 form; the tag ``_tcp`` means "any tag"
    <node>.node[.<dc>].consul                A of a node

As in Consul, answers are shuffled on every query (crude load balancing), have TTL 0, carry at most
three records over UDP (``udp_answer_limit``), and an SRV answer names its target
``<node>.node.<dc>.consul.`` with the target's A record in the additional section. A name with no
healthy instance is NXDOMAIN with the zone's SOA. dnspython parses and builds the wire format.
"""

from __future__ import annotations

import asyncio
import ipaddress

import dns.flags
import dns.message
import dns.name
import dns.rcode
import dns.rdata
import dns.rdataclass
import dns.rdatatype
import dns.rrset

from ._catalog import CRITICAL, MAINTENANCE, PASSING, Service
from ._context import Context

DOMAIN = dns.name.from_text("consul.")
UDP_ANSWER_LIMIT = 3
TTL = 0


class DNSProtocol(asyncio.DatagramProtocol):
    """Answer DNS queries from the registry's catalog."""

    def __init__(self, ctx: Context, only_passing: bool = True):
        self.ctx = ctx
        self.only_passing = only_passing
        self.transport: asyncio.DatagramTransport | None = None

    def connection_made(self, transport) -> None:
        self.transport = transport

    def datagram_received(self, data: bytes, addr) -> None:
        try:
            query = dns.message.from_wire(data)
        except Exception:
            return
        response = self.answer(query)
        self.transport.sendto(response.to_wire(), addr)

    # -- answering --------------------------------------------------------------------------
    def answer(self, query: dns.message.Message) -> dns.message.Message:
        response = dns.message.make_response(query)
        response.flags |= dns.flags.AA
        if len(query.question) != 1:
            response.set_rcode(dns.rcode.FORMERR)
            return response
        question = query.question[0]
        qname = question.name
        if not qname.is_subdomain(DOMAIN):
            response.flags &= ~dns.flags.AA
            response.set_rcode(dns.rcode.REFUSED)
            return response
        labels = [label.decode().lower() for label in qname.relativize(DOMAIN).labels]
        dc = self.ctx.catalog.datacenter
        if len(labels) >= 2 and labels[-1] == dc:
            labels = labels[:-1]
        found = self._lookup(labels)
        if found is None:
            return self._nxdomain(response)
        kind, items = found
        qtype = question.rdtype
        if kind == "node":
            if qtype in (dns.rdatatype.A, dns.rdatatype.ANY):
                response.answer.append(self._a(qname, items))
            else:
                self._soa(response)
            return response
        services = items[:UDP_ANSWER_LIMIT]
        if qtype in (dns.rdatatype.A, dns.rdatatype.ANY):
            response.answer.append(self._a(qname, [self._address(s) for s in services]))
        elif qtype == dns.rdatatype.SRV:
            srv = dns.rrset.RRset(qname, dns.rdataclass.IN, dns.rdatatype.SRV)
            srv.update_ttl(TTL)
            for service in services:
                target = self._target(service)
                srv.add(dns.rdata.from_text("IN", "SRV", f"1 1 {service.port} {target}"))
                extra = self._a(dns.name.from_text(target), [self._address(service)])
                if extra not in response.additional:
                    response.additional.append(extra)
            response.answer.append(srv)
        else:
            self._soa(response)
        return response

    def _lookup(self, labels: list[str]) -> tuple[str, list] | None:
        """Return ("service", instances) or ("node", [address]), or None for NXDOMAIN."""
        catalog = self.ctx.catalog
        if len(labels) == 2 and labels[1] == "node":
            node = catalog.nodes.get(labels[0])
            return ("node", [node.address]) if node else None
        if len(labels) < 2 or labels[-1] != "service" or len(labels) > 3:
            return None
        parts = labels[:-1]
        if len(parts) == 2 and parts[0].startswith("_") and parts[1].startswith("_"):
            name, tag = parts[0][1:], parts[1][1:]
            tag = "" if tag == "tcp" else tag
        elif len(parts) == 2:
            tag, name = parts
        else:
            tag, name = "", parts[0]
        healthy = [s for s in catalog.instances(name)
                   if (not tag or tag in [t.lower() for t in s.tags]) and self._healthy(s)]
        if not healthy:
            return None
        self.ctx.rng.shuffle(healthy)
        return "service", healthy

    def _healthy(self, service: Service) -> bool:
        status = self.ctx.catalog.aggregate_status(service)
        if self.only_passing:
            return status == PASSING
        return status not in (CRITICAL, MAINTENANCE)

    def _address(self, service: Service) -> str:
        return service.address or self.ctx.catalog.nodes[service.node].address

    def _target(self, service: Service) -> str:
        node = self.ctx.catalog.nodes[service.node]
        dc = self.ctx.catalog.datacenter
        if not service.address or service.address == node.address:
            return f"{node.name}.node.{dc}.consul."
        packed = ipaddress.ip_address(service.address).packed.hex()
        return f"{packed}.addr.{dc}.consul."

    @staticmethod
    def _a(name: dns.name.Name, addresses: list[str]) -> dns.rrset.RRset:
        rrset = dns.rrset.RRset(name, dns.rdataclass.IN, dns.rdatatype.A)
        rrset.update_ttl(TTL)
        for address in addresses:
            rrset.add(dns.rdata.from_text("IN", "A", address))
        return rrset

    def _soa(self, response: dns.message.Message) -> None:
        soa = dns.rrset.from_text(DOMAIN, 0, "IN", "SOA",
                                  f"ns.{DOMAIN} hostmaster.{DOMAIN} 1 3600 600 86400 0")
        response.authority.append(soa)

    def _nxdomain(self, response: dns.message.Message) -> dns.message.Message:
        response.set_rcode(dns.rcode.NXDOMAIN)
        self._soa(response)
        return response
