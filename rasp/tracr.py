"""A drop-in replacement for DeepMind Tracr's `tracr.rasp.rasp` module.

Programs written against Tracr's RASP (e.g. every constructor in Tracr's
`compiler/lib.py`) run unchanged when this module is imported in its place:

    import sys, rasp.tracr
    sys.modules["tracr.rasp.rasp"] = rasp.tracr

Same public names, constructor signatures, annotations (`numerical`, `categorical`,
`.named`, `.annotations`, default names and encodings) and evaluation semantics as
Tracr (Python lambdas, `None` propagation through maps, Tracr's aggregate rules,
`Comparison` raising on None). Every object is also an ordinary node of our IR
(`rasp.ir`), so the interpreter and the compiler accept it directly. The lambdas are
the user's own Python; no RASP source text is ever evaluated as Python.
"""

from __future__ import annotations

import abc
import enum
import logging
from typing import (Any, Callable, Dict, Generic, List, Optional, Sequence, Tuple, TypeVar,
                    Union)

import numpy as np

from . import ir
from .interpreter import Interpreter, tracr_mean
from .values import token_list

_log = logging.getLogger(__name__)

SelectorValue = List[List[bool]]
NumericValue = Union[int, float]
Value = Union[None, int, float, str, bool]
VT = TypeVar("VT", bound=Value)
RASPExprT = TypeVar("RASPExprT", bound="RASPExpr")
SOpT = TypeVar("SOpT", bound="SOp")
T = TypeVar("T")

_NAME_KEY = "name"
_ENCODING_KEY = "encoding"

# Default annotation providers, looked up lazily (add your own, as in Tracr).
DEFAULT_ANNOTATORS: Dict[str, Callable[["RASPExpr"], Any]] = {}

RASPExpr = ir.Node
Annotator = Callable[["RASPExpr"], Any]


class _TracrNode:
    """Mixin giving IR nodes Tracr's naming, default annotators and call syntax."""

    def _default_annotation(self, key: str) -> Any:  # type: ignore[override]
        if key in DEFAULT_ANNOTATORS:
            return DEFAULT_ANNOTATORS[key](self)
        return super()._default_annotation(key)  # type: ignore[misc]

    def _default_name(self) -> str:  # type: ignore[override]
        return default_name(self)

    @property
    def label(self) -> str:
        return f"{self.name}_{self.unique_id}"

    def __call__(self, xs: Sequence[Value]):
        return evaluate(self, xs)


def annotate(expr: RASPExprT, **annotations: Any) -> RASPExprT:
    """Adds annotations to an expression (new ones overwrite existing keys)."""
    expr.annotations = {**expr.annotations, **annotations}
    return expr


# ---- s-ops ------------------------------------------------------------------------------

class SOp(_TracrNode, ir.SOp):
    """A Sequence Operation; Python operators build Maps and SequenceMaps (Tracr semantics)."""

    def __lt__(self, other: Value) -> "SOp":
        return Map(lambda x: x < other, self)

    def __le__(self, other: Value) -> "SOp":
        return Map(lambda x: x <= other, self)

    def __eq__(self, other: Value) -> "SOp":  # type: ignore[override]
        return Map(lambda x: x == other, self)

    def __ne__(self, other: Value) -> "SOp":  # type: ignore[override]
        return Map(lambda x: x != other, self)

    def __gt__(self, other: Value) -> "SOp":
        return Map(lambda x: x > other, self)

    def __ge__(self, other: Value) -> "SOp":
        return Map(lambda x: x >= other, self)

    def __add__(self, other):
        if isinstance(other, ir.SOp):
            return SequenceMap(lambda x, y: x + y, self, other)
        return Map(lambda x: x + other, self)

    def __radd__(self, other):
        if isinstance(other, ir.SOp):
            return SequenceMap(lambda x, y: x + y, other, self)
        return Map(lambda x: other + x, self)

    def __sub__(self, other):
        if isinstance(other, ir.SOp):
            return SequenceMap(lambda x, y: x - y, self, other)
        return Map(lambda x: x - other, self)

    def __rsub__(self, other):
        if isinstance(other, ir.SOp):
            return SequenceMap(lambda x, y: x - y, other, self)
        return Map(lambda x: other - x, self)

    def __mul__(self, other):
        if isinstance(other, ir.SOp):
            return SequenceMap(lambda x, y: x * y, self, other)
        return Map(lambda x: x * other, self)

    def __rmul__(self, other):
        if isinstance(other, ir.SOp):
            return SequenceMap(lambda x, y: x * y, other, self)
        return Map(lambda x: other * x, self)

    def __truediv__(self, other):
        if isinstance(other, ir.SOp):
            return SequenceMap(lambda x, y: x / y, self, other)
        return Map(lambda x: x / other, self)

    def __rtruediv__(self, other):
        if isinstance(other, ir.SOp):
            return SequenceMap(lambda x, y: x / y, other, self)
        return Map(lambda x: other / x, self)

    def __invert__(self):
        return Map(lambda x: not x, self)

    def __and__(self, other):
        if isinstance(other, ir.SOp):
            return SequenceMap(lambda x, y: x and y, self, other)
        return Map(lambda x: x and other, self)

    def __or__(self, other):
        if isinstance(other, ir.SOp):
            return SequenceMap(lambda x, y: x or y, self, other)
        return Map(lambda x: x or other, self)

    def __rand__(self, other):
        if isinstance(other, ir.SOp):
            return SequenceMap(lambda x, y: x and y, other, self)
        return Map(lambda x: other and x, self)

    def __ror__(self, other):
        if isinstance(other, ir.SOp):
            return SequenceMap(lambda x, y: x or y, other, self)
        return Map(lambda x: x or other, self)

    __hash__ = ir.Node.__hash__


