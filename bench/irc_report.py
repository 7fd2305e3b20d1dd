"""bench/irc.py's figures, kept round by round, and the report that prints them.

Why round by round: the machine is shared, and load that comes and goes during a run moves
any figure. Measured one gateway after the other, a change of load between the two halves
moved the ratio from 1.25× to 2.26×. Measured in alternating rounds (Portway, biboumi,
Portway, biboumi, …), both gateways of a round see nearly the same load, so the ratio of
each round is meaningful even when the figures are not, and the median of those ratios is
the figure to trust.
"""

from __future__ import annotations

import statistics
from dataclasses import dataclass, field

PORTWAY, BIBOUMI = "Portway", "biboumi"


def percentile(values: list[float], fraction: float) -> float:
    if not values:
        return float("nan")
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(len(ordered) * fraction))]


def median(values: list[float]) -> float:
    kept = [v for v in values if v == v]
    return statistics.median(kept) if kept else float("nan")


def ratio(ours: float, theirs: float) -> float:
    return ours / theirs if theirs and theirs == theirs and ours == ours else float("nan")


@dataclass
class Rounds:
    """One measure, round by round: each gateway's figure in each round."""

    name: str
    #: the target on the median of the per-round ratios (Portway / biboumi), and its sense
    target: float | None = None
    higher_is_better: bool = True
    figures: dict[str, list[float]] = field(default_factory=dict)
    #: the XMPP ceiling measured in each round, when the measure is set against it
    ceilings: list[float] = field(default_factory=list)
    #: the XMPP ceiling the way the measure goes, where it differs (component → client)
    way_ceilings: list[float] = field(default_factory=list)

    def add(self, gateway: str, value: float) -> None:
        self.figures.setdefault(gateway, []).append(value)

    def ratios(self) -> list[float]:
        ours, theirs = self.figures.get(PORTWAY, []), self.figures.get(BIBOUMI, [])
        return [ratio(a, b) for a, b in zip(ours, theirs, strict=False)]

    def verdict(self) -> str:
        value = median(self.ratios())
        if self.target is None or value != value:
            return ""
        sense = "≥" if self.higher_is_better else "≤"
        ok = value >= self.target if self.higher_is_better else value <= self.target
        return f"target {sense}{self.target:.2f}: {'met' if ok else 'NOT MET'}"

    def lines(self, unit: str) -> list[str]:
        ours, theirs = self.figures.get(PORTWAY, []), self.figures.get(BIBOUMI, [])
        out = [f"  {self.name}"]
        for index in range(max(len(ours), len(theirs))):
            a = ours[index] if index < len(ours) else float("nan")
            b = theirs[index] if index < len(theirs) else float("nan")
            text = f"    round {index + 1}: {PORTWAY} {a:8.1f}  {BIBOUMI} {b:8.1f} {unit}"
            text += f"  ratio {ratio(a, b):5.2f}"
            if index < len(self.ceilings):
                ceiling = self.ceilings[index]
                text += f"  (XMPP ceiling {ceiling:6.0f}: {PORTWAY} at {ratio(a, ceiling):4.0%})"
            if index < len(self.way_ceilings):
                way = self.way_ceilings[index]
                text += f"  (component → client {way:6.0f}: at {ratio(a, way):4.0%})"
            out.append(text)
        text = (
            f"    median: {PORTWAY} {median(ours):8.1f}  {BIBOUMI} {median(theirs):8.1f}"
            f"  median of ratios {median(self.ratios()):5.2f}  {self.verdict()}"
        )
        out.append(text)
        if self.ceilings:
            share = median([ratio(a, c) for a, c in zip(ours, self.ceilings, strict=False)])
            ok = "met" if share >= 0.5 else "NOT MET"
            out.append(
                f"    {PORTWAY} / XMPP ceiling, median of rounds: {share:.0%}  target ≥50%: {ok}"
            )
        if self.way_ceilings:
            way = zip(ours, self.way_ceilings, strict=False)
            share = median([ratio(a, c) for a, c in way])
            out.append(f"    {PORTWAY} / XMPP ceiling component → client, median: {share:.0%}")
        return out


