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
    WrongAnswer("ex00-call-chain", "failing_path", """ and not any(
            later.service == c.service and later.method == c.method and later.status == "OK"
            and later.attempt > c.attempt for later in node.children)""", "",
                "follows a failed call that was retried and then succeeded", "retries ignored"),
    WrongAnswer("ex00-call-chain", "failing_path", "min(failed, key=lambda c: c.start)",
                "max(failed, key=lambda c: c.start)", "follows the last failure, not the first", "last failure"),
    WrongAnswer("ex00-call-chain", "failing_path", "        node = min(failed, key=lambda c: c.start)\n",
                "        return path\n", "blames the service the user called", "stops at the root"),
    WrongAnswer("ex01-protobuf-encoding", "varint", "out.append(group | 0x80 if n else group)",
                "out.append(group | 0x80)", "every byte marked 'more follows', the last one too",
                "continuation bit on the last byte"),
    WrongAnswer("ex01-protobuf-encoding", "varint", "group, n = n & 0x7F, n >> 7",
                "group, n = n & 0xFF, n >> 8", "eight bits per byte, as if there were no continuation bit",
                "8-bit groups"),
    WrongAnswer("ex01-protobuf-encoding", "zigzag", "return (n << 1) ^ (n >> 63)",
                "return abs(n) * 2", "-1 and 1 both map to 2", "sign lost"),
    WrongAnswer("ex02-dns-discovery", "instances", "    answer = resolver.resolve(",
                """    a_records = resolver.resolve(f"{service}.service.consul", "A")
    srv_records = resolver.resolve(f"{service}.service.consul", "SRV")
    return sorted(zip([r.address for r in a_records], [r.port for r in srv_records]))
    answer = resolver.resolve(""",
                "the chapter's client: addresses from an A query, ports from an SRV query, paired by position",
                "A then SRV"),
    WrongAnswer("ex02-dns-discovery", "instances", "return sorted((addresses[srv.target], srv.port) for srv in answer)",
                "return [(addresses[answer[0].target], answer[0].port)]",
                "keeps only the first record of the answer", "first answer only"),
    WrongAnswer("ex02-dns-discovery", "instances", "return sorted((addresses[srv.target], srv.port) for srv in answer)",
                "return sorted((str(srv.target).rstrip('.'), srv.port) for srv in answer)",
                "takes the SRV target, a node's name, for its address", "target for address"),
    WrongAnswer("ex03-weighted-round-robin", "smooth_wrr", "current = dict.fromkeys(weights, 0)",
                """order = [name for name, weight in weights.items() for _ in range(weight)]
    return [order[i % len(order)] for i in range(picks)]""",
                "plain weighted round robin: the big replica gets its share in one burst", "bursty WRR"),
    WrongAnswer("ex03-weighted-round-robin", "smooth_wrr", "current[best] -= total",
                "current[best] -= weights[best]",
                "subtracts the winner's own weight, not the total: the heaviest wins every time", "own weight"),
    WrongAnswer("ex03-weighted-round-robin", "smooth_wrr", "best = max(current, key=lambda name: current[name])",
                "best = max(reversed(current), key=lambda name: current[name])",
                "breaks ties for the last listed instance", "ties to the last"),
    WrongAnswer("ex03-consistent-hashing", "ring", "ring = sorted(",
                "return nodes[h(key) % len(nodes)]\n    ring = sorted(",
                "modulo hashing: when a node leaves, most keys move", "modulo"),
    WrongAnswer("ex03-consistent-hashing", "ring", "bisect.bisect_left(points, h(key)) % len(ring)",
                "min(bisect.bisect_left(points, h(key)), len(ring) - 1)",
                "no wrap-around: a key past the largest point goes to the largest point", "no wrap-around"),
    WrongAnswer("ex03-consistent-hashing", "ring", "bisect.bisect_left(", "bisect.bisect_right(",
                "a key exactly on a point goes to the next point", "strictly after"),
    WrongAnswer("ex03-consistent-hashing", "ring", "for v in range(vnodes)", "for v in range(1)",
                "one point per node, whatever vnodes says: an uneven ring", "no virtual nodes"),
    WrongAnswer("ex04-resilience", "breaker", 'self.state, self.failures = "closed", 0',
                'self.state = "closed"',
                "a success does not reset the count: failures that are not in a row open the breaker",
                "count not reset"),
    WrongAnswer("ex04-resilience", "breaker", "self.clock() - self.opened_at >= self.wait",
                "self.clock() - self.opened_at > self.wait",
                "waits one tick too long: exactly `wait` seconds after opening it is still open",
                "off by one at the boundary"),
    WrongAnswer("ex04-rate-limits", "bucket", "min(self.burst, self.tokens + (now - self.updated) * self.rate)",
                "self.tokens + (now - self.updated) * self.rate",
                "no cap: after a long idle the bucket lets a flood through", "no cap"),
    WrongAnswer("ex04-rate-limits", "bucket", "self.tokens = float(burst)", "self.tokens = 0.0",
                "the bucket starts empty: the first calls are refused", "starts empty"),
    WrongAnswer("ex04-rate-limits", "bucket", "if self.tokens >= 1:", "if self.tokens > 1:",
                "refuses a call when exactly one token is left", "boundary"),
    WrongAnswer("ex04-rate-limits", "backoff", "float(rng.uniform(0, min(cap, base * 2**attempt)))",
                "float(rng.uniform(0, base * 2**attempt))", "no cap: the ceiling doubles for ever", "no cap"),
    WrongAnswer("ex04-rate-limits", "backoff", "float(rng.uniform(0, min(cap, base * 2**attempt)))",
                "float(min(cap, base * 2**attempt))",
                "no jitter: every client retries at the same instant", "no jitter"),
    WrongAnswer("ex04-rate-limits", "backoff", "float(rng.uniform(0, min(cap, base * 2**attempt)))",
                "(lambda c: c / 2 + float(rng.uniform(0, c / 2)))(min(cap, base * 2**attempt))",
                "equal jitter, not full jitter", "equal jitter"),
    WrongAnswer("ex04-resilience", "policy", '"outlier_errors": 1, "outlier_max_percent": 50,', "",
                "retries alone: they hide the outage but keep sending to the dead replica", "retries only"),
    WrongAnswer("ex05-capacity", "p99", ".run(20).percentile(99)", ".run(20).percentile(50)",
                "the median, not the tail", "median"),
    WrongAnswer("ex05-capacity", "p99", ".run(20).percentile(99)", ".run(20).mean_latency()",
                "the mean latency, not the tail", "mean"),
    WrongAnswer("ex05-capacity", "replicas", "    replicas = 1\n    while tail(rate, replicas) > slo:\n        replicas += 1\n",
                "    replicas = int(rate * 0.01) + (rate * 0.01 % 1 > 0)\n",
                "sized by utilisation: each replica just below 100% busy", "utilisation"),
    WrongAnswer("ex05-capacity", "replicas", "    replicas = 1\n    while tail(rate, replicas) > slo:\n        replicas += 1\n",
                "    replicas = int(rate * 0.01) + 1\n",
                "sized by utilisation with one spare replica", "utilisation + 1"),
    WrongAnswer("ex06-canary-decision", "decide", 'if canary_calls < min_calls:\n        return "wait"\n',
                'if canary_calls == 0:\n        return "wait"\n',
                "no minimum-calls floor: one unlucky error in three calls rolls back", "no floor"),
    WrongAnswer("ex06-canary-decision", "decide", "canary_rate - stable_rate > max_increase",
                "canary_errors - stable_errors > max_increase", "compares error counts, not rates", "counts"),
    WrongAnswer("ex06-canary-decision", "decide", "canary_rate - stable_rate > max_increase",
                "canary_rate - stable_rate >= max_increase", "rolls back at exactly max_increase", "boundary"),
    WrongAnswer("ex07-gateway-auth", "door", '"verify_exp": False', '"verify_signature": False',
                "does not check the signature: a forged token passes", "signature unchecked"),
    WrongAnswer("ex07-gateway-auth", "door", 'str(claims.get("scope", "")).split()', 'str(claims.get("scope", ""))',
                "a substring test on the scope: 'orders' is taken as granted by 'orders:read'", "substring scope"),
    WrongAnswer("ex07-gateway-auth", "door", 'claims["exp"] <= now', 'claims["exp"] < now',
                "accepts a token at the very second it expires", "expiry boundary"),
    WrongAnswer("ex08-idempotency", "once", "        handler(data)\n        seen.add(message_id)",
                "        seen.add(message_id)\n        handler(data)",
                "remembers the message before handling it: a crash in the handler loses the message",
                "marked done before done"),
    WrongAnswer("ex08-idempotency", "bus", 'order = attrs["order"]\n    if charges[order] == 0:\n        charges[order] += 1',
                'seen = handler.__dict__.setdefault("seen", set())\n    if not charges:\n        seen.clear()\n'
                '    if data not in seen:\n        seen.add(data)\n        charges[attrs["order"]] += 1',
                "deduplicated on the payload: two real orders that look alike are charged once between them",
                "keyed on the payload"),
    WrongAnswer("ex09-stop-the-cascade", "protections",
                ', "breaker_failure_rate": 50, "breaker_minimum_calls": 10,\n              "breaker_window": 20, "breaker_wait": 1.0}',
                "}", "a timeout alone: every checkout still waits the timeout before the fallback", "timeout only"),
    WrongAnswer("ex09-stop-the-cascade", "protections", '"per_try_timeout": 0.1, ', "",
                "a breaker without a timeout: slow calls are not failures, so it never opens", "breaker only"),
    WrongAnswer("ex09-stop-the-cascade", "protections",
                '"fraud": {"per_try_timeout": 0.1, "breaker_failure_rate": 50, "breaker_minimum_calls": 10,\n'
                '              "breaker_window": 20, "breaker_wait": 1.0},', '"orders": {"bulkhead": 4},',
                "a bulkhead alone: browsing is spared, checkouts still wait for fraud", "bulkhead only"),
]