class TokensType(SOp, ir.Tokens):
    """Primitive SOp returning the original input tokens."""

    def __init__(self) -> None:
        ir.Tokens.__init__(self, "asis")

    @property
    def label(self) -> str:
        return "tokens"

    def __repr__(self) -> str:
        return "tokens"


class IndicesType(SOp, ir.Indices):
    """Primitive SOp returning the position index at each token."""

    def __init__(self) -> None:
        ir.Indices.__init__(self)

    @property
    def label(self) -> str:
        return "indices"

    def __repr__(self) -> str:
        return "indices"


class LengthType(SOp, ir.Length):
    """Primitive SOp returning the total length of the input."""

    def __init__(self) -> None:
        ir.Length.__init__(self)

    @property
    def label(self) -> str:
        return "length"

    def __repr__(self) -> str:
        return "length"


tokens = TokensType()
indices = IndicesType()
length = LengthType()


def _fn_label(f: Callable[..., Any]) -> str:
    name = getattr(f, "__name__", "f")
    return "lambda" if name == "<lambda>" else name


class Map(SOp, ir.Map):
    """SOp that evaluates the function elementwise on the input SOp.

    Map(lambda x: x + 1, tokens).eval([1, 2, 3]) == [2, 3, 4]
    """

    def __init__(self, f: Callable[[Value], Value], inner: ir.SOp, simplify: bool = True) -> None:
        assert isinstance(inner, ir.SOp)
        assert callable(f) and not isinstance(f, ir.Node)
        if simplify and isinstance(inner, Map):
            inner_f = inner.f
            outer_f = f
            f = lambda t: outer_f(inner_f(t))  # noqa: E731
            inner = inner.inner
        ir.Map.__init__(self, ir.ElementFn(f, 1, _fn_label(f)), (inner,))
        self.f = f

    @property
    def inner(self) -> ir.SOp:
        return self.children[0]  # type: ignore[return-value]

    @property
    def children(self):
        return self._children


class SequenceMap(SOp, ir.Map):
    """SOp that evaluates the function elementwise on the two given SOp's.

    SequenceMap(lambda x, y: x - y, length, tokens).eval([1, 2, 3]) == [2, 1, 0]
    """

    def __init__(self, f: Callable[[Value, Value], Value], fst: ir.SOp, snd: ir.SOp) -> None:
        if fst is snd:
            _log.warning("Creating a SequenceMap with both inputs being the same SOp is discouraged. "
                         "You should use a Map instead.")
        assert isinstance(fst, ir.SOp)
        assert isinstance(snd, ir.SOp)
        assert callable(f) and not isinstance(f, ir.Node)
        ir.Map.__init__(self, ir.ElementFn(f, 2, _fn_label(f)), (fst, snd))
        self.f = f

    @property
    def fst(self) -> ir.SOp:
        return self._children[0]  # type: ignore[return-value]

    @property
    def snd(self) -> ir.SOp:
        return self._children[1]  # type: ignore[return-value]


