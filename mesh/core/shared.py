"""What every caller and server of one mesh shares, wherever it runs: the fallbacks callers answer
with, and who may call whom (the access rules the mesh's identities enforce).

The kernel holds them and its placement passes each change on (a mesh of processes writes it to
the KV store: :mod:`mesh.control.shared_state`); each process of the mesh follows them from there
with :meth:`SharedState.follow`, so a rule or a fallback set in the notebook holds in payments'
process when payments calls fraud.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping

import consul

from ..client.identity import Identities
from ..control.keys import ACCESS, FALLBACKS, MeshKeys
from ..control.shared_state import PrefixWatch, decode_access_rules, decode_fallbacks
from ..policies import Fallback

__all__ = ["SharedState"]


class SharedState:
    """The fallbacks and access rules of one mesh (its ``identities`` keep the rules)."""

    def __init__(self, identities: Identities):
        self.identities = identities
        self._fallbacks: dict[str, dict[str, Fallback]] = {}

    def fallbacks_of(self, service: str) -> dict[str, Fallback]:
        """The fallbacks of ``service`` by method: the dict its callers' stacks hold (changed in place)."""
        return self._fallbacks.setdefault(service, {})

    def set_fallback(self, service: str, method: str, fallback: Fallback) -> None:
        self.fallbacks_of(service)[method] = fallback

    def allow_callers(self, service: str, callers: Iterable[str] | None) -> None:
        self.identities.allow_callers(service, callers)

    def adopt_access_rules(self, rules: Mapping[str, Iterable[str]]) -> None:
        """Make ``rules`` (``service -> callers``) the whole of the access rules, lifting any other."""
        for service in set(self.identities.rules()) - set(rules):
            self.identities.allow_callers(service, None)
        for service, callers in rules.items():
            self.identities.allow_callers(service, callers)

    def adopt_fallbacks(self, fallbacks: Mapping[str, Mapping[str, Fallback]]) -> None:
        """Make ``fallbacks`` (``service -> method -> Fallback``) the whole of the fallbacks."""
        for service in set(self._fallbacks) | set(fallbacks):
            methods = self.fallbacks_of(service)
            methods.clear()
            methods.update(fallbacks.get(service, {}))

    def follow(self, client: consul.Consul, keys: MeshKeys,
               say: Callable[[str], object]) -> list[PrefixWatch]:
        """Follow the rules and fallbacks the kernel shares in the KV store, applying each change;
        return once both are read (so they hold from the first call on). What cannot be decoded
        is passed to ``say`` (a process's log) and left out: a rule that cannot be read lets
        nobody in."""

        def decoded(found: tuple[dict, dict[str, str]]) -> dict:
            value, problems = found
            for problem in problems.values():
                say(problem)
            return value

        watches = [
            PrefixWatch(client, keys.root(ACCESS),
                        lambda found: self.adopt_access_rules(decoded(decode_access_rules(found))),
                        "access-rules"),
            PrefixWatch(client, keys.root(FALLBACKS),
                        lambda found: self.adopt_fallbacks(decoded(decode_fallbacks(found))), "fallbacks"),
        ]
        for watch in watches:
            watch.wait_first()
        return watches
