"""The reference interpreter: exact RASP semantics, batched over inputs with numpy.

Inputs are grouped by length; each group is one set of arrays of shape (batch, n) per
s-op and (batch, n, n) per selector (entry [b, q, k]: query q selects key k), so a
program costs one numpy call per node, not one Python step per position.

Semantics (DESIGN §1):
* aggregate ("rasp"): no selected position -> default; one -> that value unchanged;
  several numbers -> their float mean; several non-numbers (strings, bools, None)
  -> they must all be equal (else a runtime error naming the expression).
* aggregate ("tracr"): Tracr's evaluators: numbers (bools as 0/1, floats too) are
  averaged (always a float), anything else must be selected at most once. (GitHub's
  Tracr averages only when the first selected value is an int or bool, tracr-pypi
  whenever all are numbers and returns a single one unchanged; this rule gives both
  their values wherever either gives one.)
* a None input to an elementwise function gives None; a None key or query never
  matches (Tracr's predicates raise instead).
"""

from __future__ import annotations

import contextlib
import gc
from typing import Any, Iterable, Optional, Sequence, Union

import numpy as np

from . import ir
from .errors import RaspError, RaspInputError, RaspRuntimeError, describe_exception
from .ops import NP_COMPARE, short_repr
from .values import (array_of, as_float, factorize, floats_hold, full_like_shape, select_values,
                     to_python, token_list)

# Largest number of selector cells (batch * n * n) materialised at once.
_MAX_CELLS = 1 << 24


def _error(node: ir.Node, message: str) -> RaspRuntimeError:
    span = node.origin.user_span() if node.origin is not None else None
    label = node.name
    text = node.source_text
    where = f"`{text}`" if text else f"`{label}`"
    if text and label and not label.startswith(node.kind + "_") and label != text:
        where = f"{label} = `{text}`"
    err = RaspRuntimeError(f"in {where}: {message}", span)
    err.node = node
    return err


class _Group:
    """Evaluation state for one batch of equal-length inputs."""

    def __init__(self, tokens: list[Sequence[Any]], n: int, inputs_index: list[int], all_str: bool = False) -> None:
        self.tokens = tokens
        self.all_str = all_str
        self.n = n
        self.batch = len(tokens)
        self.index = inputs_index
        self.values: dict[int, np.ndarray] = {}
        self._raw: Optional[np.ndarray] = None

    def raw_tokens(self) -> np.ndarray:
        """The input tokens as given, [batch, n], in the tightest exact dtype."""
        if self._raw is None:
            if self.n and (self.all_str or all(isinstance(t, str) for t in self.tokens)):
                # strings of one length: their UTF-32 bytes are the [batch, n] array of
                # characters (code points) already, ~10x faster than np.array(strings)
                data = "".join(self.tokens).encode("utf-32-le")
                self._raw = np.frombuffer(data, dtype="<U1").reshape(self.batch, self.n).copy()
            else:
                self._raw = array_of([t for seq in self.tokens for t in seq], (self.batch, self.n))
        return self._raw


@contextlib.contextmanager
def gc_paused():
    """Pause the cyclic garbage collector during allocation-heavy work (building result
    lists, compiling): every 700 new container objects trigger a collection, which made
    converting results 4-15x slower. Cycles made meanwhile go at the next collection."""
    enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if enabled:
            gc.enable()


_SHORT, _LONG_BATCH = 32, 1000     # when a select is computed position-major (see _select)


def _row_counts(sel: np.ndarray) -> np.ndarray:
    """Selected keys per query (int64). Summing a uint8 view with einsum is about 5x faster
    than count_nonzero along an axis; uint8 sums are exact while rows are shorter than 256."""
    if sel.dtype == bool and sel.shape[-1] < 256:
        return np.einsum("...k->...", sel.view(np.uint8)).astype(np.int64)
    return np.count_nonzero(sel, axis=-1).astype(np.int64)


def _describe_input(tokens: Sequence[Any]) -> str:
    if all(isinstance(t, str) and len(t) == 1 for t in tokens):
        return repr("".join(tokens))
    return repr(list(tokens))


