"""Rewrites of a program that keep every value the interpreter computes, found by value
inference and applied by rebuilding the graph (`ProgramGraph(..., replace=...)`): two kinds
of `aggregate` that are really selector widths.

The original RASP counts with BOS: its paper's `_with_bos_selector_width` and the REPL
library's own `selector_width` average `indicator(indices == 0)` over `s or select(indices,
0, ==)`. Every query selects position 0, the only key holding a nonzero value c, so the
mean is c divided by the number of selected keys. And the REPL's `has_focus` averages a
constant over a selector: the constant, or the default where nothing is selected. As
means, the `or`s in their selectors had to become one select over tuples of all their
inputs, built by an MLP and read one-hot (the paper's sort_by_most_freq: d_model 2,481 and
7 layers at max_seq_len 24); as widths, each disjoint part of an `or` is a head and the
parts add up.
"""

from __future__ import annotations

from typing import Any, Optional

import numpy as np

from rasp import ir

from .graph import conjunctive
from .infer import Inference, tokenless_selector_matrices


def anchored_width_map(node: ir.Aggregate, c: Any, inference: Inference) -> ir.Map:
    """`c / selector_width(node's selector)`, typed as the interpreter types the mean: one
    selected key gives c itself (an int stays an int; Tracr's rule makes every mean a
    float), several give the float quotient. Where the selector is `s or z` with z
    selecting position 0 alone, the width is 1 + the width of `s and not z`: one head
    fewer (the disjoint parts of `s or z` count z apart), and two heads are decoded by
    one MLP together, where three are decoded apart and summed by a second."""
    rest = _without_position_zero(node.selector, inference)
    if rest is not None:
        width, offset = ir.SelectorWidth(rest, origin=node.origin), 1
    else:
        width, offset = ir.SelectorWidth(node.selector, origin=node.origin), 0
    if node.semantics == "tracr":
        def fn(w: int) -> float:
            return float(c) if w + offset <= 1 else c / (w + offset)
    else:
        def fn(w: int) -> Any:
            # (a width of 0 cannot occur, as position 0 is always selected; it maps to c
            # so that the function is total)
            return c if w + offset <= 1 else c / (w + offset)
    return _named_like(ir.Map(ir.ElementFn(fn, 1, f"{c!r} / width"), [width], origin=node.origin), node)


def _without_position_zero(sel: ir.Selector, inference: Inference) -> Optional[ir.Selector]:
    """`s and not z` for a selector `s or z` (either order, as written) whose z selects key 0
    alone, for every query at every length; else None."""
    if not isinstance(sel, ir.SelectOr):
        return None
    first, second = sel.children
    for s, z in ((first, second), (second, first)):
        if _selects_position_zero_alone(z, inference):
            return ir.SelectAnd(s, ir.SelectNot(z, origin=z.origin), origin=sel.origin)
    return None


def _selects_position_zero_alone(z: ir.Node, inference: Inference) -> bool:
    """Whether a selector that reads no token selects key 0 and only it, at every length
    up to max_seq_len (by running the interpreter on it)."""
    mats = tokenless_selector_matrices(z, inference.vocab, range(1, inference.N + 1))
    if mats is None:
        return False
    for matrix in mats:
        want = np.zeros(matrix.shape, dtype=bool)
        want[:, 0] = True
        if not np.array_equal(matrix, want):
            return False
    return True


def constant_mean_map(node: ir.Aggregate, c: Any) -> Optional[ir.Map]:
    """`aggregate(s, c, d)` of a constant c over an `or` of selects of different s-ops (the
    original RASP's `has_focus`): d where `s` selects nothing, else c, as
    `selector_width(s)` mapped. As a mean, `s` is one select over tuples of its inputs,
    which an MLP computes first (a layer); as a width, one head per disjoint part. Typed as
    the interpreter types it: one key keeps c, several average to float(c) (an integer c
    sums exactly), a string is copied. None for other constants (a float's sum rounds)."""
    d = node.default
    if type(c) is int and abs(c) >= 2 ** 53:       # (its float sums round)
        return None
    if node.semantics == "rasp" and type(c) is int:
        def fn(w: int) -> Any:
            return d if w == 0 else (c if w == 1 else float(c))
    elif node.semantics == "rasp" and type(c) is str:
        def fn(w: int) -> Any:
            return d if w == 0 else c
    elif node.semantics == "tracr" and type(c) in (int, bool):
        def fn(w: int) -> Any:
            return d if w == 0 else float(c)
    else:
        return None
    width = ir.SelectorWidth(node.selector, origin=node.origin)
    return _named_like(ir.Map(ir.ElementFn(fn, 1, f"{d!r} if width == 0 else {c!r}"), [width], origin=node.origin),
                       node)


def _named_like(new: ir.Map, node: ir.SOp) -> ir.Map:
    new.annotations = dict(node.annotations._values)
    new.named(node.name)
    return new


