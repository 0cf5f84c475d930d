"""The RASP intermediate representation: a DAG of s-ops and selectors.

Every node has a unique `id` (creation order), its `children`, its `annotations`
(name, encoding hint, ...) and an `origin` (the source span that created it and the
call sites that led there). The structure of a node never changes after creation;
annotations are metadata that `.named()`/`numerical()` may replace (as in Tracr).

The text language (`rasp.build`), the Python API (`rasp.api`) and the Tracr-compatible
module (`rasp.tracr`) all produce these nodes, so the interpreter and the compiler
have one input format. Compare nodes with `is` or by `id`: s-ops overload `==` to
build new s-ops, as in Tracr.
"""

from __future__ import annotations

import itertools
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Callable, Iterable, Iterator, Optional, Sequence

import numpy as np

from .source import Span

_ids = itertools.count(1)

CATEGORICAL = "categorical"
NUMERICAL = "numerical"

# Comparison names shared by the text language, the Python API and rasp.tracr.
COMPARISONS = ("==", "!=", "<", "<=", ">", ">=", "TRUE", "FALSE")


@dataclass(frozen=True, slots=True)
class Origin:
    """Where a node was created: the expression's span and the call sites around it."""

    span: Optional[Span]
    callers: tuple[Span, ...] = ()

    def user_span(self) -> Optional[Span]:
        """The most specific span outside the built-in prelude (for error messages)."""
        for span in (self.span, *reversed(self.callers)):
            if span is not None and not span.filename.startswith("<prelude"):
                return span
        return self.span

    def describe(self) -> str:
        span = self.user_span()
        return span.location if span is not None else "<python>"


class ElementFn:
    """An elementwise function on values, with its scalar semantics and a readable label.

    `py` is the ground truth (a Python callable on scalars). `vec`, when given, is a
    numpy implementation with identical results that the interpreter uses for speed;
    it may raise `NotImplementedError` to fall back to `py` for unusual dtypes.
    `out_types` maps the static input types to the static output type set.
    `takes_none`: called even when an argument is None (the compiler's tuple joins);
    every user function gives None for a None argument without being called.
    """

    __slots__ = ("py", "arity", "label", "vec", "out_types", "op", "consts", "takes_none")

    def __init__(self, py: Callable[..., Any], arity: int, label: str,
                 vec: Optional[Callable[..., Any]] = None,
                 out_types: Optional[Callable[..., frozenset]] = None,
                 op: Optional[str] = None, consts: tuple = (), takes_none: bool = False) -> None:
        self.py = py
        self.arity = arity
        self.label = label
        self.vec = vec
        self.out_types = out_types
        self.op = op
        self.consts = consts
        self.takes_none = takes_none

    def __repr__(self) -> str:
        return f"ElementFn({self.label!r})"


