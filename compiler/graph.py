"""Stage 1: the program as a networkx dataflow graph, with duplicates merged.

Nodes are IR node ids; each graph node carries the IR object under "node". Edges go
from an input to the node that uses it. Dead nodes never enter (we start from the
output), and structurally identical nodes (same operation on the same inputs, e.g.
`select(indices, indices, <)` written twice) are merged so they compile once.
"""

from __future__ import annotations

import hashlib
from typing import Any, Callable, Hashable, Mapping, Optional, Sequence

import networkx as nx
import numpy as np

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


def fingerprint(sop: ir.SOp) -> str:
    """A digest of what a program computes: node kinds, operations, constants and wiring
    (not names), so that `rasp compare` can tell whether two saved models and a program
    file belong together. Python functions (Tracr lambdas) count by label, bytecode and
    the values they close over."""
    order = ir.topological_order([sop])
    index = {n.id: i for i, n in enumerate(order)}
    digest = hashlib.sha256()
    for node in order:
        digest.update(repr((type(node).__name__, _describe(node), [index[c.id] for c in node.children]))
                      .encode())
    return digest.hexdigest()[:16]


def _describe(node: ir.Node) -> tuple:
    if isinstance(node, ir.Tokens):
        return (node.conversion,)
    if isinstance(node, ir.Constant):
        return (_stable_repr(node.value),)
    if isinstance(node, ir.Map):
        fn = node.fn
        return (fn.op, fn.label, _stable_repr(fn.consts), _code(fn.py))
    if isinstance(node, ir.Select):
        pred = node.ir_predicate
        return (pred.comparison, pred.none_policy, pred.label, _code(pred.py))
    if isinstance(node, ir.Aggregate):
        return (node.semantics, _stable_repr(node.default))
    return (getattr(node, "kind", ""),)


def _code(fn: Any) -> tuple:
    code = getattr(fn, "__code__", None)
    if code is None:
        return ()
    cells = tuple(_stable_repr(c.cell_contents) for c in (getattr(fn, "__closure__", None) or ()))
    return (code.co_code.hex(), _stable_repr(code.co_consts), cells)


def _stable_repr(value: Any) -> str:
    """repr of atoms and containers of them; other objects by type (their repr may hold a
    memory address, which differs between processes)."""
    if value is None or isinstance(value, (str, int, float, bool)):
        return repr(value)
    if isinstance(value, (tuple, list)):
        return "(" + ",".join(_stable_repr(v) for v in value) + ")"
    if isinstance(value, dict):
        return "{" + ",".join(f"{_stable_repr(k)}:{_stable_repr(v)}" for k, v in value.items()) + "}"
    if hasattr(value, "co_code"):
        return value.co_code.hex()
    return type(value).__name__


