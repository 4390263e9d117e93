"""The money's path of an alert as an inline SVG, laid out server-side with networkx.

Wallets are nodes in layers from top to bottom by hop order (a phone is narrow and tall), each
transfer an arrow labelled with its amount (¥) and China date. Layers are networkx's
topological generations when the money never comes back to a wallet, else breadth-first
distances from the first sender; `multipartite_layout` spreads each layer across the width.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import networkx as nx
from markupsafe import Markup, escape

from api.core.labels import yuan
from api.core.templates import china_date
from risk.rules import Evidence, Hop

WIDTH = 360
ROW = 96
TOP = 24
SIDE = 60
RADIUS = 9
NAME_CHARS = 26
LABEL = 130
"""Room an edge's label needs beside it (¥1,234,567.89 · 2026-01-05 at 11 px)."""


@dataclass(frozen=True)
class Node:
    """A wallet placed on the drawing."""

    address: str
    name: str
    x: float
    y: float


def wallet_name(address: str, name: str, names: Mapping[str, str] = {}) -> str:
    """What to call a wallet: the service's name for it, else the evidence's, shortened when
    that is only its address."""
    chosen = names.get(address) or name
    if chosen.startswith("0x") and len(chosen) == 42:
        return f"{chosen[:8]}…{chosen[-4:]}"
    return chosen


def hops_of(evidence: Evidence) -> list[Hop]:
    """The path's transfers, then the other transfers (each once)."""
    seen: set[tuple[str, str, str, int]] = set()
    hops: list[Hop] = []
    for hop in (*evidence.path, *evidence.transfers):
        key = (hop.tx, hop.sender, hop.recipient, hop.amount_fen)
        if key not in seen:
            seen.add(key)
            hops.append(hop)
    return hops


def layers(graph: nx.DiGraph, first: str) -> dict[str, int]:
    """Each wallet's layer: hop order, also when money goes round in a circle."""
    if nx.is_directed_acyclic_graph(graph):
        return {n: i for i, gen in enumerate(nx.topological_generations(graph)) for n in gen}
    found: dict[str, int] = {}
    for start in [first, *graph.nodes]:
        if start not in found:
            reach = nx.single_source_shortest_path_length(graph, start)
            found.update({n: d for n, d in reach.items() if n not in found})
    return found


def place(hops: Sequence[Hop], names: Mapping[str, str]) -> dict[str, Node]:
    """Wallets positioned in the SVG's coordinates."""
    graph = nx.DiGraph()
    for hop in hops:
        graph.add_edge(hop.sender, hop.recipient)
    layer = layers(graph, hops[0].sender)
    nx.set_node_attributes(graph, layer, "layer")
    spread = nx.multipartite_layout(graph, subset_key="layer", align="horizontal")
    nodes: dict[str, Node] = {}
    for address, level in layer.items():
        peers = [n for n in layer if layer[n] == level]
        # multipartite_layout centres each layer on 0; a lone wallet sits in the middle
        xs = sorted(float(spread[p][0]) for p in peers)
        lo, hi = xs[0], xs[-1]
        share = 0.5 if hi == lo else (float(spread[address][0]) - lo) / (hi - lo)
        x = WIDTH / 2 if len(peers) == 1 else SIDE + share * (WIDTH - 2 * SIDE)
        nodes[address] = Node(address, names.get(address, address), x, TOP + level * ROW)
    return nodes


def _short(text: str) -> str:
    """A name cut to fit beside its node (the whole name is in the node's title)."""
    return text if len(text) <= NAME_CHARS else text[: NAME_CHARS - 1] + "…"