class LinearSequenceMap(SequenceMap):
    """SOp that evaluates a linear function elementwise on the two given SOp's."""

    def __init__(self, fst: ir.SOp, snd: ir.SOp, fst_fac: float, snd_fac: float) -> None:
        super().__init__(lambda x, y: fst_fac * x + snd_fac * y, fst, snd)
        self.fn.vec = _linear_vec(fst_fac, snd_fac)
        self.fn.label = f"{fst_fac}*x + {snd_fac}*y"
        self.fn.op = "linear"
        self.fn.consts = (fst_fac, snd_fac)
        self.fst_fac = fst_fac
        self.snd_fac = snd_fac


def _linear_vec(fst_fac: Any, snd_fac: Any) -> Callable[[Any, Any], Any]:
    """fst_fac * x + snd_fac * y on numpy arrays, where that equals Python's arithmetic:
    numbers only, and integer results that stay well inside int64 (else the interpreter
    falls back to the Python function, as for every other numpy implementation)."""
    def vec(x, y):
        facs = (fst_fac, snd_fac)
        if not all(isinstance(f, (int, float)) for f in facs) or x.dtype.kind not in "biuf" \
                or y.dtype.kind not in "biuf":
            raise NotImplementedError
        if all(isinstance(f, int) for f in facs) and x.dtype.kind in "biu" and y.dtype.kind in "biu":
            bound = sum(abs(f) * float(np.max(np.abs(a), initial=0)) for f, a in zip(facs, (x, y)))
            if bound >= 2.0 ** 62:
                raise NotImplementedError
        return fst_fac * x + snd_fac * y
    return vec


class Full(SOp, ir.Constant):
    """A SOp evaluating to [fill]*len(input_values)."""

    def __init__(self, fill: Value) -> None:
        ir.Constant.__init__(self, fill)

    @property
    def fill(self) -> Value:
        return self.value


def sop_not(sop: ir.SOp) -> SOp:
    return Map(lambda t: not t, sop)


class ConstantSOp(SOp, ir.ConstantSequence, Generic[VT]):
    """A constant S-Op for testing purposes."""

    def __init__(self, value: Sequence[VT], check_length: bool = True) -> None:
        ir.ConstantSequence.__init__(self, value, check_length)

    @property
    def value(self) -> Sequence[VT]:
        return self.values


# ---- selectors --------------------------------------------------------------------------

class Comparison(enum.Enum):
    """A two-place boolean comparison predicate for use in Select."""

    EQ = "=="
    LT = "<"
    LEQ = "<="
    GT = ">"
    GEQ = ">="
    NEQ = "!="
    TRUE = "True"
    FALSE = "False"

    def __call__(self, key: Value, query: Value) -> bool:
        if key is None:
            raise ValueError("key is None!")
        if query is None:
            raise ValueError("query is None!")
        return _comparison_table[self](key, query)


_comparison_table = {
    Comparison.EQ: lambda key, query: key == query,
    Comparison.LT: lambda key, query: key < query,
    Comparison.LEQ: lambda key, query: key <= query,
    Comparison.GT: lambda key, query: key > query,
    Comparison.GEQ: lambda key, query: key >= query,
    Comparison.NEQ: lambda key, query: key != query,
    Comparison.TRUE: lambda key, query: True,
    Comparison.FALSE: lambda key, query: False,
}

_COMPARISON_NAMES = {Comparison.EQ: "==", Comparison.LT: "<", Comparison.LEQ: "<=", Comparison.GT: ">",
                     Comparison.GEQ: ">=", Comparison.NEQ: "!=", Comparison.TRUE: "TRUE",
                     Comparison.FALSE: "FALSE"}

Predicate = Callable[[Value, Value], bool]


def _ir_predicate(predicate: Any) -> ir.Predicate:
    if isinstance(predicate, Comparison):
        return ir.Predicate(_comparison_table[predicate], _COMPARISON_NAMES[predicate],
                            comparison=_COMPARISON_NAMES[predicate], none_policy="raise")
    return ir.Predicate(predicate, _fn_label(predicate), comparison=None, none_policy="call")