@dataclass
class Latency:
    """Latencies at one rate in one direction: each gateway's samples in each round."""

    name: str
    samples: dict[str, list[list[float]]] = field(default_factory=dict)

    def add(self, gateway: str, values: list[float]) -> None:
        self.samples.setdefault(gateway, []).append(values)

    def lines(self) -> list[str]:
        rounds = Rounds(f"{self.name}, p99 (ms)", target=1.0, higher_is_better=False)
        for gateway, each in self.samples.items():
            for values in each:
                rounds.add(gateway, percentile(values, 0.99))
        out = rounds.lines("ms")
        pooled = {g: [v for values in each for v in values] for g, each in self.samples.items()}
        ours, theirs = pooled.get(PORTWAY, []), pooled.get(BIBOUMI, [])
        out.append(
            f"    all rounds together: p50 {percentile(ours, 0.5):.2f} / "
            f"{percentile(theirs, 0.5):.2f} ms, p99 {percentile(ours, 0.99):.2f} / "
            f"{percentile(theirs, 0.99):.2f} ms ({PORTWAY} / {BIBOUMI})"
        )
        return out


@dataclass
class Step:
    """A gateway with ``users`` users connected: its RSS, and the CPU it spent on them."""

    users: int
    rss_kib: int
    #: CPU seconds the gateway spent while these users (since the step before) joined
    join_cpu: float = 0.0
    #: CPU seconds the gateway spent in a quiet window with them connected, per second
    idle_cpu: float = 0.0


@dataclass
class Memory:
    steps: dict[str, list[Step]] = field(default_factory=dict)
    #: why a gateway stopped below its last step (a server that could not hold more, …)
    stopped: dict[str, str] = field(default_factory=dict)

    def per_user(self, gateway: str, low: int, high: int) -> tuple[float, float]:
        """RSS growth (KiB) and join CPU (ms) per user from ``low`` to ``high`` users."""
        by = {s.users: s for s in self.steps.get(gateway, [])}
        if low not in by or high not in by:
            return float("nan"), float("nan")
        joined = [s for s in self.steps[gateway] if low < s.users <= high]
        cpu = sum(s.join_cpu for s in joined)
        return (
            (by[high].rss_kib - by[low].rss_kib) / (high - low),
            cpu * 1000 / (high - low),
        )

    def lines(self, compare_at: int) -> list[str]:
        out = ["  memory and CPU with users connected (each its own account and channel)"]
        for gateway, steps in self.steps.items():
            for step in steps:
                out.append(
                    f"    {gateway:8} {step.users:6} users: RSS {step.rss_kib / 1024:7.1f} MiB,"
                    f" join CPU {step.join_cpu:6.2f} s, idle CPU"
                    f" {step.idle_cpu * 1000:6.1f} ms/s"
                )
            if gateway in self.stopped:
                out.append(f"    {gateway:8} stopped: {self.stopped[gateway]}")
        ours, _ = self.per_user(PORTWAY, 1, compare_at)
        theirs, _ = self.per_user(BIBOUMI, 1, compare_at)
        ok = "met" if ours <= theirs else "NOT MET"
        out.append(
            f"    RSS per user 1→{compare_at}: {PORTWAY} {ours:.2f} KiB, {BIBOUMI}"
            f" {theirs:.2f} KiB, ratio {ratio(ours, theirs):.2f}  target ≤1.00: {ok}"
        )
        top = max((s.users for s in self.steps.get(PORTWAY, [])), default=0)
        if top > compare_at:
            low_rss, low_cpu = self.per_user(PORTWAY, 1, compare_at)
            high_rss, high_cpu = self.per_user(PORTWAY, compare_at, top)
            by = {s.users: s for s in self.steps[PORTWAY]}
            idle_low = by[compare_at].idle_cpu / compare_at * 1e6
            idle_high = by[top].idle_cpu / top * 1e6
            out.append(
                f"    {PORTWAY} per user, 1→{compare_at} vs {compare_at}→{top}: RSS"
                f" {low_rss:.2f} vs {high_rss:.2f} KiB; join CPU {low_cpu:.2f} vs"
                f" {high_cpu:.2f} ms; idle CPU {idle_low:.2f} vs {idle_high:.2f} µs/s"
            )
        return out
