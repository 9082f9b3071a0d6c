"""Filter DSL cost per leaf as filters grow: build, compile to wire JSON, read back; tree depth.

Run: ``python benchmarks/bench_filters.py``. Each size is measured a few times and the best run
is kept; the last column is the per-leaf build+compile cost relative to the 10-leaf filter, so a
value near 1.0 means linear scaling.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from functools import partial
from typing import Any

from helicone_users import F, Filter, U, all_of, any_of
from helicone_users.filters import from_json

SIZES = (10, 100, 1_000, 10_000)
REPEATS = 3


def leaves(n: int) -> list[Filter]:
    """A realistic mix of leaf kinds: numbers, text, properties, timestamps."""
    out: list[Filter] = []
    for i in range(n):
        kind = i % 4
        if kind == 0:
            out.append(F.latency > i)
        elif kind == 1:
            out.append(F.model.contains(f"m{i}"))
        elif kind == 2:
            out.append(F.properties["env"] != f"e{i}")
        else:
            out.append(F.request_created_at >= f"2024-05-01T00:00:{i % 60:02d}Z")
    return out


def build(n: int) -> Filter:
    """Groups of four leaves ORed, all groups ANDed, with one user aggregate."""
    parts = leaves(n)
    groups = [any_of(*parts[i : i + 4]) for i in range(0, n, 4)]
    return all_of(*groups, U.cost < 1.5)


def depth(wire: Any) -> int:
    deepest, stack = 0, [(wire, 1)]
    while stack:
        node, level = stack.pop()
        deepest = max(deepest, level)
        if isinstance(node, dict) and "left" in node:
            stack += [(node["left"], level + 1), (node["right"], level + 1)]
    return deepest


def best(run: Callable[[], Any]) -> tuple[float, Any]:
    times, result = [], None
    for _ in range(REPEATS):
        start = time.perf_counter()
        result = run()
        times.append(time.perf_counter() - start)
    return min(times), result


def main() -> None:
    print(
        f"{'leaves':>7} {'build µs/leaf':>14} {'compile µs/leaf':>16} {'read µs/leaf':>13}"
        f" {'depth':>6} {'vs 10 leaves':>13}"
    )
    baseline = None
    last: tuple[int, float, int] = (0, 0.0, 0)
    for n in SIZES:
        build_s, node = best(partial(build, n))
        compile_s, wire = best(node.to_json)
        read_s, again = best(partial(from_json, wire))
        assert again == node
        per_leaf = (build_s + compile_s) / n
        baseline = baseline or per_leaf
        print(
            f"{n:>7} {build_s / n * 1e6:>14.2f} {compile_s / n * 1e6:>16.2f}"
            f" {read_s / n * 1e6:>13.2f} {depth(wire):>6} {per_leaf / baseline:>12.2f}x"
        )
        last = (n, per_leaf, depth(wire))
    n, per_leaf, tree_depth = last
    print()
    print(
        f"{n:,} leaves: build+compile {per_leaf * 1e6:.2f} µs/leaf, wire tree depth {tree_depth}"
        f" (target <= 15): {'met' if tree_depth <= 15 else 'missed'}"
    )


if __name__ == "__main__":
    main()