class Selector(_TracrNode, ir.Selector):
    """RASP Selector. Represents something like an attention head's weights."""

    def __and__(self, other: ir.Selector) -> ir.Selector:
        return selector_and(self, other)

    def __rand__(self, other: ir.Selector) -> ir.Selector:
        return selector_and(other, self)

    def __or__(self, other: ir.Selector) -> ir.Selector:
        return selector_or(self, other)

    def __ror__(self, other: ir.Selector) -> ir.Selector:
        return selector_or(other, self)

    def __invert__(self) -> ir.Selector:
        return selector_not(self)


class Select(Selector, ir.Select):
    """Primitive that creates a Selector."""

    def __init__(self, keys: ir.SOp, queries: ir.SOp, predicate: Predicate) -> None:
        assert isinstance(keys, ir.SOp)
        assert isinstance(queries, ir.SOp)
        ir.Select.__init__(self, keys, queries, _ir_predicate(predicate))
        self._tracr_predicate = predicate

    @property
    def predicate(self) -> Any:
        return self._tracr_predicate


class ConstantSelector(Selector, ir.ConstantSelector):
    """A constant selector for testing purposes."""

    def __init__(self, value: SelectorValue, check_length: bool = True) -> None:
        ir.ConstantSelector.__init__(self, value, check_length)

    @property
    def value(self) -> SelectorValue:
        return self.matrix


class SelectorWidth(SOp, ir.SelectorWidth):
    """SelectorWidth primitive."""

    def __init__(self, selector: ir.Selector) -> None:
        assert isinstance(selector, ir.Selector)
        ir.SelectorWidth.__init__(self, selector)


class SelectorAnd(Selector, ir.SelectAnd):
    """Implements elementwise `and` between selectors."""

    def __init__(self, fst: ir.Selector, snd: ir.Selector) -> None:
        assert isinstance(fst, ir.Selector)
        assert isinstance(snd, ir.Selector)
        ir.SelectAnd.__init__(self, fst, snd)

    @property
    def fst(self) -> ir.Selector:
        return self._children[0]  # type: ignore[return-value]

    @property
    def snd(self) -> ir.Selector:
        return self._children[1]  # type: ignore[return-value]


class SelectorOr(Selector, ir.SelectOr):
    """Implements elementwise `or` between selectors."""

    def __init__(self, fst: ir.Selector, snd: ir.Selector) -> None:
        assert isinstance(fst, ir.Selector)
        assert isinstance(snd, ir.Selector)
        ir.SelectOr.__init__(self, fst, snd)

    @property
    def fst(self) -> ir.Selector:
        return self._children[0]  # type: ignore[return-value]

    @property
    def snd(self) -> ir.Selector:
        return self._children[1]  # type: ignore[return-value]


class SelectorNot(Selector, ir.SelectNot):
    """Implements elementwise `not` on a selector."""

    def __init__(self, inner: ir.Selector) -> None:
        assert isinstance(inner, ir.Selector)
        ir.SelectNot.__init__(self, inner)

    @property
    def inner(self) -> ir.Selector:
        return self._children[0]  # type: ignore[return-value]


def selector_not(inner: ir.Selector, simplify: bool = True) -> ir.Selector:
    """Returns a SelectorNot, or a Select if simplifying is possible."""
    if simplify and isinstance(inner, Select):
        predicate = lambda k, q: not inner.predicate(k, q)  # noqa: E731
        return Select(inner.keys, inner.queries, predicate=predicate)
    return SelectorNot(inner)


def selector_and(fst: ir.Selector, snd: ir.Selector, simplify: bool = True) -> ir.Selector:
    """Returns a SelectorAnd, or a Select if simplifying is possible."""
    if simplify and isinstance(fst, Select) and isinstance(snd, Select):
        simplified = _attempt_simplify(fst, snd, lambda l, r: l and r)
        if simplified is not None:
            return simplified
    return SelectorAnd(fst, snd)


def selector_or(fst: ir.Selector, snd: ir.Selector, simplify: bool = True) -> ir.Selector:
    """Returns a SelectorOr, or a Select if simplifying is possible."""
    if simplify and isinstance(fst, Select) and isinstance(snd, Select):
        simplified = _attempt_simplify(fst, snd, lambda l, r: l or r)
        if simplified is not None:
            return simplified
    return SelectorOr(fst, snd)