class Predicate:
    """A selector predicate `pred(key, query) -> bool`.

    `comparison` is one of `COMPARISONS` for the standard predicates (so the
    interpreter can vectorise them and the compiler can recognise them), else None
    for arbitrary Python predicates (Tracr lambdas). `none_policy` says what a None
    key or query does: "false" never matches (the text language), "raise" is an
    error (Tracr's Comparison), "call" passes None to the function (Tracr lambdas).
    """

    __slots__ = ("py", "label", "comparison", "none_policy", "tabulate")

    def __init__(self, py: Callable[[Any, Any], Any], label: str,
                 comparison: Optional[str] = None, none_policy: str = "false",
                 tabulate: Optional[Callable[[Sequence[Any], Sequence[Any]], Optional["np.ndarray"]]] = None
                 ) -> None:
        self.py = py
        self.label = label
        self.comparison = comparison
        self.none_policy = none_policy
        # (the compiler's joint predicates: the whole [query, key] table at once, or None)
        self.tabulate = tabulate

    def __call__(self, key: Any, query: Any) -> bool:
        return bool(self.py(key, query))

    def table(self, keys: Sequence[Any], queries: Sequence[Any]) -> Optional["np.ndarray"]:
        """The bool matrix [query, key] over every pair, in one numpy call (a Python loop
        over 40 x 40 index pairs was a third of shift_by's compile); None where a pair
        raises or a None needs the none policy: the caller's loop then decides."""
        if self.tabulate is not None:
            fast = self.tabulate(keys, queries)
            if fast is not None:
                return fast
        if self.none_policy != "call" and (None in keys or None in queries):
            return None
        if self.comparison is not None:
            fast = _compare_table(self.comparison, keys, queries)
            if fast is not None:
                return fast
        k, q = np.empty(len(keys), dtype=object), np.empty(len(queries), dtype=object)
        for arr, vals in ((k, keys), (q, queries)):
            for i, v in enumerate(vals):    # (one by one: values may be tuples)
                arr[i] = v
        whole = self._called_on_arrays(k, q)
        if whole is not None:
            return whole
        try:
            out = np.frompyfunc(self.py, 2, 1)(k[None, :], q[:, None])
            return np.asarray(out, dtype=object).astype(bool)      # (truth values, as bool() gives)
        except Exception:
            return None

    def _called_on_arrays(self, k: "np.ndarray", q: "np.ndarray") -> Optional["np.ndarray"]:
        """The table from one call of the predicate on object arrays, whose operators apply
        Python's own to each pair (`k == q - 1` at max_seq_len 40: one call instead of
        1,600, 6 % of shift_by's compile). Only where the call gives a full [query, key]
        table that agrees with single calls at two spots of every row (O(n) calls, not
        O(n^2)); a predicate that branches, reduces or raises on arrays (`k == q or k == 0`,
        `len(q)`, `k % q` at 0) is left to the pair-by-pair loop. (The interpreter uses
        this table too. Python's operators on object arrays act pair by pair, so only a
        lambda that inspects its arguments' types can tell an array call apart; one that
        does so and still agrees at every checked spot would pass.)"""
        nq, nk = len(q), len(k)
        if nk < 2 or nq < 2:
            return None
        try:
            out = np.asarray(self.py(k[None, :], q[:, None]))
            if out.shape != (nq, nk):
                return None
            table = out.astype(bool)
            for i in range(nq):
                for j in {i % nk, (nk - 1 - i) % nk}:
                    if bool(self.py(k[j], q[i])) != table[i, j]:
                        return None
            return table
        except Exception:
            return None

    def matrix(self, keys: Sequence[Any], queries: Sequence[Any]) -> "np.ndarray":
        """The predicate over every (query, key) pair as the interpreter applies it: a None
        key or query never matches (unless the predicate takes None), an error is no match."""
        fast = self.table(keys, queries)
        if fast is not None:
            return fast
        out = np.zeros((len(queries), len(keys)), dtype=bool)
        for i, q in enumerate(queries):
            for j, k in enumerate(keys):
                if (k is None or q is None) and self.none_policy != "call":
                    continue
                try:
                    out[i, j] = bool(self.py(k, q))
                except Exception:
                    pass
        return out

    def __repr__(self) -> str:
        return f"Predicate({self.label!r})"


def _compare_table(comparison: str, keys: Sequence[Any], queries: Sequence[Any]) -> Optional[np.ndarray]:
    """A standard comparison's [query, key] table by numpy, where numpy compares as Python
    does: numbers that float64 holds exactly, or strings (None elsewhere)."""
    if comparison in ("TRUE", "FALSE"):
        return np.full((len(queries), len(keys)), comparison == "TRUE")
    from .ops import NP_COMPARE            # (ops builds on this module)
    from .values import array_of, floats_hold
    k, q = array_of(keys), array_of(queries)
    numeric = k.dtype.kind in "biuf" and q.dtype.kind in "biuf" and floats_hold(k) and floats_hold(q)
    if not (numeric or (k.dtype.kind == "U" and q.dtype.kind == "U")):
        return None
    return NP_COMPARE[comparison](k[None, :], q[:, None])


