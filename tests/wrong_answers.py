"""Plausible wrong answers to the graded exercises, each of which CI plants in the reference notebook
and grades: it must cost points on its own question and nowhere else
(``tests/test_exercises.py``). Each exercise's hidden tests say, in a comment, which of these
they catch. ``right`` is a piece of the reference answer; ``wrong`` what a learner might write
instead; ``mistake`` the kind of mistake, as a teacher would name it."""

from __future__ import annotations

from dataclasses import dataclass

__all__ = ["WRONG_ANSWERS", "WrongAnswer"]


@dataclass(frozen=True)
class WrongAnswer:
    exercise: str
    question: str
    right: str
    wrong: str
    mistake: str
    short: str  # names it in test ids and in the README's table

    @property
    def id(self) -> str:
        return f"{self.exercise}/{self.question}: {self.short}"


WRONG_ANSWERS = [
    WrongAnswer(
        "ex00-call-chain", "failing_path",
        right=" and not any(\n"
              "            later.service == c.service and later.method == c.method and "
              'later.status == "OK"\n'
              "            and later.attempt > c.attempt for later in node.children)",
        wrong="",
        mistake="follows a failed call that was retried and then succeeded",
        short="retries ignored",
    ),
    WrongAnswer(
        "ex00-call-chain", "failing_path",
        right="min(failed, key=lambda c: c.start)",
        wrong="max(failed, key=lambda c: c.start)",
        mistake="follows the last failure, not the first",
        short="last failure",
    ),
    WrongAnswer(
        "ex00-call-chain", "failing_path",
        right="        node = min(failed, key=lambda c: c.start)\n",
        wrong="        return path\n",
        mistake="blames the service the user called",
        short="stops at the root",
    ),
    WrongAnswer(
        "ex02-protobuf-encoding", "varint",
        right="out.append(group | 0x80 if n else group)",
        wrong="out.append(group | 0x80)",
        mistake="every byte marked 'more follows', the last one too",
        short="continuation bit on the last byte",
    ),
    WrongAnswer(
        "ex02-protobuf-encoding", "varint",
        right="group, n = n & 0x7F, n >> 7",
        wrong="group, n = n & 0xFF, n >> 8",
        mistake="eight bits per byte, as if there were no continuation bit",
        short="8-bit groups",
    ),
    WrongAnswer(
        "ex02-protobuf-encoding", "zigzag",
        right="return (n << 1) ^ (n >> 63)",
        wrong="return abs(n) * 2",
        mistake="-1 and 1 both map to 2",
        short="sign lost",
    ),
    WrongAnswer(
        "ex03-dns-discovery", "instances",
        right="    answer = resolver.resolve(",
        wrong='    a_records = resolver.resolve(f"{service}.service.consul", "A")\n'
              '    srv_records = resolver.resolve(f"{service}.service.consul", "SRV")\n'
              "    return sorted(zip([r.address for r in a_records], [r.port for r in srv_records]))\n"
              "    answer = resolver.resolve(",
        mistake="the chapter's client: addresses from an A query, ports from an SRV query, "
                "paired by position",
        short="A then SRV",
    ),
    WrongAnswer(
        "ex03-dns-discovery", "instances",
        right="return sorted((addresses[srv.target], srv.port) for srv in answer)",
        wrong="return [(addresses[answer[0].target], answer[0].port)]",
        mistake="keeps only the first record of the answer",
        short="first answer only",
    ),
    WrongAnswer(
        "ex03-dns-discovery", "instances",
        right="return sorted((addresses[srv.target], srv.port) for srv in answer)",
        wrong="return sorted((str(srv.target).rstrip('.'), srv.port) for srv in answer)",
        mistake="takes the SRV target, a node's name, for its address",
        short="target for address",
    ),
    WrongAnswer(
        "ex04-weighted-round-robin", "smooth_wrr",
        right="current = dict.fromkeys(weights, 0)",
        wrong="order = [name for name, weight in weights.items() for _ in range(weight)]\n"
              "    return [order[i % len(order)] for i in range(picks)]",
        mistake="plain weighted round robin: the big replica gets its share in one burst",
        short="bursty WRR",
    ),
    WrongAnswer(
        "ex04-weighted-round-robin", "smooth_wrr",
        right="current[best] -= total",
        wrong="current[best] -= weights[best]",
        mistake="subtracts the winner's own weight, not the total: the heaviest wins every time",
        short="own weight",
    ),
    WrongAnswer(
        "ex04-weighted-round-robin", "smooth_wrr",
        right="best = max(current, key=lambda name: current[name])",
        wrong="best = max(reversed(current), key=lambda name: current[name])",
        mistake="breaks ties for the last listed instance",
        short="ties to the last",
    ),
    WrongAnswer(
        "ex04-consistent-hashing", "ring",
        right="ring = sorted(",
        wrong="return nodes[h(key) % len(nodes)]\n"
              "    ring = sorted(",
        mistake="modulo hashing: when a node leaves, most keys move",
        short="modulo",
    ),
    WrongAnswer(
        "ex04-consistent-hashing", "ring",
        right="bisect.bisect_left(points, h(key)) % len(ring)",
        wrong="min(bisect.bisect_left(points, h(key)), len(ring) - 1)",
        mistake="no wrap-around: a key past the largest point goes to the largest point",
        short="no wrap-around",
    ),
    WrongAnswer(
        "ex04-consistent-hashing", "ring",
        right="bisect.bisect_left(",
        wrong="bisect.bisect_right(",
        mistake="a key exactly on a point goes to the next point",
        short="strictly after",
    ),
    WrongAnswer(
        "ex04-consistent-hashing", "ring",
        right="for v in range(vnodes)",
        wrong="for v in range(1)",
        mistake="one point per node, whatever vnodes says: an uneven ring",
        short="no virtual nodes",
    ),
    WrongAnswer(
        "ex05-resilience", "breaker",
        right='self.state, self.failures = "closed", 0',
        wrong='self.state = "closed"',
        mistake="a success does not reset the count: failures that are not in a row open the breaker",
        short="count not reset",
    ),
    WrongAnswer(
        "ex05-resilience", "breaker",
        right="self.clock() - self.opened_at >= self.wait",
        wrong="self.clock() - self.opened_at > self.wait",
        mistake="waits one tick too long: exactly `wait` seconds after opening it is still open",
        short="off by one at the boundary",
    ),
    WrongAnswer(
        "ex05-rate-limits", "bucket",
        right="min(self.burst, self.tokens + (now - self.updated) * self.rate)",
        wrong="self.tokens + (now - self.updated) * self.rate",
        mistake="no cap: after a long idle the bucket lets a flood through",
        short="no cap",
    ),
    WrongAnswer(
        "ex05-rate-limits", "bucket",
        right="self.tokens = float(burst)",
        wrong="self.tokens = 0.0",
        mistake="the bucket starts empty: the first calls are refused",
        short="starts empty",
    ),
    WrongAnswer(
        "ex05-rate-limits", "bucket",
        right="if self.tokens >= 1:",
        wrong="if self.tokens > 1:",
        mistake="refuses a call when exactly one token is left",
        short="boundary",
    ),
    WrongAnswer(
        "ex05-rate-limits", "backoff",
        right="float(rng.uniform(0, min(cap, base * 2**attempt)))",
        wrong="float(rng.uniform(0, base * 2**attempt))",
        mistake="no cap: the ceiling doubles for ever",
        short="no cap",
    ),
    WrongAnswer(
        "ex05-rate-limits", "backoff",
        right="float(rng.uniform(0, min(cap, base * 2**attempt)))",
        wrong="float(min(cap, base * 2**attempt))",
        mistake="no jitter: every client retries at the same instant",
        short="no jitter",
    ),
    WrongAnswer(
        "ex05-rate-limits", "backoff",
        right="float(rng.uniform(0, min(cap, base * 2**attempt)))",
        wrong="(lambda c: c / 2 + float(rng.uniform(0, c / 2)))(min(cap, base * 2**attempt))",
        mistake="equal jitter, not full jitter",
        short="equal jitter",
    ),
    WrongAnswer(
        "ex05-resilience", "policy",
        right='"outlier_errors": 1, "outlier_max_percent": 50,',
        wrong="",
        mistake="retries alone: they hide the outage but keep sending to the dead replica",
        short="retries only",
    ),
    WrongAnswer(
        "ex07-capacity", "p99",
        right=".run(20).percentile(99)",
        wrong=".run(20).percentile(50)",
        mistake="the median, not the tail",
        short="median",
    ),
    WrongAnswer(
        "ex07-capacity", "p99",
        right=".run(20).percentile(99)",
        wrong=".run(20).mean_latency()",
        mistake="the mean latency, not the tail",
        short="mean",
    ),
    WrongAnswer(
        "ex07-capacity", "replicas",
        right="    replicas = 1\n"
              "    while tail(rate, replicas) > slo:\n"
              "        replicas += 1\n",
        wrong="    replicas = int(rate * 0.01) + (rate * 0.01 % 1 > 0)\n",
        mistake="sized by utilisation: each replica just below 100% busy",
        short="utilisation",
    ),
    WrongAnswer(
        "ex07-capacity", "replicas",
        right="    replicas = 1\n"
              "    while tail(rate, replicas) > slo:\n"
              "        replicas += 1\n",
        wrong="    replicas = int(rate * 0.01) + 1\n",
        mistake="sized by utilisation with one spare replica",
        short="utilisation + 1",
    ),
    WrongAnswer(
        "ex12-canary-decision", "decide",
        right="if canary_calls < min_calls:\n"
              '        return "wait"\n',
        wrong="if canary_calls == 0:\n"
              '        return "wait"\n',
        mistake="no minimum-calls floor: one unlucky error in three calls rolls back",
        short="no floor",
    ),
    WrongAnswer(
        "ex12-canary-decision", "decide",
        right="canary_rate - stable_rate > max_increase",
        wrong="canary_errors - stable_errors > max_increase",
        mistake="compares error counts, not rates",
        short="counts",
    ),
    WrongAnswer(
        "ex12-canary-decision", "decide",
        right="canary_rate - stable_rate > max_increase",
        wrong="canary_rate - stable_rate >= max_increase",
        mistake="rolls back at exactly max_increase",
        short="boundary",
    ),
    WrongAnswer(
        "ex08-gateway-auth", "door",
        right='"verify_exp": False',
        wrong='"verify_signature": False',
        mistake="does not check the signature: a forged token passes",
        short="signature unchecked",
    ),
    WrongAnswer(
        "ex08-gateway-auth", "door",
        right='str(claims.get("scope", "")).split()',
        wrong='str(claims.get("scope", ""))',
        mistake="a substring test on the scope: 'orders' is taken as granted by 'orders:read'",
        short="substring scope",
    ),
    WrongAnswer(
        "ex08-gateway-auth", "door",
        right='claims["exp"] <= now',
        wrong='claims["exp"] < now',
        mistake="accepts a token at the very second it expires",
        short="expiry boundary",
    ),
    WrongAnswer(
        "ex09-idempotency", "once",
        right="        handler(data)\n"
              "        seen.add(message_id)",
        wrong="        seen.add(message_id)\n"
              "        handler(data)",
        mistake="remembers the message before handling it: a crash in the handler loses the message",
        short="marked done before done",
    ),
    WrongAnswer(
        "ex09-idempotency", "bus",
        right='order = attrs["order"]\n'
              "    if charges[order] == 0:\n"
              "        charges[order] += 1",
        wrong='seen = handler.__dict__.setdefault("seen", set())\n'
              "    if not charges:\n"
              "        seen.clear()\n"
              "    if data not in seen:\n"
              "        seen.add(data)\n"
              '        charges[attrs["order"]] += 1',
        mistake="deduplicated on the payload: two real orders that look alike are charged once "
                "between them",
        short="keyed on the payload",
    ),
    WrongAnswer(
        "ex06-stop-the-cascade", "protections",
        right=', "breaker_failure_rate": 50, "breaker_minimum_calls": 10,\n'
              '              "breaker_window": 20, "breaker_wait": 1.0}',
        wrong="}",
        mistake="a timeout alone: every checkout still waits the timeout before the fallback",
        short="timeout only",
    ),
    WrongAnswer(
        "ex06-stop-the-cascade", "protections",
        right='"per_try_timeout": 0.1, ',
        wrong="",
        mistake="a breaker without a timeout: slow calls are not failures, so it never opens",
        short="breaker only",
    ),
    WrongAnswer(
        "ex06-stop-the-cascade", "protections",
        right='"fraud": {"per_try_timeout": 0.1, "breaker_failure_rate": 50, '
              '"breaker_minimum_calls": 10,\n'
              '              "breaker_window": 20, "breaker_wait": 1.0},',
        wrong='"orders": {"bulkhead": 4},',
        mistake="a bulkhead alone: browsing is spared, checkouts still wait for fraud",
        short="bulkhead only",
    ),
    WrongAnswer(
        "ex10-find-the-culprit", "culprit",
        right="spent[node.service].append(node.duration - covered(node.children))",
        wrong="spent[node.service].append(node.duration)",
        mistake="compares whole durations: every caller on the path slowed as much as the culprit",
        short="total, not self time",
    ),
    WrongAnswer(
        "ex10-find-the-culprit", "culprit",
        right="key=lambda s: later[s] - earlier[s])",
        wrong="key=lambda s: later[s])",
        mistake="blames the slowest service after the change, not the one that got slower",
        short="slowest, not slower",
    ),
    WrongAnswer(
        "ex10-find-the-culprit", "culprit",
        right="spent[node.service].append(node.duration - covered(node.children))",
        wrong="spent[node.service].append(node.duration - sum(c.duration for c in node.children))",
        mistake="takes out the sum of parallel children, not the time they covered",
        short="sum of parallel children",
    ),
    WrongAnswer(
        "ex01-architecture", "fails",
        right="needed and fails(callee, calls, down)",
        wrong='needed and callee.split(".")[0] in down',
        mistake="looks only at direct callees: fraud down breaks checkout two hops away",
        short="direct callees only",
    ),
    WrongAnswer(
        "ex01-architecture", "fails",
        right="needed and fails(callee, calls, down)",
        wrong="fails(callee, calls, down)",
        mistake="takes every dependency as needed: the home page degrades, it does not fail",
        short="no degradation",
    ),
    WrongAnswer(
        "ex01-architecture", "fails",
        right='    if method.split(".")[0] in down:\n        return True\n',
        wrong="",
        mistake="forgets that a call fails when its own service is down",
        short="own service ignored",
    ),
    WrongAnswer(
        "ex11-least-privilege", "rules",
        right="allowed.setdefault(callee, set()).add(caller)",
        wrong="allowed.setdefault(caller, set()).add(callee)",
        mistake="the graph reversed: each service allows what it calls, not who calls it",
        short="reversed",
    ),
    WrongAnswer(
        "ex11-least-privilege", "rules",
        right="set(entry_points.get(service, ()))",
        wrong="set()",
        mistake="forgets the entry points: nobody outside can reach the frontend",
        short="no entry points",
    ),
    WrongAnswer(
        "ex11-least-privilege", "rules",
        right="    return allowed\n",
        wrong=("    for _ in calls:\n"
               "        for service in allowed:\n"
               "            allowed[service] |= {up for caller in allowed[service] if caller in allowed\n"
               "                                 for up in allowed[caller]}\n"
               "    return allowed\n"),
        mistake="allows every upstream service (the transitive closure): orders could call fraud",
        short="every upstream caller",
    ),
    WrongAnswer(
        "ex11-least-privilege", "rules",
        right="    return allowed\n",
        wrong='    return {service: set(calls) | {"client", "gateway"} for service in calls}\n',
        mistake="allows everyone: a rule that refuses nothing",
        short="everyone",
    ),
]