def _attempt_simplify(fst: Select, snd: Select, combine: Callable[[bool, bool], bool]) -> Optional[Select]:
    """Merges two Selects over the same keys and queries into one (as Tracr does)."""
    fst_predicate = fst.predicate
    snd_predicate = snd.predicate
    common_keys = None
    common_queries = None
    if isinstance(fst.keys, Full):
        common_keys = snd.keys
        fst_predicate = lambda key, query, p=fst_predicate: p(fst.keys.fill, query)  # noqa: E731
    if isinstance(snd.keys, Full):
        common_keys = fst.keys
        snd_predicate = lambda key, query, p=snd_predicate: p(snd.keys.fill, query)  # noqa: E731
    if isinstance(fst.queries, Full):
        common_queries = snd.queries
        fst_predicate = lambda key, query, p=fst_predicate: p(key, fst.queries.fill)  # noqa: E731
    if isinstance(snd.queries, Full):
        common_queries = fst.queries
        snd_predicate = lambda key, query, p=snd_predicate: p(key, snd.queries.fill)  # noqa: E731
    if fst.keys is snd.keys:
        common_keys = fst.keys
    if fst.queries is snd.queries:
        common_queries = fst.queries
    if common_keys is None or common_queries is None:
        return None

    def predicate(key, query):
        return combine(fst_predicate(key, query), snd_predicate(key, query))

    return Select(common_keys, common_queries, predicate=predicate)


class Aggregate(SOp, ir.Aggregate, Generic[VT]):
    """Aggregate primitive (mean of the selected values; `default` where none is selected)."""

    def __init__(self, selector: ir.Selector, sop: ir.SOp, default: Optional[VT] = None) -> None:
        assert isinstance(selector, ir.Selector)
        assert isinstance(sop, ir.SOp)
        assert default is None or isinstance(default, (str, float, bool, int))
        ir.Aggregate.__init__(self, selector, sop, default, semantics="tracr")


# ---- encodings --------------------------------------------------------------------------

class Encoding(str, enum.Enum):
    """The encoding used by a SOp. Only number-valued SOps support numerical."""

    CATEGORICAL = "categorical"
    NUMERICAL = "numerical"


def numerical(sop: SOpT) -> SOpT:
    return annotate(sop, encoding=Encoding.NUMERICAL)


def categorical(sop: SOpT) -> SOpT:
    return annotate(sop, encoding=Encoding.CATEGORICAL)


def get_encoding(sop: ir.SOp) -> Encoding:
    return Encoding(sop.annotations["encoding"])


def is_numerical(sop: ir.SOp) -> bool:
    """Check if the SOp is numerically encoded."""
    return get_encoding(sop) == Encoding.NUMERICAL


def is_categorical(sop: ir.SOp) -> bool:
    """Check if the SOp is categorically encoded."""
    return get_encoding(sop) == Encoding.CATEGORICAL


def default_encoding(expr: RASPExpr) -> Optional[Encoding]:
    """Adds an 'encoding' annotation, default is Categorical."""
    if not isinstance(expr, ir.SOp):
        raise TypeError(f"expr {expr} is not a SOp.")
    return Encoding.CATEGORICAL


DEFAULT_ANNOTATORS[_ENCODING_KEY] = default_encoding

# ---- naming -----------------------------------------------------------------------------

_default_name_by_class = {
    TokensType: "tokens",
    IndicesType: "indices",
    LengthType: "length",
    LinearSequenceMap: "linear_sequence_map",
    SequenceMap: "sequence_map",
    Map: "map",
    Full: "full",
    ConstantSOp: "constant_sop",
    SelectorWidth: "selector_width",
    Aggregate: "aggregate",
    SOp: "sop",
    Select: "select",
    SelectorAnd: "selector_and",
    SelectorOr: "selector_or",
    SelectorNot: "selector_not",
    ConstantSelector: "constant_selector",
    Selector: "selector",
}


def default_name(expr: RASPExpr) -> str:
    for cls, name in _default_name_by_class.items():
        if isinstance(expr, cls):
            return name
    if isinstance(expr, ir.Node):
        return expr.kind
    raise NotImplementedError(f"{expr} was not given a default name!")


DEFAULT_ANNOTATORS[_NAME_KEY] = default_name