class Annotations(Mapping):
    """Read-only mapping of a node's annotations, filling defaults lazily (Tracr-style)."""

    def __init__(self, node: "Node", values: Optional[dict] = None) -> None:
        self._node = node
        self._values = dict(values or {})

    def __getitem__(self, key: str) -> Any:
        if key not in self._values:
            default = self._node._default_annotation(key)
            if default is _MISSING:
                raise KeyError(f"No annotation exists for key '{key}'. Available keys: {set(self._values)}")
            self._values[key] = default
        return self._values[key]

    def __iter__(self) -> Iterator[str]:
        return iter(self._values)

    def __len__(self) -> int:
        return len(self._values)

    def explicit(self, key: str) -> bool:
        """Whether `key` was set by the user (as opposed to a lazily filled default)."""
        return key in self._values and not (key == "name" and self._node._auto_name)


_MISSING = object()


class Node:
    """Base class of every IR node (s-ops and selectors)."""

    kind = "node"

    def __init__(self, children: Sequence["Node"] = (), origin: Optional[Origin] = None) -> None:
        self.id = next(_ids)
        self._children = tuple(children)
        self._annotations = Annotations(self)
        self._auto_name = True
        self.origin = origin
        self.name_locked = False

    # ---- structure
    @property
    def children(self) -> tuple["Node", ...]:
        return self._children

    @property
    def unique_id(self) -> int:
        return self.id

    # ---- annotations (Tracr-compatible surface)
    @property
    def annotations(self) -> Annotations:
        return self._annotations

    @annotations.setter
    def annotations(self, values: Mapping[str, Any]) -> None:
        values = dict(values)
        name_given = "name" in values and values["name"] != self._default_name()
        if "name" in values and self._auto_name and not name_given:
            values.pop("name")
        self._annotations = Annotations(self, values)
        if name_given:
            self._auto_name = False

    def _default_name(self) -> str:
        return f"{self.kind}_{self.id}"

    def _default_annotation(self, key: str) -> Any:
        if key == "name":
            return self._default_name()
        return _MISSING

    @property
    def name(self) -> str:
        return self._annotations["name"]

    @property
    def label(self) -> str:
        return self.name

    @property
    def has_user_name(self) -> bool:
        return not self._auto_name

    def named(self, name: str) -> "Node":
        """Give the node a name (returns the node itself, as Tracr's `.named`)."""
        self.annotations = {**self._annotations._values, "name": name}
        self._auto_name = False
        return self

    def annotated(self, **annotations: Any) -> "Node":
        self.annotations = {**self._annotations._values, **annotations}
        return self

    def set_name_from_assignment(self, name: str) -> None:
        """Name a node after the variable it is assigned to (the last assignment wins)."""
        if not self.name_locked:
            self.named(name)

    # ---- display
    @property
    def source_text(self) -> Optional[str]:
        if self.origin is not None and self.origin.span is not None:
            return self.origin.span.text
        return None

    def describe(self) -> str:
        """`name` plus the expression text and location, for error messages."""
        text = self.source_text
        where = self.origin.describe() if self.origin is not None else None
        desc = self.name
        if text and text != self.name:
            desc += f" = {text}"
        if where:
            desc += f" ({where})"
        return desc

    def __repr__(self) -> str:
        return f"<{type(self).__name__} {self.name}>"

    __hash__ = object.__hash__


# ---- s-ops ------------------------------------------------------------------------------