def exact_operand(sop: ir.SOp, inference: Inference, made: dict[int, ir.Map]) -> ir.Map:
    """`sop`'s value as the interpreter computes it, to the last bit, wrapped in a 1-tuple.

    A map whose values were merged as float64 rounding variants (`(indices + 1) * mean`:
    22 * (15/22) is 15.000000000000002) is copied, and so is every merged map under it,
    down to exact s-ops: each copy applies the map's own function to the exact values of
    its inputs and keeps the result as a 1-tuple. Tuples are compared exactly (value
    sets merge only plain numbers), and a 1-tuple orders, and equals, as its number does:
    every comparison of a select is kept. The copies form a chain like the original, so
    that the lowering can tabulate each step from the one before where the whole chain
    is too fine for one table. `made` (s-op id -> copy) shares the copies of shared maps."""
    if sop.id in made:
        return made[sop.id]
    if sop.id in inference.fuzzy and isinstance(sop, ir.Map):
        copy = _over_exact_inputs(sop, inference, made, wrap=True)
    else:
        copy = ir.Map(ir.ElementFn(_as_1_tuple, 1, f"({sop.name},)"), [sop], origin=sop.origin)
    made[sop.id] = copy.named(f"exact_{sop.name}")
    return made[sop.id]


def _over_exact_inputs(node: ir.Map, inference: Inference, made: dict[int, ir.Map], wrap: bool) -> ir.Map:
    """`node`'s function applied to exact copies of its fuzzy inputs (its exact inputs as
    they are), its result a 1-tuple (`wrap`) or as it is."""
    kids = inference.graph.children(node)
    inputs = [exact_operand(k, inference, made) if k.id in inference.fuzzy else k for k in kids]
    copied = tuple(k.id in inference.fuzzy for k in kids)
    return ir.Map(_exact_step(node.fn, copied, wrap), inputs, origin=node.origin)


def _as_1_tuple(v: Any) -> Any:
    return None if v is None else (v,)


def _exact_step(fn: ir.ElementFn, copied: tuple, wrap: bool) -> ir.ElementFn:
    """fn on inputs of which those `copied` are 1-tuples (or None), as a 1-tuple (`wrap`)
    or as it is."""
    def step(*args: Any) -> Any:
        vals = [a[0] if c and a is not None else a for a, c in zip(args, copied)]
        if not fn.takes_none and any(v is None for v in vals):
            return None
        out = fn.py(*vals)
        return _as_1_tuple(out) if wrap else out
    return ir.ElementFn(step, fn.arity, f"exact {fn.label}", takes_none=True)


def exact_read(node: ir.Map, inference: Inference) -> ir.Map:
    """`node` computed from exact copies of its inputs (see exact_operand): a map whose
    result jumps within the rounding variants merged into its inputs (`x == 3` over
    `x = (indices + 1) * 3 * ma - (indices + 1) * 3 * mb`), where one table over the
    exact s-ops below is too fine for float32 (max_seq_len 30). Each copy is a table of
    its own, a layer each at most, where the refusal was the alternative."""
    return _named_like(_over_exact_inputs(node, inference, {}, wrap=False), node)


def exact_select(node: ir.Select, inference: Inference) -> ir.Select:
    """`node` comparing its keys and queries as exact 1-tuples (see exact_operand), its
    predicate called on the numbers inside (a Tracr lambda may do arithmetic on them)."""
    made: dict[int, ir.Map] = {}
    sides = [exact_operand(sop, inference, made) for sop in inference.graph.children(node)]
    pred = node.ir_predicate

    def on_numbers(key: Any, query: Any) -> Any:
        # (every value is a 1-tuple or None here; arrays of them, which the predicate
        # table tries first, pass through: compared as tuples or refused and tried pair by pair)
        return pred.py(key[0] if type(key) is tuple else key, query[0] if type(query) is tuple else query)
    same = ir.Predicate(on_numbers, pred.label, pred.comparison, pred.none_policy)
    return ir.Select(sides[0], sides[1], same, origin=node.origin)


def replacements(inference: Inference) -> dict[int, ir.Node]:
    """Aggregate id -> the node computing the same values more cheaply; select id -> the
    select comparing the exact values the interpreter compares."""
    graph = inference.graph
    out: dict[int, ir.Node] = {agg_id: anchored_width_map(graph.node(agg_id), c, inference)
                               for agg_id, c in inference.anchored_widths.items()}
    out.update({sel_id: exact_select(graph.node(sel_id), inference) for sel_id in inference.variant_selects})
    for node in graph.nodes():
        if not isinstance(node, ir.Aggregate) or node.id in out:
            continue
        info = inference.info[graph.children(node)[1].id]
        if info.constant and len(info.values) == 1 and not conjunctive(node.selector, graph):
            new = constant_mean_map(node, info.values[0])
            if new is not None:
                out[node.id] = new
    return out