# ---- evaluation -------------------------------------------------------------------------


class RASPEvaluator(abc.ABC):
    """ABC for RASP evaluators."""

    @abc.abstractmethod
    def evaluate(self, expr: RASPExpr, xs: Sequence[Value]) -> Union[Sequence[Value], SelectorValue]:
        """Evaluates the RASP expression on input `xs`."""


class DefaultRASPEvaluator(RASPEvaluator):
    """Tracr's default evaluator semantics, computed by our batched interpreter."""

    def evaluate(self, expr: RASPExpr, xs: Sequence[Value]) -> Union[Sequence[Value], SelectorValue]:
        result = Interpreter([expr]).run([token_list(xs)])[expr.id][0]
        if isinstance(expr, ir.Selector):
            return [[bool(v) for v in row] for row in result]
        return result


evaluate = DefaultRASPEvaluator().evaluate


def _get_selected(selector_row: List[bool], values: Sequence[VT]) -> Sequence[VT]:
    """Helper for aggregate. [T T F], [a b c] -> [a b]."""
    return [v for s, v in zip(selector_row, values) if s]


def _mean(xs: Sequence[VT], default: VT) -> VT:
    """The aggregate of the selected values (the interpreter's rule, see `tracr_mean`)."""
    return tracr_mean(xs, default)


# ---- programs built with Tracr's own module ---------------------------------------------

def from_tracr(expr: Any) -> RASPExpr:
    """This module's copy of a program built with DeepMind's own `tracr.rasp.rasp` (or with
    this module: a fresh copy).

    Lets a program written against an installed tracr-pypi go straight to our compiler
    (`compiler.compile` calls this itself), without swapping modules before it is built.
    The copy keeps the graph's sharing (one copy per Tracr node), every annotation
    (names, encodings) and the user's own Python functions and predicates. Maps are not
    re-simplified: Tracr already composed them when the program was built. Matched by
    class name, so tracr need not be importable here.
    """
    return _copy_program(expr, causal=False)


def causal(expr: Any) -> RASPExpr:
    """The program as Tracr's `compile_rasp_to_model(..., causal=True)` computes it.

    Tracr's causal model masks every attention layer, so each query sees only the keys at
    or before it: the selector of every `Aggregate` and `SelectorWidth` (a `make_length`'s
    too) acts as if and-ed with `Select(indices, indices, LEQ)`, and `length` (which Tracr
    does not compile) is the length so far, `indices + 1`. The copy says so explicitly,
    so that the interpreter and the (non-causal) compiler both compute the causal
    program. Takes a program built with this module or with tracr-pypi's own; returns a
    copy built with this module.
    """
    return _copy_program(expr, causal=True)


def _copy_program(expr: Any, causal: bool) -> RASPExpr:
    copies: Dict[int, RASPExpr] = {}
    if causal:
        positions = IndicesType()
        mask = Select(positions, positions, Comparison.LEQ).named("causal_mask")    # (one, shared by every use)
    stack: List[Tuple[Any, bool]] = [(expr, False)]
    while stack:
        node, expanded = stack.pop()
        if id(node) in copies:
            continue
        children = list(_tracr_children(node))
        if not expanded:
            stack.append((node, True))
            stack.extend((child, False) for child in children if id(child) not in copies)
            continue
        kids = [copies[id(child)] for child in children]
        if causal and _tracr_class(node) in ("Aggregate", "SelectorWidth"):
            # (masked where the selector is used, as attention is: a mask on each Select
            # would be undone by a SelectorNot above it)
            kids[0] = SelectorAnd(kids[0], mask)
        copy = _copy_tracr_node(node, kids)
        if causal and isinstance(copy, LengthType):
            # (a causal model cannot see the whole input: the length so far, as make_length
            # gives under Tracr's causal mask)
            copy = Map(lambda i: i + 1, positions, simplify=False)
        copy.annotations = {**copy.annotations._values, **_our_annotations(node)}
        copies[id(node)] = copy
    return copies[id(expr)]


def is_tracr_expr(obj: Any) -> bool:
    """Whether `obj` is a node of Tracr's own RASP (tracr-pypi), not of this module."""
    return not isinstance(obj, ir.Node) and any(
        cls.__name__ == "RASPExpr" and cls.__module__.startswith("tracr.") for cls in type(obj).__mro__)