class Interpreter:
    """Evaluates a fixed set of IR roots; reuse it to amortise the graph traversal."""

    def __init__(self, roots: Iterable[ir.Node]) -> None:
        self.roots = list(roots)
        self.order = ir.topological_order(self.roots)

    # ---- public entry points
    def run(self, inputs: Sequence[Sequence[Any]], nodes: Optional[Iterable[ir.Node]] = None) -> dict[int, list]:
        """{node id: [python value per input]} for `nodes` (default: the roots)."""
        wanted = list(nodes) if nodes is not None else self.roots
        results: dict[int, list] = {node.id: [None] * len(inputs) for node in wanted}
        for group in self._groups(inputs):
            self._eval_group(group)
            for node in wanted:
                arr = group.values[node.id]
                with gc_paused():
                    rows = arr.astype(np.int64).tolist() if isinstance(node, ir.Selector) else to_python(arr)
                if len(group.index) == len(inputs):      # one group of every input
                    in_order = len(rows) < 2 or bool(np.all(np.diff(group.index) > 0))
                    results[node.id] = rows if in_order else [rows[j] for j in np.argsort(group.index).tolist()]
                    continue
                for i, row in zip(group.index, rows):
                    results[node.id][i] = row
        return results

    def run_arrays(self, inputs: Sequence[Sequence[Any]]) -> list[tuple[list[int], dict[int, np.ndarray]]]:
        """Per length group: (input indices, {node id: array}) for every node."""
        out = []
        for group in self._groups(inputs):
            self._eval_group(group)
            out.append((group.index, group.values))
        return out

    # ---- grouping
    def _groups(self, inputs: Sequence[Sequence[Any]]) -> list[_Group]:
        all_str = set(map(type, inputs)) == {str}
        lengths = np.fromiter(map(len, inputs), dtype=np.int64, count=len(inputs))
        order = np.argsort(lengths, kind="stable")
        sizes, starts = np.unique(lengths[order], return_index=True)
        ends = [*starts[1:].tolist(), len(inputs)]
        groups = []
        for n, lo, hi in zip(sizes.tolist(), starts.tolist(), ends):
            idx = order[lo:hi].tolist()
            chunk = max(1, _MAX_CELLS // max(1, n * n))
            for start in range(0, len(idx), chunk):
                part = idx[start:start + chunk]
                if all_str and len(part) == len(inputs):
                    tokens = list(inputs)     # one group of every input: already in input order
                elif all_str:
                    tokens = [inputs[i] for i in part]
                else:
                    tokens = [inputs[i] if isinstance(inputs[i], str) else list(inputs[i]) for i in part]
                groups.append(_Group(tokens, n, part, all_str))
        return groups

    # ---- evaluation of one group
    def _eval_group(self, g: _Group) -> None:
        for node in self.order:
            if node.id in g.values:
                continue
            try:
                g.values[node.id] = self._eval_node(node, g)
            except RaspRuntimeError as err:
                if err.span is None:        # (a predefined s-op, tokens_int: point at its first use)
                    user = next((u for u in self.order if u.origin is not None
                                 and any(c is node for c in u.children)), None)
                    if user is not None:
                        err.span = user.origin.user_span()
                        err.args = (err.render(),)
                raise

    def _eval_node(self, node: ir.Node, g: _Group) -> np.ndarray:
        shape = (g.batch, g.n)
        if isinstance(node, ir.Tokens):
            return self._tokens(node, g)
        if isinstance(node, ir.Indices):
            return np.broadcast_to(np.arange(g.n, dtype=np.int64), shape)
        if isinstance(node, ir.Length):
            return np.full(shape, g.n, dtype=np.int64)
        if isinstance(node, ir.Constant):
            return full_like_shape(node.value, shape)
        if isinstance(node, ir.ConstantSequence):
            if node.check_length and len(node.values) != g.n:
                raise _error(node, f"constant of length {len(node.values)} does not match input length {g.n}")
            if len(node.values) < g.n:      # (check_length=False: a longer one is cut to the input)
                raise _error(node, f"constant of length {len(node.values)} is shorter than the input "
                                   f"(length {g.n}); sequences here are as long as the input")
            row = array_of(node.values[:g.n])
            return np.broadcast_to(row, shape)
        if isinstance(node, ir.Map):
            return self._map(node, [g.values[c.id] for c in node.inputs], g)
        if isinstance(node, ir.Select):
            return self._select(node, g.values[node.keys.id], g.values[node.queries.id], g)
        if isinstance(node, ir.SelectAnd):
            return g.values[node.children[0].id] & g.values[node.children[1].id]
        if isinstance(node, ir.SelectOr):
            return g.values[node.children[0].id] | g.values[node.children[1].id]
        if isinstance(node, ir.SelectNot):
            return ~g.values[node.children[0].id]
        if isinstance(node, ir.ConstantSelector):
            m = np.array(node.matrix, dtype=bool)
            if node.check_length and m.shape != (g.n, g.n):
                raise _error(node, f"constant selector of shape {m.shape} does not match input length {g.n}")
            if m.ndim != 2 or m.shape[0] < g.n or m.shape[1] < g.n:
                raise _error(node, f"constant selector of shape {m.shape} is smaller than the input "
                                   f"(length {g.n})")
            return np.broadcast_to(m[:g.n, :g.n], (g.batch, g.n, g.n))
        if isinstance(node, ir.SelectorWidth):
            return _row_counts(g.values[node.selector.id])
        if isinstance(node, ir.Aggregate):
            sel = g.values[node.selector.id]
            vals = g.values[node.sop.id]
            if node.semantics == "tracr":
                return self._aggregate_tracr(node, sel, vals, g)
            return self._aggregate_rasp(node, sel, vals, g)
        raise TypeError(f"cannot evaluate {node!r}")  # pragma: no cover

    def _tokens(self, node: ir.Tokens, g: _Group) -> np.ndarray:
        raw = g.raw_tokens()
        conv = node.conversion
        kind = raw.dtype.kind
        if conv == "asis" or (conv, kind) in (("str", "U"), ("int", "i"), ("float", "f"), ("bool", "b")):
            return raw
        flat = [t for seq in g.tokens for t in seq]
        if conv != "asis":
            fn = {"str": str, "int": int, "float": float, "bool": bool}[conv]
            converted = []
            for pos, t in enumerate(flat):
                try:
                    converted.append(fn(t))
                except (TypeError, ValueError):
                    b, i = divmod(pos, max(1, g.n))
                    raise _error(node, f"cannot convert token {t!r} (position {i} of input "
                                       f"{_describe_input(g.tokens[b])}) to {conv}") from None
            flat = converted
        return array_of(flat, (g.batch, g.n))

    # ---- elementwise maps
    def _map(self, node: ir.Map, args: list[np.ndarray], g: _Group) -> np.ndarray:
        fn = node.fn
        shape = (g.batch, g.n)
        if g.n == 0:
            return np.empty(shape, dtype=np.int64)
        if fn.vec is not None and all(a.dtype != object for a in args):
            try:
                with np.errstate(all="raise"):
                    out = fn.vec(*args)
                out = np.asarray(out)
                if out.shape != shape:
                    out = np.broadcast_to(out, shape)
                return out
            except (NotImplementedError, FloatingPointError, TypeError, ValueError, OverflowError):
                pass
        return self._map_by_unique(node, args, g)

    def _map_by_unique(self, node: ir.Map, args: list[np.ndarray], g: _Group) -> np.ndarray:
        shape = (g.batch, g.n)
        codes_list, uniques_list = [], []
        for a in args:
            codes, uniques = factorize(np.broadcast_to(a, shape))
            codes_list.append(codes.reshape(-1))
            uniques_list.append(uniques)
        if len(args) == 0:
            combined = np.zeros(g.batch * g.n, dtype=np.int64)
        elif len(args) == 1:
            combined = codes_list[0]
        else:
            dims = tuple(max(1, len(u)) for u in uniques_list)
            combined = np.ravel_multi_index(tuple(codes_list), dims)
        keys, first, inverse = np.unique(combined, return_index=True, return_inverse=True)
        results = []
        py = node.fn.py
        skip_none = not node.fn.takes_none
        for pos in first:
            call_args = [u[c[pos]] for u, c in zip(uniques_list, codes_list)]
            if skip_none and any(a is None for a in call_args):
                results.append(None)
                continue
            try:
                results.append(py(*call_args))
            except Exception as exc:  # user functions may raise anything
                b, i = divmod(int(pos), g.n)
                shown = ", ".join(short_repr(a, 40) for a in call_args)
                raise _error(node, f"cannot compute {node.fn.label} for ({shown}) at position {i} of input "
                                   f"{_describe_input(g.tokens[b])}: {describe_exception(exc)}") from None
        table = array_of(results)
        return table[inverse.reshape(-1)].reshape(shape)

    # ---- selectors
    def _select(self, node: ir.Select, keys: np.ndarray, queries: np.ndarray, g: _Group) -> np.ndarray:
        pred = node.ir_predicate
        shape = (g.batch, g.n, g.n)
        comp = pred.comparison
        if comp == "TRUE" and keys.dtype != object and queries.dtype != object:
            return np.ones(shape, dtype=bool)
        if comp == "FALSE" and keys.dtype != object and queries.dtype != object:
            return np.zeros(shape, dtype=bool)
        if comp in ("==", "!=", "<", "<=", ">", ">="):
            k, q = keys, queries
            numeric = k.dtype.kind in "biuf" and q.dtype.kind in "biuf"
            textual = k.dtype.kind == "U" and q.dtype.kind == "U"
            # (object arrays of numbers compare as floats where floats hold them exactly;
            # ints past 2**53 go to the predicate itself)
            if not (numeric or textual) and k.dtype == object and floats_hold(k) and \
                    (q.dtype.kind in "biuf" or q.dtype == object) and floats_hold(q):
                k, q, numeric = as_float(k), as_float(q), True
            elif not (numeric or textual) and q.dtype == object and floats_hold(q) and k.dtype.kind in "biuf" \
                    and floats_hold(k):
                q, numeric = as_float(q), True
            if textual and k.dtype.itemsize == 4 and q.dtype.itemsize == 4:
                # single characters: compare their code points as integers (same order)
                k, q = k.view(np.uint32), q.view(np.uint32)
            if numeric or textual:
                op = NP_COMPARE[comp]
                if g.n <= _SHORT and g.batch >= _LONG_BATCH:
                    # short inputs, many of them: compare position-major ([query, key,
                    # batch], the long axis innermost: ~8x faster) and return a
                    # [batch, query, key] view of it
                    kt = np.ascontiguousarray(np.broadcast_to(k, shape[:2]).T)
                    qt = np.ascontiguousarray(np.broadcast_to(q, shape[:2]).T)
                    return op(kt[None, :, :], qt[:, None, :]).transpose(2, 0, 1)
                return op(k[:, None, :], q[:, :, None])
        return self._select_by_unique(node, keys, queries, g)

    def _select_by_unique(self, node: ir.Select, keys: np.ndarray, queries: np.ndarray, g: _Group) -> np.ndarray:
        kcodes, kvals = factorize(keys)
        qcodes, qvals = factorize(queries)
        pred = node.ir_predicate
        fast = pred.table(kvals, qvals) if kvals and qvals else None
        if fast is not None:
            return fast[qcodes[:, :, None], kcodes[:, None, :]]
        table = np.zeros((max(1, len(qvals)), max(1, len(kvals))), dtype=bool)
        for qi, qv in enumerate(qvals):
            for ki, kv in enumerate(kvals):
                if (kv is None or qv is None) and pred.none_policy != "call":
                    if pred.none_policy == "raise":
                        which = "key" if kv is None else "query"
                        raise _error(node, f"{which} is None!")
                    continue
                try:
                    table[qi, ki] = bool(pred.py(kv, qv))
                except Exception as exc:
                    raise _error(node, f"cannot compare key {kv!r} with query {qv!r} using "
                                       f"{pred.label}: {exc}") from None
        return table[qcodes[:, :, None], kcodes[:, None, :]]

    # ---- aggregation
    @staticmethod
    def _first_selected(sel: np.ndarray, vals: np.ndarray) -> np.ndarray:
        first = np.argmax(sel, axis=-1)  # (B, n) index of the first selected key
        return np.take_along_axis(np.broadcast_to(vals, sel.shape[:2]), first, axis=1)

    def _aggregate_rasp(self, node: ir.Aggregate, sel: np.ndarray, vals: np.ndarray, g: _Group) -> np.ndarray:
        shape = (g.batch, g.n)
        if g.n == 0:
            return np.empty(shape, dtype=np.int64)
        vals = np.broadcast_to(vals, shape)
        count = _row_counts(sel)
        one = count == 1
        many = count > 1
        none = count == 0
        picked = self._first_selected(sel, vals)
        default = full_like_shape(node.default, shape)
        if not many.any():
            return select_values([one, none], [picked, default], shape)
        # per query: numbers are averaged when every selected value is one; other values
        # (strings, bools, None) must all be equal (decided row by row: one input's
        # strings must not change how another input's numbers are read)
        if vals.dtype.kind in "iuf":
            averaged, fv = many, as_float(vals)
        else:
            is_num = _number_mask(vals)
            averaged = many & ~(sel & ~is_num[:, None, :]).any(axis=-1)
            fv = as_float(np.where(is_num, vals, 0)) if averaged.any() else None
        if averaged.any():
            means = _selected_sums(sel, fv) / np.maximum(count, 1)
        else:
            means = picked
        copied = many & ~averaged
        if copied.any():     # non-numeric (or mixed) values: every selected value must equal the first one
            self._check_all_equal(node, sel, vals, picked, copied, g)
        return select_values([one | copied, averaged, none], [picked, means, default], shape)

    def _check_all_equal(self, node: ir.Aggregate, sel: np.ndarray, vals: np.ndarray, picked: np.ndarray,
                         many: np.ndarray, g: _Group) -> None:
        codes, uniques = factorize(vals)
        pcodes = np.take_along_axis(codes, np.argmax(sel, axis=-1), axis=1)
        differ = sel & (codes[:, None, :] != pcodes[:, :, None])
        bad = differ.any(axis=-1) & many
        if bad.any():
            b, q = map(int, np.argwhere(bad)[0])
            chosen = [uniques[c] for c in codes[b][sel[b, q]]]
            kind = "non-numeric values" if not any(_is_mean_number(v) for v in chosen) else \
                "values (numbers among non-numbers)"
            raise _error(node, f"cannot average the {kind} {chosen} selected at position {q} "
                               f"of input {_describe_input(g.tokens[b])} (numbers are averaged when every "
                               f"selected value is a number; other values must all be equal)")

    def _aggregate_tracr(self, node: ir.Aggregate, sel: np.ndarray, vals: np.ndarray, g: _Group) -> np.ndarray:
        shape = (g.batch, g.n)
        if g.n == 0:
            return np.empty(shape, dtype=np.int64)
        vals = np.broadcast_to(vals, shape)
        count = _row_counts(sel)
        none = count == 0
        picked = self._first_selected(sel, vals)
        default = full_like_shape(node.default, shape)
        if vals.dtype.kind in "biuf":  # numbers and bools: always a float mean
            means = _selected_sums(sel, vals.astype(np.float64)) / np.maximum(count, 1)
            return select_values([~none, none], [means, default], shape)
        if vals.dtype == object:
            out = np.empty(shape, dtype=object)
            for b in range(g.batch):
                for q in range(g.n):
                    chosen = vals[b][sel[b, q]].tolist()
                    out[b, q] = self._tracr_mean(node, chosen, node.default, g, b, q)
            return out
        many = count > 1
        if many.any():
            b, q = map(int, np.argwhere(many)[0])
            chosen = vals[b][sel[b, q]].tolist()
            raise _error(node, f"Unsupported type for aggregation: {chosen} (position {q} of input "
                               f"{_describe_input(g.tokens[b])})")
        return select_values([~none, none], [picked, default], shape)

    def _tracr_mean(self, node, xs, default, g, b, q):
        try:
            return tracr_mean(xs, default)
        except ValueError as exc:
            raise _error(node, f"{exc} (position {q} of input {_describe_input(g.tokens[b])})") from None


def tracr_mean(xs: Sequence[Any], default: Any) -> Any:
    """Tracr's aggregate of the selected values (see the module notes): the float mean of
    numbers (bools count as 0 and 1), a single other value itself, else a ValueError."""
    if not xs:
        return default
    if all(isinstance(x, (int, float)) for x in xs):     # (bools are ints)
        return sum(xs) / len(xs)
    if len(xs) == 1:
        return xs[0]
    raise ValueError(f"Unsupported type for aggregation: {xs}")


def _selected_sums(sel: np.ndarray, values: np.ndarray) -> np.ndarray:
    """Per query, the sum of the selected values (floats), added left to right as Python's
    sum() adds them: a matrix product's order depends on the input's length and the batch
    (a mean of 2.55s and 3.3s came out 3.0 or 2.9999999999999996 for the same prefix), and
    its 0 * inf is nan. Finite integers sum exactly in any order, so they take the product."""
    with np.errstate(all="ignore"):
        if np.isfinite(values).all() and np.array_equal(values, np.round(values)):
            return np.matmul(sel.astype(np.float64), values[:, :, None])[:, :, 0]
        return np.cumsum(np.where(sel, values[:, None, :], 0.0), axis=-1)[:, :, -1]


def _is_mean_number(v: Any) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, bool)