class SOp(Node):
    """A sequence operation: maps an input sequence to a sequence of the same length."""

    kind = "sop"

    def _default_annotation(self, key: str) -> Any:
        if key == "encoding":
            return CATEGORICAL
        return super()._default_annotation(key)

    # Operators build elementwise maps with the text language's semantics.
    def _binary(self, op: str, other: Any, reverse: bool = False) -> "SOp":
        from .ops import binary_map
        return binary_map(op, other, self) if reverse else binary_map(op, self, other)

    def __add__(self, other): return self._binary("+", other)
    def __radd__(self, other): return self._binary("+", other, True)
    def __sub__(self, other): return self._binary("-", other)
    def __rsub__(self, other): return self._binary("-", other, True)
    def __mul__(self, other): return self._binary("*", other)
    def __rmul__(self, other): return self._binary("*", other, True)
    def __truediv__(self, other): return self._binary("/", other)
    def __rtruediv__(self, other): return self._binary("/", other, True)
    def __mod__(self, other): return self._binary("%", other)
    def __rmod__(self, other): return self._binary("%", other, True)
    def __pow__(self, other): return self._binary("^", other)
    def __rpow__(self, other): return self._binary("^", other, True)
    def __lt__(self, other): return self._binary("<", other)
    def __le__(self, other): return self._binary("<=", other)
    def __gt__(self, other): return self._binary(">", other)
    def __ge__(self, other): return self._binary(">=", other)
    def __eq__(self, other): return self._binary("==", other)  # type: ignore[override]
    def __ne__(self, other): return self._binary("!=", other)  # type: ignore[override]
    def __and__(self, other): return self._binary("and", other)
    def __rand__(self, other): return self._binary("and", other, True)
    def __or__(self, other): return self._binary("or", other)
    def __ror__(self, other): return self._binary("or", other, True)

    def __neg__(self):
        from .ops import unary_map
        return unary_map("-", self)

    def __invert__(self):
        from .ops import unary_map
        return unary_map("not", self)

    __hash__ = Node.__hash__


class Tokens(SOp):
    """The input tokens, converted by `conversion` ("str", "int", "float", "bool" or "asis")."""

    kind = "tokens"

    def __init__(self, conversion: str = "asis", origin: Optional[Origin] = None) -> None:
        super().__init__((), origin)
        self.conversion = conversion

    def _default_name(self) -> str:
        return "tokens" if self.conversion in ("asis", "str") else f"tokens_{self.conversion}"


class Indices(SOp):
    """0, 1, ..., n-1."""

    kind = "indices"

    def _default_name(self) -> str:
        return "indices"


class Length(SOp):
    """n at every position."""

    kind = "length"

    def _default_name(self) -> str:
        return "length"


class Constant(SOp):
    """The same atom at every position (Tracr's `Full`)."""

    kind = "constant"

    def __init__(self, value: Any, origin: Optional[Origin] = None) -> None:
        super().__init__((), origin)
        self.value = value

    def _default_name(self) -> str:
        return f"constant_{self.id}"


class ConstantSequence(SOp):
    """A fixed list of values (Tracr's `ConstantSOp`, for tests); not compilable."""

    kind = "constant_sequence"

    def __init__(self, values: Sequence[Any], check_length: bool = True,
                 origin: Optional[Origin] = None) -> None:
        super().__init__((), origin)
        self.values = list(values)
        self.check_length = check_length


class Map(SOp):
    """Elementwise function of one or more s-ops (Tracr's Map and SequenceMap)."""

    kind = "map"

    def __init__(self, fn: ElementFn, inputs: Sequence[SOp], origin: Optional[Origin] = None) -> None:
        inputs = tuple(inputs)
        if len(inputs) != fn.arity:
            raise ValueError(f"{fn!r} takes {fn.arity} inputs, got {len(inputs)}")
        super().__init__(inputs, origin)
        self.fn = fn

    @property
    def inputs(self) -> tuple[SOp, ...]:
        return self._children  # type: ignore[return-value]


class Aggregate(SOp):
    """Mean of `sop` over the selected positions, `default` where none is selected.

    `semantics` is "rasp" (one selected value is kept unchanged; several numbers are
    averaged; several non-numbers must be equal) or "tracr" (Tracr's evaluator rules).
    """

    kind = "aggregate"

    def __init__(self, selector: "Selector", sop: SOp, default: Any = 0, semantics: str = "rasp",
                 origin: Optional[Origin] = None) -> None:
        super().__init__((selector, sop), origin)
        self.default = default
        self.semantics = semantics

    @property
    def selector(self) -> "Selector":
        return self._children[0]  # type: ignore[return-value]

    @property
    def sop(self) -> SOp:
        return self._children[1]  # type: ignore[return-value]