class ProgramGraph:
    """The deduplicated dataflow graph of one output s-op."""

    def __init__(self, output: ir.SOp, replace: Optional[Mapping[int, ir.Node]] = None) -> None:
        """`replace`: canonical node id -> a node computing the same values (see
        compiler.rewrite), used wherever the original is; its new nodes join the graph."""
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
        if replace:
            self._replace(replace)
        self.output = self.canon[output.id]
        # joint select id -> the `or` of selects it replaced (see _joint_selectors)
        self.joint_sources: dict[int, ir.Selector] = {}
        self._joint_selectors(order)
        self.graph = nx.DiGraph()
        self._order: Optional[list[ir.Node]] = None
        stack, seen = [self.output], {self.output.id}
        while stack:
            node = stack.pop()
            self.graph.add_node(node.id, node=node)
            for child in self.children(node):
                self.graph.add_edge(child.id, node.id)
                if child.id not in seen:
                    seen.add(child.id)
                    stack.append(child)

    def _replace(self, replace: Mapping[int, ir.Node]) -> None:
        for new in replace.values():
            for node in ir.topological_order([new]):
                self.canon.setdefault(node.id, node)
        for nid, canonical in list(self.canon.items()):
            if canonical.id in replace:
                self.canon[nid] = replace[canonical.id]

    def _joint_selectors(self, order: list[ir.Node]) -> None:
        """Rewrite `or`s of selects over different s-ops used by aggregates into one select.

        A uniform attention over the union of two selections needs one score for both,
        so the keys (and queries) of the parts are joined into tuple-valued s-ops and the
        whole boolean formula becomes one predicate on the tuples. (selector_width does
        not need this: it adds the widths of disjoint parts instead.)
        """
        for node in order:
            if not isinstance(node, ir.Aggregate) or self.canon[node.id] is not node:
                continue
            sel = self.canon[node.children[0].id]
            if conjunctive(sel, self):
                continue
            joint = joint_select(sel, self)
            self.joint_sources[joint.id] = sel
            for nid, canonical in list(self.canon.items()):
                if canonical is sel:        # (duplicates of the selector too)
                    self.canon[nid] = joint

    def nodes(self) -> list[ir.Node]:
        """All nodes, inputs before users (the graph is fixed once built, so the order is
        computed once: every stage walks it)."""
        if self._order is None:
            self._order = [self.graph.nodes[i]["node"] for i in nx.topological_sort(self.graph)]
        return list(self._order)

    def node(self, node_id: int) -> ir.Node:
        return self.graph.nodes[node_id]["node"]

    def children(self, node: ir.Node) -> list[ir.Node]:
        return [self.canon[c.id] for c in node.children]

    def users(self, node: ir.Node) -> list[ir.Node]:
        return [self.graph.nodes[i]["node"] for i in self.graph.successors(node.id)]

    def resolve(self, node: ir.Node) -> ir.Node:
        return self.canon[node.id]


def _pairs(sel: ir.Selector, g: "ProgramGraph") -> list[ir.Select]:
    if isinstance(sel, ir.Select):
        return [sel]
    out = []
    for c in sel.children:
        out += _pairs(g.canon[c.id], g)
    return out


def _pair_key(s: ir.Select, g: "ProgramGraph") -> tuple[int, int]:
    return (g.canon[s.children[0].id].id, g.canon[s.children[1].id].id)


def conjunctive(sel: ir.Selector, g: "ProgramGraph", negated: bool = False) -> bool:
    """Mirror of selectors.conjunction: realisable as a conjunction of single-pair literals."""
    if len({_pair_key(s, g) for s in _pairs(sel, g)}) <= 1:
        return True
    kids = [g.canon[c.id] for c in sel.children]
    if isinstance(sel, ir.SelectNot):
        return conjunctive(kids[0], g, not negated)
    if isinstance(sel, ir.SelectAnd) and not negated:
        return all(conjunctive(k, g) for k in kids)
    if isinstance(sel, ir.SelectOr) and negated:
        return all(conjunctive(k, g, True) for k in kids)
    return False


def combined_table(sel: ir.Selector, select_table: Callable[[ir.Select], np.ndarray],
                   children: Callable[[ir.Node], list]) -> np.ndarray:
    """A selector built of selects and and/or/not as one bool [query, key] table: each
    select's own table (`select_table`, once per select) combined by numpy."""
    tables: dict[int, np.ndarray] = {}

    def table(s: ir.Selector) -> np.ndarray:
        if s.id not in tables:
            if isinstance(s, ir.Select):
                tables[s.id] = select_table(s)
            else:
                parts = [table(k) for k in children(s)]
                tables[s.id] = ~parts[0] if isinstance(s, ir.SelectNot) else \
                    (parts[0] & parts[1]) if isinstance(s, ir.SelectAnd) else (parts[0] | parts[1])
        return tables[s.id]
    return table(sel)


def _tuple_fn(arity: int) -> ir.ElementFn:
    return ir.ElementFn(lambda *xs: tuple(xs), arity, "(" + ", ".join(f"x{i}" for i in range(arity)) + ")",
                        op="tuple", takes_none=True)


