"""Selectors as attention scores.

A selector expression (selects combined with and/or/not) is first rewritten into
*literals*: each literal is one (keys, queries) pair of s-ops with a 0/1 predicate
matrix over their value sets (any and/or/not of selects over the same pair collapses
into one literal, as in Tracr). An attention head can realise a conjunction of
literals exactly: each literal adds `c` to the score of the keys it selects and at
most 0 elsewhere, so a key selected by all m literals scores m*c and any other key at
most (m-1)*c; the BOS key scores m*c - c/2 (so an empty selection falls back to BOS,
which carries the default) or m*c for selector_width (BOS counts as one more key).

A disjunction of literals over different pairs cannot be one uniform head (its keys
would score differently); for selector_width we split it into disjoint conjunctions
(A or B = A + (not A and B)) and add the widths of several heads.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Optional

import numpy as np

from rasp import ir
from rasp.ops import NP_COMPARE

from .errors import CompileError
from .graph import ProgramGraph
from .infer import IDX, Inference, ValueIndex, check_table_size


@dataclass
class Literal:
    """One (keys, queries) pair and its predicate matrix P[query value, key value]."""

    keys: ir.SOp
    queries: ir.SOp
    matrix: np.ndarray          # bool, shape (len(query values), len(key values))
    source: ir.Selector         # the (sub)selector it came from, for messages

    def negated(self) -> "Literal":
        return Literal(self.keys, self.queries, ~self.matrix, self.source)


def _pairs(node: ir.Selector, graph: ProgramGraph) -> set[tuple[int, int]]:
    if isinstance(node, ir.Select):
        k, q = graph.children(node)
        return {(k.id, q.id)}
    out: set = set()
    for c in graph.children(node):
        out |= _pairs(c, graph)
    return out


def _predicate_matrix(node: ir.Select, graph: ProgramGraph, inf: Inference) -> np.ndarray:
    keys, queries = graph.children(node)
    kv = inf.info[keys.id].values
    qv = inf.info[queries.id].values
    check_table_size(len(kv), len(qv), node)
    pred = node.ir_predicate
    fast = _compare_vectorised(pred.comparison, qv, kv)
    if fast is None:
        fast = _read_off_positions(node, keys, queries, kv, qv, inf)
    return fast if fast is not None else pred.matrix(kv, qv)


def _read_off_positions(node: ir.Select, keys: ir.SOp, queries: ir.SOp, kv: tuple, qv: tuple,
                        inf: Inference) -> Optional[np.ndarray]:
    """The predicate over values, read off the interpreter's selection at the longest
    length when keys and queries depend on positions only (every value then occurs at
    some position): a Python predicate is not called over every pair a second time
    (shift_by's 40 x 40 lambda calls were a tenth of its compile)."""
    sel = inf.sel.get(node.id)
    if sel is None or sel.exact is None or not (inf.deps[keys.id] <= {IDX} and inf.deps[queries.id] <= {IDX}):
        return None
    N = inf.N
    where: list[list[int]] = []
    for side, values in ((queries, qv), (keys, kv)):
        exact = inf.info[side.id].exact
        if exact is None:
            return None
        pos = {(type(v), v): i for i, v in enumerate(exact[N, :N].tolist())}
        try:
            where.append([pos[(type(v), v)] for v in values])
        except (KeyError, TypeError):
            return None
    return sel.exact[N - 1][np.ix_(where[0], where[1])]


def _compare_vectorised(comparison: Optional[str], qv: tuple, kv: tuple) -> Optional[np.ndarray]:
    """The predicate matrix of a standard comparison of plain numbers or of strings, at once."""
    if comparison in ("TRUE", "FALSE"):
        return np.full((len(qv), len(kv)), comparison == "TRUE")
    if comparison not in NP_COMPARE:
        return None
    for kind in ((int, float), (str,)):
        if all(isinstance(v, kind) and not isinstance(v, bool) for v in (*qv, *kv)):
            q = np.array(qv, dtype=np.float64 if kind != (str,) else str)
            k = np.array(kv, dtype=np.float64 if kind != (str,) else str)
            return NP_COMPARE[comparison](k[None, :], q[:, None])
    return None


def _literal_of(node: ir.Selector, graph: ProgramGraph, inf: Inference) -> Literal:
    """Collapse a single-pair selector expression into one literal."""
    if isinstance(node, ir.Select):
        k, q = graph.children(node)
        return Literal(k, q, _predicate_matrix(node, graph, inf), node)
    kids = [_literal_of(c, graph, inf) for c in graph.children(node)]
    if isinstance(node, ir.SelectNot):
        return Literal(kids[0].keys, kids[0].queries, ~kids[0].matrix, node)
    a, b = kids
    m = a.matrix & b.matrix if isinstance(node, ir.SelectAnd) else a.matrix | b.matrix
    return Literal(a.keys, a.queries, m, node)


def conjunction(sel: ir.Selector, graph: ProgramGraph, inf: Inference) -> Optional[list[Literal]]:
    """The selector as a conjunction of literals, or None if it needs a disjunction."""
    lits = _conjunction(sel, graph, inf)
    return None if lits is None else merged_literals(lits, inf)


def merged_literals(lits: list[Literal], inf: Inference) -> list[Literal]:
    """A conjunction with fewer literals, each a head dimension set: two literals over the
    same keys and queries are one (the Shannon expansion of `a or (b and c)` puts `not a`
    beside `b` on the same pair); a literal whose queries are one constant value is a test
    of the key alone (`select(indices, 0, !=)`), which joins another literal over the same
    keys (and no key read that the other literal's codes would have to express); likewise
    for one constant key value."""
    out = list(lits)
    merged = True
    while merged:
        merged = False
        for i, lit in enumerate(out):
            const_q = len(inf.info[lit.queries.id].values) == 1 and not inf.deps[lit.queries.id]
            const_k = len(inf.info[lit.keys.id].values) == 1 and not inf.deps[lit.keys.id]
            for j, other in enumerate(out):
                if j == i:
                    continue
                if other.keys.id == lit.keys.id and other.queries.id == lit.queries.id:
                    matrix = other.matrix & lit.matrix
                elif const_q and const_k:
                    continue
                elif const_q and other.keys.id == lit.keys.id:
                    matrix = other.matrix & lit.matrix[0:1, :]
                elif const_k and other.queries.id == lit.queries.id:
                    matrix = other.matrix & lit.matrix[:, 0:1]
                else:
                    continue
                out[j] = Literal(other.keys, other.queries, matrix, other.source)
                del out[i]
                merged = True
                break
            if merged:
                break
    return out


def _conjunction(sel: ir.Selector, graph: ProgramGraph, inf: Inference) -> Optional[list[Literal]]:
    if len(_pairs(sel, graph)) == 1:
        return [_literal_of(sel, graph, inf)]
    if isinstance(sel, ir.SelectAnd):
        out = []
        for c in graph.children(sel):
            part = _conjunction(c, graph, inf)
            if part is None:
                return None
            out.extend(part)
        return out
    if isinstance(sel, ir.SelectNot):   # not (a or b) = not a and not b; not not a = a
        return conjunction_not(graph.children(sel)[0], graph, inf)
    return None


def conjunction_not(sel: ir.Selector, graph: ProgramGraph, inf: Inference) -> Optional[list[Literal]]:
    if len(_pairs(sel, graph)) == 1:
        return [_literal_of(sel, graph, inf).negated()]
    if isinstance(sel, ir.SelectNot):
        return _conjunction(graph.children(sel)[0], graph, inf)
    if isinstance(sel, ir.SelectOr):
        a, b = graph.children(sel)
        pa, pb = conjunction_not(a, graph, inf), conjunction_not(b, graph, inf)
        if pa is not None and pb is not None:
            return pa + pb
    return None


# ---- disjoint decomposition for selector_width ---------------------------------------

@dataclass
class _Formula:
    """A boolean formula over single-pair literals (leaves are Literal objects)."""

    op: str                    # "lit", "and", "or", "not", "true", "false"
    lit: Optional[Literal] = None
    args: tuple = ()


def _formula(sel: ir.Selector, graph: ProgramGraph, inf: Inference,
             seen: Optional[dict[int, _Formula]] = None) -> _Formula:
    """The selector as a formula; a selector used twice (`v or (v and w)`) is one literal
    object, so that the Shannon expansion fixes both uses at once (and drops `w` there)."""
    seen = {} if seen is None else seen
    if sel.id in seen:
        return seen[sel.id]
    if len(_pairs(sel, graph)) == 1:
        f = _Formula("lit", _literal_of(sel, graph, inf))
    else:
        kids = [_formula(c, graph, inf, seen) for c in graph.children(sel)]
        if isinstance(sel, ir.SelectNot):
            f = _Formula("not", args=(kids[0],))
        else:
            f = _Formula("and" if isinstance(sel, ir.SelectAnd) else "or", args=tuple(kids))
    seen[sel.id] = f
    return f


def _leaves(f: _Formula) -> list[Literal]:
    if f.op == "lit":
        return [f.lit]
    out = []
    for a in f.args:
        out.extend(_leaves(a))
    return out


def _restrict(f: _Formula, lit: Literal, value: bool) -> _Formula:
    if f.op == "lit":
        if f.lit is lit:
            return _Formula("true" if value else "false")
        return f
    if f.op in ("true", "false"):
        return f
    args = tuple(_restrict(a, lit, value) for a in f.args)
    if f.op == "not":
        (a,) = args
        if a.op in ("true", "false"):
            return _Formula("false" if a.op == "true" else "true")
        return _Formula("not", args=args)
    # "and" and "or" are duals: one constant absorbs (false for and), the other is neutral
    absorbing, neutral = ("false", "true") if f.op == "and" else ("true", "false")
    if any(a.op == absorbing for a in args):
        return _Formula(absorbing)
    rest = tuple(a for a in args if a.op != neutral)
    if not rest:
        return _Formula(neutral)
    return rest[0] if len(rest) == 1 else _Formula(f.op, args=rest)


def _as_conjunction(f: _Formula) -> Optional[list[Literal]]:
    if f.op == "lit":
        return [f.lit]
    if f.op == "not" and f.args[0].op == "lit":
        return [f.args[0].lit.negated()]
    if f.op == "and":
        out = []
        for a in f.args:
            part = _as_conjunction(a)
            if part is None:
                return None
            out.extend(part)
        return out
    if f.op == "not" and f.args[0].op == "or":
        out = []
        for a in f.args[0].args:
            part = _as_conjunction(_Formula("not", args=(a,)))
            if part is None:
                return None
            out.extend(part)
        return out
    if f.op == "not" and f.args[0].op == "not":
        return _as_conjunction(f.args[0].args[0])
    return None


def disjoint_conjunctions(sel: ir.Selector, graph: ProgramGraph, inf: Inference) -> list[list[Literal]]:
    """Disjoint conjunctions whose union is the selector (Shannon expansion).

    selector_width(sel) is then the sum of the widths of these conjunctions.
    """
    root = _formula(sel, graph, inf)
    out: list[list[Literal]] = []

    def expand(f: _Formula, prefix: list[Literal], depth: int) -> None:
        if f.op == "false":
            return
        if f.op == "true":
            out.append(merged_literals(prefix, inf))
            return
        conj = _as_conjunction(f)
        if conj is not None:
            out.append(merged_literals(prefix + conj, inf))
            return
        if depth > 8:
            raise CompileError("this selector combination is too complex to split into attention heads", sel)
        lit = _leaves(f)[0]
        expand(_restrict(f, lit, True), prefix + [lit], depth + 1)
        expand(_restrict(f, lit, False), prefix + [lit.negated()], depth + 1)

    expand(root, [], 0)
    return out


def _unique_rows(matrix: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """np.unique(matrix, axis=0, return_inverse=True) for 0/1 matrices, ~10x faster
    (rows compared as bytes; for booleans byte order is numpy's lexicographic order)."""
    if matrix.dtype != np.bool_:
        rows, inv = np.unique(matrix, axis=0, return_inverse=True)
        return rows, inv.reshape(-1)
    m = np.ascontiguousarray(matrix)
    keys = [r.tobytes() for r in m]
    order = sorted(set(keys))
    pos = {k: i for i, k in enumerate(order)}
    inv = np.fromiter((pos[k] for k in keys), dtype=np.int64, count=len(keys))
    rows = np.frombuffer(b"".join(order), dtype=np.bool_).reshape(len(order), m.shape[1])
    return rows, inv


def factorize(matrix: np.ndarray) -> tuple[np.ndarray, np.ndarray, str]:
    """P = A @ B.T with few columns: group identical rows (or columns).

    Returns (A, B, side): A over query values, B over key values, both 0/1 or 0/1
    patterns; `side` names the side whose features are indicator functions.
    """
    rows, row_inv = _unique_rows(matrix)
    cols_t, col_inv = _unique_rows(matrix.T)
    cols = cols_t.T
    # drop the all-zero pattern: it contributes nothing to the score
    if rows.shape[0] <= cols.shape[1]:
        keep = [r for r in range(rows.shape[0]) if rows[r].any()]
        A = np.zeros((matrix.shape[0], len(keep)))
        for j, r in enumerate(keep):
            A[row_inv.reshape(-1) == r, j] = 1.0
        B = rows[keep].T.astype(np.float64) if keep else np.zeros((matrix.shape[1], 0))
        return A, B, "query"
    keep = [c for c in range(cols.shape[1]) if cols[:, c].any()]
    B = np.zeros((matrix.shape[1], len(keep)))
    for j, c in enumerate(keep):
        B[col_inv.reshape(-1) == c, j] = 1.0
    A = cols[:, keep].astype(np.float64) if keep else np.zeros((matrix.shape[0], 0))
    return A, B, "key"


def equality_codes(matrix: np.ndarray) -> Optional[tuple[np.ndarray, np.ndarray]]:
    """Integer codes with P[q, k] == (qcode[q] == kcode[k]), if P is an equality relation.

    Every query value and key value gets a code; values that match nothing get codes
    distinct from everything else. None if P is not of this form.
    """
    m = np.ascontiguousarray(matrix, dtype=bool)
    nq, nk = m.shape
    qcode = np.full(nq, -1, dtype=np.int64)
    classes: dict[bytes, int] = {}
    for i in np.flatnonzero(m.any(axis=1)).tolist():
        qcode[i] = classes.setdefault(m[i].tobytes(), len(classes))
    # a key takes the class of any query it matches; P must then be exactly "same class"
    kcode = np.full(nk, -1, dtype=np.int64)
    matched = m.any(axis=0)
    kcode[matched] = qcode[m.argmax(axis=0)[matched]]
    same = (qcode[:, None] == kcode[None, :]) & (qcode[:, None] >= 0) & (kcode[None, :] >= 0)
    if not np.array_equal(same, m):
        return None
    n = len(classes)
    # unmatched values: fresh codes, far from the used ones
    free_q = np.nonzero(qcode < 0)[0]
    qcode[free_q] = n + 1 + np.arange(len(free_q))
    free_k = np.nonzero(kcode < 0)[0]
    kcode[free_k] = -2 - np.arange(len(free_k))
    return qcode, kcode


def split_pairwise(lit: Literal, graph: ProgramGraph, inf: Inference) -> Optional[list[list[Literal]]]:
    """Split a literal on y = f(a, b) (keys and queries both y) into literals on a and b.

    If, over the reachable (a, b) combinations, the predicate is decided by a alone
    whenever a differs between query and key, and by b alone (the same way for every
    a) when a is equal, then

        P(y_k, y_q) = A(a_k, a_q)  or  (a_k == a_q and B(b_k, b_q))

    as two disjoint conjunctions. The typical case is a lexicographic comparison, e.g.
    Tracr's sort keys `x + i / n` compared with `<`: one head compares x, another
    compares positions among equal x, instead of one head over every (x, i) value.
    Returns None when the literal does not split this way (in either order).
    """
    if lit.keys.id != lit.queries.id or not isinstance(lit.keys, ir.Map):
        return None
    y = lit.keys
    kids = graph.children(y)
    if len(kids) != 2:
        return None
    tuples = inf.joint_tuples(kids)
    if tuples is None or len(tuples) > 10_000:
        return None
    yinfo = inf.info[y.id]
    yindex = ValueIndex(yinfo.values)
    yidx = []
    for t in tuples:
        try:
            val = y.fn.py(*t) if y.fn.takes_none or all(v is not None for v in t) else None
        except Exception:
            return None
        j = yindex.find(val)
        if j is None:
            return None
        yidx.append(j)
    yidx = np.array(yidx)
    P = lit.matrix[np.ix_(yidx, yidx)]   # [query tuple, key tuple]
    for first in (0, 1):
        second = 1 - first
        a_node, b_node = kids[first], kids[second]
        a_vals, b_vals = inf.info[a_node.id].values, inf.info[b_node.id].values
        a_index, b_index = ValueIndex(a_vals), ValueIndex(b_vals)
        ai = [a_index.find(t[first]) for t in tuples]
        bi = [b_index.find(t[second]) for t in tuples]
        if None in ai or None in bi:
            return None
        ai, bi = np.array(ai), np.array(bi)
        A, ok_a = _blocks_constant(P, ai, len(a_vals))
        B, ok_b = _same_block_table(P, ai, bi, len(b_vals))
        if not (ok_a and ok_b):
            continue
        eq = np.eye(len(a_vals), dtype=bool)
        lit_a = Literal(a_node, a_node, A & ~eq, lit.source)
        lit_eq = Literal(a_node, a_node, eq, lit.source)
        lit_b = Literal(b_node, b_node, B, lit.source)
        return [[lit_a], [lit_eq, lit_b]]
    return None


def _blocks_constant(P: np.ndarray, groups: np.ndarray, size: int) -> tuple[np.ndarray, bool]:
    """T[g1, g2] = P over query group g1 x key group g2 (g1 != g2); ok if each block is constant."""
    order = np.argsort(groups, kind="stable")
    g = groups[order]
    starts = np.flatnonzero(np.r_[True, g[1:] != g[:-1]])
    ids = g[starts]
    Ps = P[np.ix_(order, order)].astype(np.uint8)
    hi = np.maximum.reduceat(np.maximum.reduceat(Ps, starts, axis=0), starts, axis=1)
    lo = np.minimum.reduceat(np.minimum.reduceat(Ps, starts, axis=0), starts, axis=1)
    off = ~np.eye(len(ids), dtype=bool)
    ok = bool(np.all(hi[off] == lo[off]))
    table = np.zeros((size, size), dtype=bool)
    table[np.ix_(ids, ids)] = (hi == 1) & off
    return table, ok


def _same_block_table(P: np.ndarray, groups: np.ndarray, inner: np.ndarray, size: int) -> tuple[np.ndarray, bool]:
    """T[b1, b2] = P between tuples of one group with inner values b1, b2; ok if the same in every group."""
    table = np.zeros((size, size), dtype=np.int8) - 1
    for gid in np.unique(groups):
        members = np.flatnonzero(groups == gid)
        sub = P[np.ix_(members, members)].astype(np.int8)
        cells = table[np.ix_(inner[members], inner[members])]
        known = cells >= 0
        if np.any(cells[known] != sub[known]):
            return table == 1, False
        table[np.ix_(inner[members], inner[members])] = sub
    return table == 1, True
