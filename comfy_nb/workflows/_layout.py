"""Where to draw a graph's nodes: a layered (Sugiyama-style) layout, or the boxes of the UI workflow.

Pure Python, no I/O, so it is unit-tested and timed on its own (``benchmarks/bench_layout.py``).
The layered layout flows left to right like ComfyUI's canvas:

1. cycles are broken by reversing DFS back edges (an API graph should have none, a broken one may);
2. layering: longest path from the sources, then each node moves to the median of its neighbours'
   wishes inside the range its links allow, which pulls loaders next to their consumers (a cheap stand-in
   for network simplex: it lowers the total edge length the same way, one node at a time);
3. a dummy node per layer crossed by a long edge, so long edges bend around boxes instead of through them;
4. crossing reduction: barycenter sweeps down and up, keeping the order with the fewest crossings;
5. coordinates: columns from the widest box per layer; in each column every box is pulled to the mean
   height of its neighbours, with the boxes' order and spacing kept exactly (isotonic regression).
"""

from __future__ import annotations

import itertools
from collections.abc import Collection, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

__all__ = ["Box", "GraphLayout", "layered_layout", "place_missing", "ui_boxes"]

_DUMMY_HEIGHT = 6.0
_SWEEPS = 8
_Y_ITERATIONS = 6


@dataclass(frozen=True, slots=True)
class Box:
    """A node's rectangle: top-left corner, width and height, in canvas pixels."""

    x: float
    y: float
    w: float
    h: float


@dataclass(frozen=True)
class GraphLayout:
    """Boxes per node id and, per ``(source, target)`` link, the points a long link bends through."""

    boxes: dict[str, Box]
    bends: dict[tuple[str, str], tuple[tuple[float, float], ...]]


def layered_layout(
    nodes: Sequence[str],
    edges: Iterable[tuple[str, str]],
    sizes: Mapping[str, tuple[float, float]] | None = None,
    *,
    default_size: tuple[float, float] = (200.0, 60.0),
    layer_gap: float = 70.0,
    node_gap: float = 24.0,
    anchor: float | None = None,
) -> GraphLayout:
    """Lay out a directed graph left to right; deterministic for the same nodes, edges and order.

    ``anchor`` is how far below a box's top its links attach (default: its middle): boxes are
    aligned on that line so short links run straight.
    """
    n = len(nodes)
    index = {node: i for i, node in enumerate(nodes)}
    size_of = sizes or {}
    widths = [float(size_of.get(v, default_size)[0]) for v in nodes]
    heights = [float(size_of.get(v, default_size)[1]) for v in nodes]
    pairs: list[tuple[int, int]] = []
    seen: set[tuple[int, int]] = set()
    for src, dst in edges:
        a, b = index.get(src), index.get(dst)
        if a is None or b is None or a == b or (a, b) in seen:
            continue
        seen.add((a, b))
        pairs.append((a, b))
    reversed_pairs = _back_edges(n, pairs)
    dag = [(b, a) if (a, b) in reversed_pairs else (a, b) for a, b in pairs]
    dag = list(dict.fromkeys(dag))
    layer = _layers(n, dag)

    # dummy chains: chain[(a, b)] = the vertices a long edge passes, source and target excluded
    succ: list[list[int]] = [[] for _ in range(n)]
    pred: list[list[int]] = [[] for _ in range(n)]
    chains: dict[tuple[int, int], list[int]] = {}
    for a, b in dag:
        prev = a
        chain: list[int] = []
        for lay in range(layer[a] + 1, layer[b]):
            d = len(layer)
            layer.append(lay)
            widths.append(0.0)
            heights.append(_DUMMY_HEIGHT)
            succ.append([])
            pred.append([])
            succ[prev].append(d)
            pred[d].append(prev)
            chain.append(d)
            prev = d
        succ[prev].append(b)
        pred[b].append(prev)
        chains[(a, b)] = chain
    total = len(layer)
    layers: list[list[int]] = [[] for _ in range(max(layer, default=-1) + 1)]
    for v in _initial_order(n, total, succ, pred, layer):
        layers[layer[v]].append(v)
    layers = _reduce_crossings(layers, succ, pred)

    xs = _columns(layers, widths, layer_gap)
    anchors = [min(hgt / 2, anchor) if anchor is not None else hgt / 2 for hgt in heights]
    ys = _rows(layers, succ, pred, heights, anchors, n, node_gap)
    boxes = {nodes[v]: Box(xs[layer[v]], ys[v], widths[v], heights[v]) for v in range(n)}
    col_w = [max((widths[v] for v in lay), default=0.0) for lay in layers]
    bends: dict[tuple[str, str], tuple[tuple[float, float], ...]] = {}
    for (a, b), chain in chains.items():
        if not chain:
            continue
        points: list[tuple[float, float]] = []
        for d in chain:
            cy = ys[d] + anchors[d]
            points.append((xs[layer[d]] - layer_gap / 4, cy))
            points.append((xs[layer[d]] + col_w[layer[d]] + layer_gap / 4, cy))
        if (b, a) in reversed_pairs:
            bends[(nodes[b], nodes[a])] = tuple(reversed(points))
        else:
            bends[(nodes[a], nodes[b])] = tuple(points)
    return GraphLayout(boxes, bends)