def _number_mask(vals: np.ndarray) -> np.ndarray:
    """Which values are numbers that a mean averages (ints and floats, not bools)."""
    if vals.dtype.kind in "iuf":
        return np.ones(vals.shape, dtype=bool)
    if vals.dtype != object:
        return np.zeros(vals.shape, dtype=bool)
    return np.frompyfunc(_is_mean_number, 1, 1)(vals).astype(bool)


# ---- convenience functions ---------------------------------------------------------------

Input = Union[str, Sequence[Any]]


def _as_tokens(tokens: Input) -> Union[str, list]:
    """Strings stay strings (their characters are the tokens: split once, vectorised)."""
    if isinstance(tokens, str):
        return tokens
    return token_list(tokens)


def _as_inputs(batch: Iterable[Input]) -> list:
    if isinstance(batch, list) and set(map(type, batch)) <= {str}:
        return batch        # a list of strings needs no conversion (the common, large case)
    return [_as_tokens(t) for t in batch]


def evaluate(node: ir.Node, tokens: Input) -> list:
    """Evaluate an s-op (-> list of values) or selector (-> 0/1 matrix) on one input."""
    _check_node(node)
    return Interpreter([node]).run([_as_tokens(tokens)])[node.id][0]


def evaluate_batch(node: ir.Node, batch: Iterable[Input]) -> list:
    """Evaluate on many inputs at once (fast: one numpy pass per length)."""
    _check_node(node)
    return Interpreter([node]).run(_as_inputs(batch))[node.id]


def evaluate_accepted(node: ir.Node, batch: Iterable[Input]) -> tuple[list, list]:
    """(the inputs the interpreter accepts, their outputs): one batch unless some input fails.

    For comparing other evaluators (a compiled model) with the reference on random inputs,
    some of which the program itself rejects (e.g. an average of different strings).
    """
    inputs = list(batch)
    try:
        return inputs, evaluate_batch(node, inputs)
    except RaspError:
        good, outputs = [], []
        for x in inputs:
            try:
                outputs.append(evaluate(node, x))
                good.append(x)
            except RaspError:
                continue
        return good, outputs


def evaluate_all(nodes: Sequence[ir.Node], batch: Iterable[Input]) -> dict[int, list]:
    """Evaluate several nodes on a batch, sharing work: {node id: [value per input]}."""
    for node in nodes:
        _check_node(node)
    return Interpreter(nodes).run(_as_inputs(batch), nodes)


def _check_node(node: Any) -> None:
    if not isinstance(node, ir.Node):
        raise RaspInputError(f"expected an s-op or selector to evaluate, got {type(node).__name__}")
