"""Summarise a `py-spy record -f raw` profile: inclusive and self time per function, per thread.

    .venv/bin/python bench/pyspy_top.py PROFILE.txt [--top 25] [--match TEXT]
"""

from __future__ import annotations

import argparse
import re
from collections import Counter, defaultdict


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("profile")
    parser.add_argument("--top", type=int, default=25)
    parser.add_argument("--match", default="", help="only stacks containing this text")
    parser.add_argument("--tree", metavar="FRAME", help="print the call tree under the frame containing FRAME instead")
    parser.add_argument("--packages", action="store_true", help="main-thread samples by the package of the innermost frame")
    parser.add_argument("--depth", type=int, default=6)
    parser.add_argument("--floor", type=float, default=1.0, help="hide tree nodes under this percent")
    args = parser.parse_args()
    if args.packages:
        packages(args.profile)
        return
    if args.tree:
        tree(args.profile, args.tree, args.depth, args.floor)
        return
    incl: dict[str, Counter[str]] = defaultdict(Counter)
    self_: dict[str, Counter[str]] = defaultdict(Counter)
    totals: Counter[str] = Counter()
    for line in open(args.profile):
        stack, _, n = line.rstrip().rpartition(" ")
        if args.match and args.match not in stack:
            continue
        frames = stack.split(";")
        thread = frames[0] if frames[0].startswith(("thread", "process")) else "all"
        if thread != "all":
            frames = frames[1:]
        frames = [re.sub(r" \((?:/[^)]*/)?(?:site-packages/)?([^)]*)\)", r" (\1)", f) for f in frames]
        count = int(n)
        totals[thread] += count
        for f in set(frames):
            incl[thread][f] += count
        if frames:
            self_[thread][frames[-1]] += count
    for thread, total in totals.most_common():
        print(f"== {thread}: {total} samples")
        print("-- inclusive")
        for f, c in incl[thread].most_common(args.top):
            print(f"{100 * c / total:5.1f}%  {f}")
        print("-- self")
        for f, c in self_[thread].most_common(args.top):
            print(f"{100 * c / total:5.1f}%  {f}")



def tree(path: str, root: str, depth: int, floor: float) -> None:
    """Print the call tree under the first frame containing `root`, children by inclusive share."""
    node: dict = {}
    total = 0
    main_total = 0
    for line in open(path):
        stack, _, n = line.rstrip().rpartition(" ")
        frames = [re.sub(r" \((?:/[^)]*/)?(?:site-packages/)?([^)]*)\)", r" (\1)", f) for f in stack.split(";")]
        if "MainThread" not in frames[0] and frames[0].startswith("thread"):
            continue
        main_total += int(n)
        idx = next((i for i, f in enumerate(frames) if root in f), None)
        if idx is None:
            continue
        total += int(n)
        cur = node
        for f in frames[idx + 1: idx + 1 + depth]:
            f = re.sub(r":\d+\)$", ")", f)  # merge lines of one function
            entry = cur.setdefault(f, [0, {}])
            entry[0] += int(n)
            cur = entry[1]
    print(f"{root}: {total} samples = {100 * total / max(1, main_total):.1f}% of main-thread samples")

    def show(cur: dict, indent: int) -> None:
        for f, (c, kids) in sorted(cur.items(), key=lambda kv: -kv[1][0]):
            if c / max(1, total) * 100 < floor:
                continue
            print(f"{'  ' * indent}{100 * c / total:5.1f}%  {f}")
            show(kids, indent + 1)

    show(node, 0)


def package_of(frame: str) -> str:
    m = re.search(r"\(([^)]*)\)$", frame)
    where = (m.group(1) if m else "").rsplit(":", 1)[0]
    if "site-packages/" in where:
        where = where.split("site-packages/")[1]
    if "<sqlalchemy" in where:
        return "sqlalchemy"
    if "/src/pairflow/" in where:
        where = "pairflow/" + where.split("/src/pairflow/")[1]
    parts = where.split("/")
    if parts[0] == "pairflow" and len(parts) > 2:
        return "pairflow." + parts[1]
    if len(parts) > 1 and not where.startswith("/"):
        return parts[0]
    return f"stdlib {parts[-1].removesuffix('.py')}" if where else "?"


def packages(path: str) -> None:
    """Main-thread samples by the innermost frame's package; `Runner.run` itself is the event loop in C."""
    leaf: Counter[str] = Counter()
    anywhere: Counter[str] = Counter()
    total = 0
    for line in open(path):
        stack, _, n = line.rstrip().rpartition(" ")
        frames = stack.split(";")
        if frames[0].startswith("thread") and "MainThread" not in frames[0]:
            continue
        frames = frames[1:] if frames[0].startswith(("thread", "process")) else frames
        count = int(n)
        total += count
        last = frames[-1] if frames else ""
        leaf["event loop (uvloop, C)" if last.startswith("Runner.run ") else package_of(last)] += count
        for pkg in {package_of(f) for f in frames}:
            anywhere[pkg] += count
    print(f"{total} main-thread samples\n-- by innermost frame (self)")
    for k, v in leaf.most_common(20):
        print(f"{100 * v / total:5.1f}%  {k}")
    print("-- stacks containing the package (inclusive)")
    for k, v in anywhere.most_common(20):
        print(f"{100 * v / total:5.1f}%  {k}")


if __name__ == "__main__":
    main()