def joint_select(sel: ir.Selector, g: "ProgramGraph") -> ir.Select:
    """One Select over tuples of all key s-ops and all query s-ops, with `sel`'s logic."""
    leaves = _pairs(sel, g)
    key_nodes: list[ir.SOp] = []
    query_nodes: list[ir.SOp] = []
    for leaf in leaves:
        k, q = (g.canon[c.id] for c in leaf.children)
        if all(k is not x for x in key_nodes):
            key_nodes.append(k)
        if all(q is not x for x in query_nodes):
            query_nodes.append(q)
    origin = sel.origin

    def joined(nodes: list[ir.SOp]) -> ir.SOp:
        if len(nodes) == 1:
            return nodes[0]
        node = ir.Map(_tuple_fn(len(nodes)), nodes, origin)
        node.named("(" + ", ".join(n.name for n in nodes) + ")")
        g.canon[node.id] = node
        return node

    kpos = {id(n): i for i, n in enumerate(key_nodes)}
    qpos = {id(n): i for i, n in enumerate(query_nodes)}
    single_k, single_q = len(key_nodes) == 1, len(query_nodes) == 1
    # the formula's nodes as they are now: a later joint select may take an inner `or`'s
    # place in the graph (an aggregate over `v` beside one over `v or w`), and this
    # predicate, evaluated later, must still read the selects its tuples were built from
    frozen: dict[int, list] = {}

    def freeze(s: ir.Selector) -> None:
        if s.id not in frozen:
            frozen[s.id] = [g.canon[c.id] for c in s.children]
            if not isinstance(s, ir.Select):
                for kid in frozen[s.id]:
                    freeze(kid)
    freeze(sel)

    def evaluate(s: ir.Selector, kt, qt) -> bool:
        if isinstance(s, ir.Select):
            k, q = frozen[s.id]
            kv = kt if single_k else kt[kpos[id(k)]]
            qv = qt if single_q else qt[qpos[id(q)]]
            pred = s.ir_predicate
            if (kv is None or qv is None) and pred.none_policy != "call":
                return False
            try:
                return bool(pred.py(kv, qv))
            except Exception:
                return False
        kids = frozen[s.id]
        if isinstance(s, ir.SelectNot):
            return not evaluate(kids[0], kt, qt)
        if isinstance(s, ir.SelectAnd):
            return evaluate(kids[0], kt, qt) and evaluate(kids[1], kt, qt)
        return evaluate(kids[0], kt, qt) or evaluate(kids[1], kt, qt)

    def tabulate(keys: Sequence[Any], queries: Sequence[Any]) -> Optional[np.ndarray]:
        """The whole table from each select's own table over the distinct values of its
        two components, combined by numpy: the formula's Python walk, pair by pair, was
        most of the original RASP's rover.rasp compile (11 M pairs of tuples)."""
        try:
            columns = {}

            def codes(values: Sequence[Any], pos: int, single: bool, side: str) -> tuple[np.ndarray, list]:
                if (side, pos) not in columns:
                    index: dict[tuple, int] = {}
                    col = values if single else [v[pos] for v in values]
                    found = np.fromiter((index.setdefault((type(v), v), len(index)) for v in col),
                                        dtype=np.intp, count=len(col))
                    distinct = [v for _, v in index]
                    columns[side, pos] = found, distinct
                return columns[side, pos]

            def select_table(s: ir.Select) -> np.ndarray:
                k, q = frozen[s.id]
                kc, kd = codes(keys, kpos[id(k)], single_k, "key")
                qc, qd = codes(queries, qpos[id(q)], single_q, "query")
                return s.ir_predicate.matrix(kd, qd)[np.ix_(qc, kc)]
            return combined_table(sel, select_table, lambda s: frozen[s.id])
        except TypeError:       # (an unhashable value: the caller goes pair by pair)
            return None

    pred = ir.Predicate(lambda k, q: evaluate(sel, k, q), f"joint({sel.name})", comparison=None,
                        none_policy="call", tabulate=tabulate)
    new = ir.Select(joined(key_nodes), joined(query_nodes), pred, origin)
    new.named(sel.name)
    g.canon[new.id] = new
    return new