def _edge(hop: Hop, a: Node, b: Node, bend: int) -> str:
    """One transfer: a curved arrow from wallet to wallet, and its amount and date."""
    if a.address == b.address:
        return ""
    mx, my = (a.x + b.x) / 2 + bend, (a.y + b.y) / 2
    if a.y == b.y:
        my += 28 if bend >= 0 else -28  # same layer: bow below (or above) the row
    sx, sy = _towards(a, mx, my, RADIUS)
    ex, ey = _towards(b, mx, my, RADIUS + 3)
    label = f"{yuan(hop.amount_fen)} · {china_date(hop.at)}"
    # the label sits beside the curve's middle, on the side it bends to
    qx, qy = (sx + 2 * mx + ex) / 4, (sy + 2 * my + ey) / 4
    if bend < 0 or qx + 8 > WIDTH - LABEL:
        lx, anchor = max(qx - 8, LABEL), "end"
    else:
        lx, anchor = qx + 8, "start"
    title = escape(f"{hop.sender_name} → {hop.recipient_name}: {label} (tx {hop.tx})")
    return (
        f'<g class="edge"><title>{title}</title>'
        f'<path d="M{sx:.1f},{sy:.1f} Q{mx:.1f},{my:.1f} {ex:.1f},{ey:.1f}" fill="none" '
        f'stroke="#4f7942" stroke-width="2" marker-end="url(#arrow)"/>'
        f'<text x="{lx:.1f}" y="{qy + 4:.1f}" text-anchor="{anchor}" font-size="11" '
        f'fill="#1f3d2b">{escape(label)}</text></g>'
    )


def _towards(node: Node, x: float, y: float, by: float) -> tuple[float, float]:
    """The point `by` from the node's centre in the direction of (x, y): the rim of its dot."""
    dx, dy = x - node.x, y - node.y
    length = (dx * dx + dy * dy) ** 0.5 or 1.0
    return node.x + dx / length * by, node.y + dy / length * by


def _node(node: Node) -> str:
    """One wallet: a dot and its name under it."""
    return (
        f'<g class="node"><title>{escape(node.name)} {escape(node.address)}</title>'
        f'<circle cx="{node.x:.1f}" cy="{node.y:.1f}" r="{RADIUS}" fill="#fff" '
        f'stroke="#1f3d2b" stroke-width="2"/>'
        f'<text x="{node.x:.1f}" y="{node.y + RADIUS + 13:.1f}" text-anchor="middle" '
        f'font-size="12" fill="#222">{escape(_short(node.name))}</text></g>'
    )


def money_graph(evidence: Evidence, names: Mapping[str, str] = {}) -> Markup | None:
    """The SVG of the evidence's transfers (None when the finding rests on none): wallet names
    from the evidence, overridden by `names` (address -> name)."""
    hops = hops_of(evidence)
    if not hops:
        return None
    known = {h.sender: h.sender_name for h in hops} | {h.recipient: h.recipient_name for h in hops}
    known = {a: wallet_name(a, n, names) for a, n in known.items()}
    nodes = place(hops, known)
    height = max(n.y for n in nodes.values()) + 40
    drawn: dict[tuple[str, str], int] = {}
    edges = []
    for hop in hops:
        pair = (hop.sender, hop.recipient)
        count = drawn[pair] = drawn.get(pair, -1) + 1
        bend = (1 if count % 2 else -1) * 24 * ((count + 1) // 2) + _reverse(nodes, hop)
        edges.append(_edge(hop, nodes[hop.sender], nodes[hop.recipient], bend))
    body = "".join(edges) + "".join(_node(n) for n in nodes.values())
    return Markup(
        f'<svg id="money-graph" xmlns="http://www.w3.org/2000/svg" viewBox="0 0 {WIDTH} '
        f'{height:.0f}" width="100%" role="img" aria-label="资金路径 money path">'
        '<defs><marker id="arrow" viewBox="0 0 10 10" refX="9" refY="5" markerWidth="7" '
        'markerHeight="7" orient="auto-start-reverse"><path d="M0,0 L10,5 L0,10 z" '
        'fill="#4f7942"/></marker></defs>'
        f"{body}</svg>"
    )


def _reverse(nodes: Mapping[str, Node], hop: Hop) -> int:
    """Money going back up (a circle) bends out to the left, clear of the way down."""
    return -120 if nodes[hop.recipient].y < nodes[hop.sender].y else 0
