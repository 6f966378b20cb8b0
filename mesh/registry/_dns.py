"""Consul's DNS interface on UDP: ``<name>.service.consul`` answers with A and SRV records.

Names answered, as Consul documents them (the datacenter label is optional)::

    <service>.service[.<dc>].consul          A / SRV of its healthy instances
    <tag>.<service>.service[.<dc>].consul    only instances carrying the tag
    _<service>._<tag>.service[.<dc>].consul  RFC 2782 form; the tag ``_tcp`` means "any tag"
    <node>.node[.<dc>].consul                A of a node

As in Consul, answers are shuffled on every query (crude load balancing), have TTL 0, carry at most
three records over UDP (``udp_answer_limit``), and an SRV answer names its target
``<node>.node.<dc>.consul.`` with the target's address record in the additional section. An IPv4
address is an A record, an IPv6 one AAAA (each only for its own query type), a hostname a CNAME
to it. A name with no healthy instance (or not UTF-8) is NXDOMAIN with the zone's SOA; a query the
registry fails to answer is SERVFAIL, never silence. dnspython parses and builds the wire format.
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
from .acl import READ

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
        except Exception:  # not a DNS message: there is no id to answer to
            return
        try:
            response = self.answer(query)
        except Exception:
            response = dns.message.make_response(query)
            response.set_rcode(dns.rcode.SERVFAIL)
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
        labels = [label.decode("utf-8", "replace").lower() for label in qname.relativize(DOMAIN).labels]
        dc = self.ctx.catalog.datacenter
        if len(labels) >= 2 and labels[-1] == dc:
            labels = labels[:-1]
        found = self._lookup(labels)
        if found is None:
            return self._nxdomain(response)
        kind, items = found
        qtype = question.rdtype
        if kind == "node":
            addresses = items
        elif qtype == dns.rdatatype.SRV:
            srv = dns.rrset.RRset(qname, dns.rdataclass.IN, dns.rdatatype.SRV)
            srv.update_ttl(TTL)
            for service in items[:UDP_ANSWER_LIMIT]:
                target = self._target(service)
                srv.add(dns.rdata.from_text("IN", "SRV", f"1 1 {service.port} {target}"))
                if target.endswith(".consul."):  # a hostname target needs no address from us
                    for extra in _address_records(dns.name.from_text(target), [self._address(service)],
                                                  dns.rdatatype.ANY):
                        if extra not in response.additional:
                            response.additional.append(extra)
            response.answer.append(srv)
            return response
        else:
            addresses = [self._address(s) for s in items[:UDP_ANSWER_LIMIT]]
        records = _address_records(qname, addresses, qtype)
        if records:
            response.answer.extend(records)
        else:
            self._soa(response)  # the name exists, but has no record of this type
        return response

    def _lookup(self, labels: list[str]) -> tuple[str, list] | None:
        """Return ("service", instances) or ("node", [address]), or None for NXDOMAIN. With ACLs on,
        DNS answers as the anonymous token may read (Consul's agent uses its default token)."""
        catalog = self.ctx.catalog
        readable = self.ctx.anonymous_authz().allows
        if len(labels) == 2 and labels[1] == "node":
            node = catalog.nodes.get(labels[0])
            return ("node", [node.address]) if node and readable("node", READ, node.name) else None
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
                   if (not tag or tag in [t.lower() for t in s.tags]) and self._healthy(s)
                   and readable("service", READ, s.name) and readable("node", READ, s.node)]
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
        try:
            packed = ipaddress.ip_address(service.address).packed.hex()
        except ValueError:  # a hostname: Consul names it as the target
            return service.address.rstrip(".") + "."
        return f"{packed}.addr.{dc}.consul."

    def _soa(self, response: dns.message.Message) -> None:
        soa = dns.rrset.from_text(DOMAIN, 0, "IN", "SOA",
                                  f"ns.{DOMAIN} hostmaster.{DOMAIN} 1 3600 600 86400 0")
        response.authority.append(soa)

    def _nxdomain(self, response: dns.message.Message) -> dns.message.Message:
        response.set_rcode(dns.rcode.NXDOMAIN)
        self._soa(response)
        return response


def _address_records(name: dns.name.Name, addresses: list[str], qtype: int) -> list[dns.rrset.RRset]:
    """Return ``name``'s records for ``addresses`` that answer a ``qtype`` query, as Consul makes
    them: A for IPv4 (A or ANY queries), AAAA for IPv6 (AAAA or ANY); when no address is an IP of
    the wanted kind, a CNAME to the first hostname (one CNAME per name, as DNS allows)."""
    wanted = {dns.rdatatype.A: (4,), dns.rdatatype.AAAA: (6,), dns.rdatatype.ANY: (4, 6)}.get(qtype, ())
    by_type: dict[int, dns.rrset.RRset] = {}
    hostnames = []
    for address in addresses:
        try:
            ip = ipaddress.ip_address(address)
        except ValueError:
            if _is_hostname(address):
                hostnames.append(address.rstrip(".") + ".")
            continue
        if ip.version in wanted:
            rdtype = dns.rdatatype.A if ip.version == 4 else dns.rdatatype.AAAA
            if rdtype not in by_type:
                by_type[rdtype] = dns.rrset.RRset(name, dns.rdataclass.IN, rdtype)
                by_type[rdtype].update_ttl(TTL)
            by_type[rdtype].add(dns.rdata.from_text("IN", dns.rdatatype.to_text(rdtype), str(ip)))
    if by_type or not wanted or not hostnames:
        return list(by_type.values())
    cname = dns.rrset.RRset(name, dns.rdataclass.IN, dns.rdatatype.CNAME)
    cname.update_ttl(TTL)
    cname.add(dns.rdata.from_text("IN", "CNAME", hostnames[0]))
    return [cname]


def _is_hostname(address: str) -> bool:
    try:
        dns.name.from_text(address)
    except Exception:
        return False
    return bool(address.strip(".")) and " " not in address