def _back_edges(n: int, pairs: list[tuple[int, int]]) -> set[tuple[int, int]]:
    """Edges that close a cycle in an iterative DFS (in node order): reversing them leaves a DAG."""
    out: list[list[int]] = [[] for _ in range(n)]
    for a, b in pairs:
        out[a].append(b)
    state = [0] * n  # 0 new, 1 on the stack, 2 done
    back: set[tuple[int, int]] = set()
    for root in range(n):
        if state[root]:
            continue
        state[root] = 1
        stack = [(root, iter(out[root]))]
        while stack:
            v, it = stack[-1]
            for w in it:
                if state[w] == 1:
                    back.add((v, w))
                elif state[w] == 0:
                    state[w] = 1
                    stack.append((w, iter(out[w])))
                    break
            else:
                state[v] = 2
                stack.pop()
    return back


def _layers(n: int, dag: list[tuple[int, int]]) -> list[int]:
    """Longest-path layers, then each node moved to the median of its neighbours' wishes."""
    succ: list[list[int]] = [[] for _ in range(n)]
    pred: list[list[int]] = [[] for _ in range(n)]
    for a, b in dag:
        succ[a].append(b)
        pred[b].append(a)
    indeg = [len(p) for p in pred]
    order = [v for v in range(n) if indeg[v] == 0]
    for v in order:  # Kahn's algorithm; ``order`` grows while it is walked
        for w in succ[v]:
            indeg[w] -= 1
            if indeg[w] == 0:
                order.append(w)
    layer = [0] * n
    for v in order:
        for w in succ[v]:
            layer[w] = max(layer[w], layer[v] + 1)
    for sweep in range(8):
        moved = False
        for v in order if sweep % 2 else reversed(order):
            lo = max((layer[p] + 1 for p in pred[v]), default=None)
            hi = min((layer[s] - 1 for s in succ[v]), default=None)
            wishes = sorted([layer[p] + 1 for p in pred[v]] + [layer[s] - 1 for s in succ[v]])
            if not wishes:
                continue
            k = len(wishes)
            best_lo, best_hi = wishes[(k - 1) // 2], wishes[k // 2]
            target = min(max(layer[v], best_lo), best_hi)
            if lo is not None:
                target = max(target, lo)
            if hi is not None:
                target = min(target, hi)
            if target != layer[v]:
                layer[v] = target
                moved = True
        if not moved:
            break
    low = min(layer, default=0)
    return [lay - low for lay in layer]


def _initial_order(n: int, total: int, succ: list[list[int]], pred: list[list[int]], layer: list[int]) -> list[int]:
    """A depth-first walk from the sources in node order: related nodes start out near each other."""
    seen = [False] * total
    out: list[int] = []
    roots = [v for v in range(n) if not pred[v]] + list(range(n))
    for root in roots:
        if seen[root]:
            continue
        stack = [root]
        while stack:
            v = stack.pop()
            if seen[v]:
                continue
            seen[v] = True
            out.append(v)
            stack.extend(reversed(succ[v]))
    out.extend(v for v in range(total) if not seen[v])
    out.sort(key=lambda v: layer[v])  # stable: keeps the walk's order inside each layer
    return out


def _crossings(upper: list[int], lower_pos: dict[int, int], succ: list[list[int]]) -> int:
    """Crossings between two adjacent layers, counted as inversions with a Fenwick tree."""
    targets = [lower_pos[w] for v in upper for w in sorted(succ[v], key=lower_pos.__getitem__)]
    size = len(lower_pos) + 1
    tree = [0] * (size + 1)
    count = 0
    for seen, t in enumerate(targets):
        i = t + 1
        le = 0
        j = i
        while j > 0:
            le += tree[j]
            j -= j & -j
        count += seen - le
        while i <= size:
            tree[i] += 1
            i += i & -i
    return count


def _total_crossings(layers: list[list[int]], succ: list[list[int]]) -> int:
    total = 0
    for upper, lower in itertools.pairwise(layers):
        total += _crossings(upper, {v: i for i, v in enumerate(lower)}, succ)
    return total


def _reduce_crossings(layers: list[list[int]], succ: list[list[int]], pred: list[list[int]]) -> list[list[int]]:
    best = [list(lay) for lay in layers]
    best_count = _total_crossings(best, succ)
    current = [list(lay) for lay in layers]
    for sweep in range(_SWEEPS):
        if best_count == 0:
            break
        down = sweep % 2 == 0
        rng = range(1, len(current)) if down else range(len(current) - 2, -1, -1)
        for i in rng:
            fixed = current[i - 1] if down else current[i + 1]
            pos = {v: k for k, v in enumerate(fixed)}
            links = pred if down else succ
            keyed = []
            for k, v in enumerate(current[i]):
                near = [pos[w] for w in links[v] if w in pos]
                keyed.append((sum(near) / len(near) if near else float(k), k, v))
            keyed.sort()
            current[i] = [v for _, _, v in keyed]
        count = _total_crossings(current, succ)
        if count < best_count:
            best, best_count = [list(lay) for lay in current], count
    return best


def _columns(layers: list[list[int]], widths: list[float], gap: float) -> list[float]:
    xs: list[float] = []
    x = 0.0
    for lay in layers:
        xs.append(x)
        x += max((widths[v] for v in lay), default=0.0) + gap
    return xs


def _rows(
    layers: list[list[int]],
    succ: list[list[int]],
    pred: list[list[int]],
    heights: list[float],
    anchors: list[float],
    n: int,
    gap: float,
) -> list[float]:
    """Vertical positions: each column pulled towards its neighbours, order and spacing kept."""
    ys = [0.0] * len(heights)
    spacing = [[(gap if v < n else gap / 3) for v in lay] for lay in layers]
    for lay, sp in zip(layers, spacing, strict=True):
        y = 0.0
        for v, s in zip(lay, sp, strict=True):
            ys[v] = y
            y += heights[v] + s
    sweeps: list[tuple[range, bool, bool]] = []
    for _ in range(_Y_ITERATIONS):
        sweeps.append((range(1, len(layers)), True, False))
        sweeps.append((range(len(layers) - 2, -1, -1), False, True))
    sweeps.append((range(len(layers)), True, True))
    for rng, use_pred, use_succ in sweeps:
        for i in rng:
            lay = layers[i]
            wanted: list[float] = []
            weights: list[float] = []
            for v in lay:
                near = (pred[v] if use_pred else []) + (succ[v] if use_succ else [])
                if near:
                    line = sum(ys[w] + anchors[w] for w in near) / len(near)
                    wanted.append(line - anchors[v])
                    weights.append(1.0 if v < n else 2.0)
                else:
                    wanted.append(ys[v])
                    weights.append(0.25)
            for v, y in zip(lay, _ordered_fit(wanted, weights, [heights[v] for v in lay], spacing[i]), strict=True):
                ys[v] = y
    top = min(ys, default=0.0)
    return [y - top for y in ys]


def _ordered_fit(wanted: list[float], weights: list[float], heights: list[float], gaps: list[float]) -> list[float]:
    """Tops closest (weighted least squares) to ``wanted`` with each box below the previous one plus its gap.

    With ``offset[i]`` the stacked height above box i, ``y[i] - offset[i]`` must not decrease: an
    isotonic regression, solved exactly by pooling adjacent violators.
    """
    offsets: list[float] = []
    acc = 0.0
    for h, g in zip(heights, gaps, strict=True):
        offsets.append(acc)
        acc += h + g
    blocks: list[list[float]] = []  # [weighted sum, weight, count]
    for t, w, o in zip(wanted, weights, offsets, strict=True):
        blocks.append([(t - o) * w, w, 1.0])
        while len(blocks) > 1 and blocks[-2][0] / blocks[-2][1] > blocks[-1][0] / blocks[-1][1]:
            s, wt, c = blocks.pop()
            blocks[-1][0] += s
            blocks[-1][1] += wt
            blocks[-1][2] += c
    out: list[float] = []
    for s, wt, c in blocks:
        out.extend([s / wt] * int(c))
    return [z + o for z, o in zip(out, offsets, strict=True)]


# -- positions from a UI workflow -----------------------------------------------------------------

_TITLE_HEIGHT = 30.0
"""LiteGraph's ``pos`` is the top of a node's body; its title bar sits above it."""


def ui_boxes(ui: Mapping[str, Any], node_ids: Collection[str]) -> dict[str, Box]:
    """Boxes of the API nodes ``node_ids`` from a UI workflow's ``pos`` and ``size``.

    Root nodes keep their canvas boxes. Nodes flattened out of a subgraph (ids ``"outer:inner"``)
    keep their arrangement inside the subgraph, drawn as a block below everything placed so far,
    starting under the instance node. Ids the UI does not place are left out (see ``place_missing``).
    """
    definitions = ui.get("definitions") if isinstance(ui.get("definitions"), Mapping) else {}
    subgraphs = {
        s["id"]: s for s in (definitions or {}).get("subgraphs") or [] if isinstance(s, Mapping) and "id" in s
    }
    boxes: dict[str, Box] = {}
    pending: list[tuple[str, Box, Mapping[str, Any], int]] = []
    for node in ui.get("nodes") or []:
        _ui_node(node, "", None, boxes, pending, subgraphs)
    while pending:
        prefix, instance, definition, depth = pending.pop(0)
        if depth > 32:
            continue
        inner: dict[str, Box] = {}
        for node in definition.get("nodes") or []:
            _ui_node(node, prefix, None, inner, [], {})
        if not inner:
            continue
        left = min(b.x for b in inner.values())
        top = min(b.y for b in inner.values())
        bottom = max((b.y + b.h for b in boxes.values()), default=instance.y + instance.h)
        dx, dy = instance.x - left, bottom + 80.0 - top
        for node in definition.get("nodes") or []:
            _ui_node(node, prefix, (dx, dy), boxes, pending, subgraphs, depth + 1)
    return {k: v for k, v in boxes.items() if k in node_ids}


def _ui_node(
    node: Any,
    prefix: str,
    shift: tuple[float, float] | None,
    boxes: dict[str, Box],
    pending: list[tuple[str, Box, Mapping[str, Any], int]],
    subgraphs: Mapping[Any, Mapping[str, Any]],
    depth: int = 0,
) -> None:
    if not isinstance(node, Mapping) or "id" not in node:
        return
    pos, size = _pair(node.get("pos")), _pair(node.get("size"))
    if pos is None:
        return
    w, h = size if size is not None else (200.0, 60.0)
    dx, dy = shift or (0.0, 0.0)
    box = Box(pos[0] + dx, pos[1] - _TITLE_HEIGHT + dy, max(w, 40.0), max(h, 0.0) + _TITLE_HEIGHT)
    node_id = f"{prefix}{node['id']}"
    boxes[node_id] = box
    definition = subgraphs.get(node.get("type"))
    if definition is not None:
        pending.append((f"{node_id}:", box, definition, depth))


def _pair(value: Any) -> tuple[float, float] | None:
    """``[x, y]`` or ``{"0": x, "1": y}`` (both occur in saves) as floats."""
    if isinstance(value, Mapping):
        value = [value.get("0"), value.get("1")]
    if isinstance(value, (list, tuple)) and len(value) >= 2:
        try:
            return float(value[0]), float(value[1])
        except (TypeError, ValueError):
            return None
    return None


def place_missing(
    boxes: Mapping[str, Box],
    nodes: Sequence[str],
    edges: Iterable[tuple[str, str]],
    size: tuple[float, float] = (200.0, 60.0),
    gap: float = 30.0,
) -> dict[str, Box]:
    """Complete a partial placement (a UI workflow edited since, e.g. a LoRA inserted).

    A missing node goes left of its first placed consumer, else right of its first placed source,
    else below everything; then it moves down until it overlaps no box.
    """
    out = {k: v for k, v in boxes.items() if k in set(nodes)}
    consumers: dict[str, list[str]] = {}
    sources: dict[str, list[str]] = {}
    for src, dst in edges:
        consumers.setdefault(src, []).append(dst)
        sources.setdefault(dst, []).append(src)
    missing = [v for v in nodes if v not in out]
    for _ in range(len(missing) + 1):
        if not missing:
            break
        still: list[str] = []
        for v in missing:
            consumer = next((c for c in consumers.get(v, []) if c in out), None)
            source = next((s for s in sources.get(v, []) if s in out), None)
            if consumer is not None:
                near = out[consumer]
                x, y = near.x - size[0] - gap, near.y
            elif source is not None:
                near = out[source]
                x, y = near.x + near.w + gap, near.y
            else:
                still.append(v)
                continue
            out[v] = _free_spot(out, x, y, size, gap)
        if len(still) == len(missing):  # nothing links them to placed nodes: a row below
            bottom = max((b.y + b.h for b in out.values()), default=0.0) + gap
            left = min((b.x for b in out.values()), default=0.0)
            for i, v in enumerate(still):
                out[v] = Box(left + i * (size[0] + gap), bottom, size[0], size[1])
            still = []
        missing = still
    return out


def _free_spot(boxes: Mapping[str, Box], x: float, y: float, size: tuple[float, float], gap: float) -> Box:
    box = Box(x, y, size[0], size[1])
    for _ in range(len(boxes) + 1):
        hit = next((b for b in boxes.values() if _overlap(b, box, gap / 2)), None)
        if hit is None:
            break
        box = Box(x, hit.y + hit.h + gap, size[0], size[1])
    return box


def _overlap(a: Box, b: Box, margin: float) -> bool:
    return (
        a.x < b.x + b.w + margin
        and b.x < a.x + a.w + margin
        and a.y < b.y + b.h + margin
        and b.y < a.y + a.h + margin
    )