_TRACR_CHILDREN = {
    "Map": ("inner",), "SequenceMap": ("fst", "snd"), "LinearSequenceMap": ("fst", "snd"),
    "Select": ("keys", "queries"), "SelectorWidth": ("selector",), "SelectorAnd": ("fst", "snd"),
    "SelectorOr": ("fst", "snd"), "SelectorNot": ("inner",), "Aggregate": ("selector", "sop"),
}


def _tracr_class(node: Any) -> str:
    """The name of the Tracr class `node` is an instance of (a user's subclass: its base's)."""
    for cls in type(node).__mro__:
        if (cls.__module__.startswith("tracr.") or cls.__module__ == __name__) and cls.__name__ in _TRACR_BUILDERS:
            return cls.__name__
    raise TypeError(f"cannot convert {type(node).__name__} from Tracr: not a Tracr RASP "
                    f"primitive (expected one of {', '.join(sorted(_TRACR_BUILDERS))})")


def _tracr_children(node: Any) -> Sequence[Any]:
    return [getattr(node, field) for field in _TRACR_CHILDREN.get(_tracr_class(node), ())]


def _our_predicate(predicate: Any) -> Any:
    """Tracr's Comparison members become ours; any other callable is kept as it is."""
    if isinstance(predicate, enum.Enum) and type(predicate).__name__ == "Comparison":
        return Comparison[predicate.name]
    return predicate


def _our_annotations(node: Any) -> Dict[str, Any]:
    """The annotations set on a Tracr node (not the lazily defaulted ones), encodings ours."""
    annotations = dict(node.annotations)
    encoding = annotations.get(_ENCODING_KEY)
    if isinstance(encoding, enum.Enum):
        annotations[_ENCODING_KEY] = Encoding(encoding.value)
    return annotations


_TRACR_BUILDERS: Dict[str, Callable[[Any, List[RASPExpr]], RASPExpr]] = {
    "TokensType": lambda node, _: TokensType(),
    "IndicesType": lambda node, _: IndicesType(),
    "LengthType": lambda node, _: LengthType(),
    "Map": lambda node, kids: Map(node.f, kids[0], simplify=False),
    "LinearSequenceMap": lambda node, kids: LinearSequenceMap(kids[0], kids[1], node.fst_fac, node.snd_fac),
    "SequenceMap": lambda node, kids: SequenceMap(node.f, kids[0], kids[1]),
    "Full": lambda node, _: Full(node.fill),
    "ConstantSOp": lambda node, _: ConstantSOp(node.value, node.check_length),
    "Select": lambda node, kids: Select(kids[0], kids[1], _our_predicate(node.predicate)),
    "ConstantSelector": lambda node, _: ConstantSelector(node.value, node.check_length),
    "SelectorWidth": lambda node, kids: SelectorWidth(kids[0]),
    "SelectorAnd": lambda node, kids: SelectorAnd(kids[0], kids[1]),
    "SelectorOr": lambda node, kids: SelectorOr(kids[0], kids[1]),
    "SelectorNot": lambda node, kids: SelectorNot(kids[0]),
    "Aggregate": lambda node, kids: Aggregate(kids[0], kids[1], node.default),
}


def _copy_tracr_node(node: Any, children: List[RASPExpr]) -> RASPExpr:
    return _TRACR_BUILDERS[_tracr_class(node)](node, children)


__all__ = [
    "SelectorValue", "NumericValue", "Value", "VT", "RASPExprT", "SOpT", "T", "DEFAULT_ANNOTATORS",
    "Annotator", "RASPExpr", "annotate", "SOp", "TokensType", "IndicesType", "LengthType", "tokens",
    "indices", "length", "Map", "SequenceMap", "LinearSequenceMap", "Full", "sop_not", "ConstantSOp",
    "Predicate", "Comparison", "Selector", "Select", "ConstantSelector", "SelectorWidth", "SelectorAnd",
    "SelectorOr", "SelectorNot", "selector_not", "selector_and", "selector_or", "Aggregate", "Encoding",
    "numerical", "categorical", "get_encoding", "is_numerical", "is_categorical", "default_encoding",
    "default_name", "RASPEvaluator", "DefaultRASPEvaluator", "evaluate", "from_tracr", "causal", "is_tracr_expr",
]
