"""Stage 1: the program as a networkx dataflow graph, with duplicates merged.

Nodes are IR node ids; each graph node carries the IR object under "node". Edges go
from an input to the node that uses it. Dead nodes never enter (we start from the
output), and structurally identical nodes (same operation on the same inputs, e.g.
`select(indices, indices, <)` written twice) are merged so they compile once.
"""

from __future__ import annotations

from typing import Any, Hashable, Optional

import networkx as nx

from rasp import ir

from .errors import CompileError


def _fn_key(fn: ir.ElementFn) -> Hashable:
    """Functions compare equal only when they are provably the same operation."""
    if fn.op is not None and fn.op not in ("lookup",):
        try:
            consts = tuple(_atom_key(c) for c in fn.consts)
            hash(consts)
            return ("op", fn.op, fn.label, consts)
        except TypeError:
            pass
    return ("fn", id(fn.py))


def _atom_key(value: Any) -> Hashable:
    if isinstance(value, tuple):
        return tuple(_atom_key(v) for v in value)
    return (type(value), value)


def structural_key(node: ir.Node, canon: dict[int, ir.Node]) -> Optional[Hashable]:
    """A key equal for nodes that always compute the same values (None: never merge)."""
    kids = tuple(canon[c.id].id for c in node.children)
    if isinstance(node, ir.Tokens):
        return ("tokens", node.conversion)
    if isinstance(node, (ir.Indices, ir.Length)):
        return (node.kind,)
    if isinstance(node, ir.Constant):
        return ("const", _atom_key(node.value))
    if isinstance(node, ir.Map):
        return ("map", _fn_key(node.fn), kids)
    if isinstance(node, ir.Select):
        pred = node.ir_predicate
        pkey = ("cmp", pred.comparison, pred.none_policy) if pred.comparison else ("pred", id(pred.py))
        return ("select", pkey, kids)
    if isinstance(node, (ir.SelectAnd, ir.SelectOr, ir.SelectNot, ir.SelectorWidth)):
        return (node.kind, kids)
    if isinstance(node, ir.Aggregate):
        return ("aggregate", node.semantics, _atom_key(node.default), kids)
    return None


class ProgramGraph:
    """The deduplicated dataflow graph of one output s-op."""

    def __init__(self, output: ir.SOp) -> None:
        self.canon: dict[int, ir.Node] = {}
        seen: dict[Hashable, ir.Node] = {}
        order = ir.topological_order([output])
        for node in order:
            if isinstance(node, (ir.ConstantSequence, ir.ConstantSelector)):
                raise CompileError("constant sequences and selectors are for testing the interpreter; "
                                   "they depend on the input length and cannot be compiled", node)
            key = structural_key(node, self.canon)
            if key is not None and key in seen:
                self.canon[node.id] = seen[key]
            else:
                self.canon[node.id] = node
                if key is not None:
                    seen[key] = node
        self.output = self.canon[output.id]
        self.graph = nx.DiGraph()
        for node in ir.topological_order([self.output]):
            self.graph.add_node(node.id, node=node)
        for node in self.nodes():
            for child in node.children:
                self.graph.add_edge(self.canon[child.id].id, node.id)

    def nodes(self) -> list[ir.Node]:
        """All nodes, inputs before users."""
        return [self.graph.nodes[i]["node"] for i in nx.topological_sort(self.graph)]

    def node(self, node_id: int) -> ir.Node:
        return self.graph.nodes[node_id]["node"]

    def children(self, node: ir.Node) -> list[ir.Node]:
        return [self.canon[c.id] for c in node.children]

    def users(self, node: ir.Node) -> list[ir.Node]:
        return [self.graph.nodes[i]["node"] for i in self.graph.successors(node.id)]

    def resolve(self, node: ir.Node) -> ir.Node:
        return self.canon[node.id]