class SelectorWidth(SOp):
    """Number of selected positions for each query."""

    kind = "selector_width"

    def __init__(self, selector: "Selector", origin: Optional[Origin] = None) -> None:
        super().__init__((selector,), origin)

    @property
    def selector(self) -> "Selector":
        return self._children[0]  # type: ignore[return-value]


# ---- selectors --------------------------------------------------------------------------

class Selector(Node):
    """A boolean matrix per input: entry [q][k] says whether query q attends to key k."""

    kind = "selector"

    def __and__(self, other: "Selector") -> "Selector":
        if not isinstance(other, Selector):
            return NotImplemented       # (an s-op's own operator then says what is wrong)
        return SelectAnd(self, other)

    def __or__(self, other: "Selector") -> "Selector":
        if not isinstance(other, Selector):
            return NotImplemented
        return SelectOr(self, other)

    def __invert__(self) -> "Selector":
        return SelectNot(self)


class Select(Selector):
    """Query i selects key j iff `predicate(keys[j], queries[i])`."""

    kind = "select"

    def __init__(self, keys: SOp, queries: SOp, predicate: Predicate, origin: Optional[Origin] = None) -> None:
        super().__init__((keys, queries), origin)
        self.ir_predicate = predicate

    @property
    def predicate(self) -> Any:
        return self.ir_predicate

    @property
    def keys(self) -> SOp:
        return self._children[0]  # type: ignore[return-value]

    @property
    def queries(self) -> SOp:
        return self._children[1]  # type: ignore[return-value]


class SelectAnd(Selector):
    kind = "select_and"

    def __init__(self, first: Selector, second: Selector, origin: Optional[Origin] = None) -> None:
        super().__init__((first, second), origin)


class SelectOr(Selector):
    kind = "select_or"

    def __init__(self, first: Selector, second: Selector, origin: Optional[Origin] = None) -> None:
        super().__init__((first, second), origin)


class SelectNot(Selector):
    kind = "select_not"

    def __init__(self, inner: Selector, origin: Optional[Origin] = None) -> None:
        super().__init__((inner,), origin)


class ConstantSelector(Selector):
    """A fixed boolean matrix (Tracr's `ConstantSelector`, for tests); not compilable."""

    kind = "constant_selector"

    def __init__(self, matrix: Sequence[Sequence[Any]], check_length: bool = True,
                 origin: Optional[Origin] = None) -> None:
        super().__init__((), origin)
        self.matrix = [list(row) for row in matrix]
        self.check_length = check_length


# ---- traversal --------------------------------------------------------------------------

def topological_order(roots: Iterable[Node]) -> list[Node]:
    """All nodes reachable from `roots`, every node after its children (iterative DFS)."""
    order: list[Node] = []
    state: dict[int, int] = {}  # 1 = on stack, 2 = done
    for root in roots:
        if state.get(root.id) == 2:
            continue
        stack: list[tuple[Node, int]] = [(root, 0)]
        state[root.id] = 1
        while stack:
            node, i = stack[-1]
            children = node.children
            if i < len(children):
                stack[-1] = (node, i + 1)
                child = children[i]
                if state.get(child.id) is None:
                    state[child.id] = 1
                    stack.append((child, 0))
            else:
                stack.pop()
                state[node.id] = 2
                order.append(node)
    return order


def encoding_of(sop: SOp) -> str:
    """The encoding annotation: "categorical" (default) or "numerical"."""
    return sop.annotations["encoding"]


def is_explicit_encoding(sop: SOp) -> bool:
    return "encoding" in sop.annotations._values
