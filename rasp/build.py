"""Run a parsed RASP file at definition time and build its IR.

As in the original REPL, functions, loops, lists and dicts are evaluated when the file
is run: they only shape the graph of s-ops and selectors. Every IR node records the
span of the expression that made it and the call sites above it. Bad programs get one
clear `RaspError` naming the expression and its line; runaway programs (deep
recursion, huge loops, load cycles) stop with a `RaspLimitError`.
"""

from __future__ import annotations

import functools
import sys
from pathlib import Path
from typing import Any, Callable, Optional, Sequence

from . import ir
from . import syntax as ast
from .errors import (RaspError, RaspLimitError, RaspNameError, RaspSyntaxError, RaspTypeError, RaspValueError,
                     describe_exception)
from .ops import (binary_fn, binary_fn_const, ifelse_fn, is_text_type, lookup_fn, membership_fn,
                  python_binary, python_unary, unary_fn)
from .parser import parse
from .source import Span, read_source_file
from .types import static_type

MAX_CALL_DEPTH = 400
MAX_STEPS = 5_000_000
MAX_NODES = 2_000_000
MAX_COLLECTION = 1_000_000

RESERVED = frozenset({"tokens_asis", "tokens_str", "tokens_int", "tokens_float", "tokens_bool",
                      "indices", "True", "False", "out"})

PRELUDE_PATH = Path(__file__).with_name("prelude.rasp")

Atom = (int, float, str, bool)


def _is_atom(v: Any) -> bool:
    return isinstance(v, Atom)


def _kind_name(v: Any) -> str:
    if isinstance(v, ir.SOp):
        return "s-op"
    if isinstance(v, ir.Selector):
        return "selector"
    if isinstance(v, (RaspFunction, Builtin)):
        return "function"
    if isinstance(v, bool):
        return "bool"
    if isinstance(v, (int, float)):
        return "number"
    if isinstance(v, str):
        return "string"
    if isinstance(v, list):
        return "list"
    if isinstance(v, dict):
        return "dict"
    if v is None:
        return "None"
    return type(v).__name__


def _show(v: Any) -> str:
    if isinstance(v, ir.Node):
        return f"{_kind_name(v)} {v.name}"
    if isinstance(v, (RaspFunction, Builtin)):
        return f"function {v.name}"
    text = repr(v)
    return text if len(text) <= 40 else text[:37] + "..."


class RaspFunction:
    """A function defined with `def` (a closure over its defining environment)."""

    def __init__(self, node: ast.FuncDef, env: "Env") -> None:
        self.node = node
        self.env = env
        self.name = node.name

    def __repr__(self) -> str:
        return f"<function {self.name}({', '.join(self.node.params)})>"


class Builtin:
    """A predefined function implemented in Python (select, aggregate, range, ...)."""

    def __init__(self, name: str, fn: Callable[..., Any], min_args: int, max_args: int) -> None:
        self.name = name
        self.fn = fn
        self.min_args = min_args
        self.max_args = max_args

    def __repr__(self) -> str:
        return f"<builtin {self.name}>"


class Env:
    """A scope: names to values, with a parent scope for lookups."""

    def __init__(self, parent: Optional["Env"] = None) -> None:
        self.vars: dict[str, Any] = {}
        self.parent = parent

    def lookup(self, name: str) -> Any:
        env: Optional[Env] = self
        while env is not None:
            if name in env.vars:
                return env.vars[name]
            env = env.parent
        raise KeyError(name)

    def has(self, name: str) -> bool:
        try:
            self.lookup(name)
            return True
        except KeyError:
            return False


class _Exit(Exception):
    """`exit`/`quit` in a file: stop running it."""


class Program:
    """The result of running a RASP file: its names, its `out`, its example input."""

    def __init__(self, env: Env, filename: str) -> None:
        self.env = env
        self.filename = filename
        self.defined: list[str] = []       # top-level names in order of (last) definition
        self.out: Any = None
        self.has_out = False
        self.last_assigned: Optional[str] = None
        self.example: Any = None

    def __getitem__(self, name: str) -> Any:
        if name == "out":
            if self.has_out:
                return self.out
            if self.last_assigned is not None:
                return self.env.lookup(self.last_assigned)
            raise KeyError("out: the program has no expression statements or assignments")
        try:
            return self.env.lookup(name)
        except KeyError:
            raise KeyError(f"{name!r} is not defined in {self.filename}") from None

    def __contains__(self, name: str) -> bool:
        return name == "out" and (self.has_out or self.last_assigned is not None) or self.env.has(name)

    def get(self, name: str, default: Any = None) -> Any:
        try:
            return self[name]
        except KeyError:
            return default

    @property
    def result_name(self) -> str:
        """The name `rasp eval` evaluates by default: `out`, else the last assignment."""
        if self.has_out:
            return "out"
        if self.last_assigned is not None:
            return self.last_assigned
        raise KeyError("the program defines nothing to evaluate")

    def names(self) -> list[str]:
        """User-defined top-level names, in order of definition."""
        return list(self.defined)

    def sops(self) -> dict[str, ir.SOp]:
        """Top-level names bound to s-ops."""
        return {n: self.env.vars[n] for n in self.defined if isinstance(self.env.vars.get(n), ir.SOp)}

    def __repr__(self) -> str:
        return f"<Program {self.filename}: {', '.join(self.defined)}>"


class Builder:
    """Evaluates statements and expressions of one program (and the files it loads)."""

    def __init__(self, base_env: Env, load_stack: tuple[str, ...] = ()) -> None:
        self.base_env = base_env
        self.call_stack: list[Span] = []
        self.load_stack = list(load_stack)
        self.steps = 0
        self.nodes_made = 0
        self.program: Optional[Program] = None
        # (the REPL's `load`, as in the original REPL: a failing statement of a loaded
        # file is reported here and skipped, the rest of the file still runs)
        self.report_load_error: Optional[Callable[[RaspError], None]] = None
        self.loaded: list[str] = []         # the names the last `load` bound, in order

    # ---- helpers
    def origin(self, span: Span) -> ir.Origin:
        return ir.Origin(span, tuple(self.call_stack))

    def _count_node(self, span: Span) -> None:
        self.nodes_made += 1
        if self.nodes_made > MAX_NODES:
            raise RaspLimitError(f"the program creates more than {MAX_NODES} s-ops and selectors", span)

    def _step(self, span: Span) -> None:
        self.steps += 1
        if self.steps > MAX_STEPS:
            raise RaspLimitError(f"the program runs more than {MAX_STEPS} steps while being defined "
                                 "(a huge loop?)", span)

    def make(self, cls: type, *args: Any, span: Span, **kwargs: Any) -> Any:
        self._count_node(span)
        return cls(*args, origin=self.origin(span), **kwargs)

    # ---- statements
    def run_module(self, module: ast.Module, env: Env, top: bool) -> None:
        try:
            for stmt in module.statements:
                try:
                    self.exec_stmt(stmt, env, top)
                except RaspError as err:
                    if self.report_load_error is None:
                        raise
                    self.report_load_error(err)
        except _Exit:
            pass

    def exec_block(self, statements: Sequence[ast.Stmt], env: Env, top: bool) -> None:
        for stmt in statements:
            self.exec_stmt(stmt, env, top)

    def exec_stmt(self, stmt: ast.Stmt, env: Env, top: bool) -> None:
        self._step(stmt.span)
        if isinstance(stmt, ast.Assign):
            self.exec_assign(stmt, env, top)
        elif isinstance(stmt, ast.ExprStmt):
            value = self.eval(stmt.expr, env)
            if top and self.program is not None:
                self.program.out = value
                self.program.has_out = True
                env.vars["out"] = value     # (readable afterwards, as in the original REPL)
        elif isinstance(stmt, ast.FuncDef):
            repeated = [p for i, p in enumerate(stmt.params) if p in stmt.params[:i]]
            if repeated:
                raise RaspNameError(f"{stmt.name} names its parameter {repeated[0]!r} twice", stmt.span)
            self.bind(env, stmt.name, RaspFunction(stmt, env), stmt.span, top)
        elif isinstance(stmt, ast.ForLoop):
            self.exec_for(stmt, env, top)
        elif isinstance(stmt, ast.Load):
            self.exec_load(stmt, env)
        elif isinstance(stmt, ast.SetExample):
            example = self.eval(stmt.expr, env)
            if isinstance(example, (ir.Node, RaspFunction, Builtin)) or not hasattr(example, "__len__"):
                raise RaspTypeError(f"an example must be a string or a list, got {_show(example)}", stmt.span)
            if self.program is not None and top:
                self.program.example = example
        elif isinstance(stmt, ast.ReplCommand):
            if stmt.command == "exit":
                raise _Exit()
        elif isinstance(stmt, ast.Draw):
            self.eval(stmt.expr, env)
        else:  # pragma: no cover
            raise RaspError(f"unknown statement {stmt!r}", stmt.span)

    def bind(self, env: Env, name: str, value: Any, span: Span, top: bool) -> None:
        if name in RESERVED:
            raise RaspNameError(f"cannot assign to the reserved name {name!r}", span)
        env.vars[name] = value
        if isinstance(value, ir.Node):
            value.set_name_from_assignment(name)
        if top and self.program is not None:
            if name in self.program.defined:
                self.program.defined.remove(name)
            self.program.defined.append(name)

    def exec_assign(self, stmt: ast.Assign, env: Env, top: bool) -> None:
        values = [self.eval(e, env) for e in stmt.values]
        names = stmt.names
        if len(values) == 1:
            values = values[0]
            if len(names) > 1:
                if not isinstance(values, list):
                    raise RaspTypeError(f"cannot unpack {_show(values)} into {len(names)} names", stmt.span)
                if len(values) != len(names):
                    raise RaspTypeError(f"expected {len(names)} values, got {len(values)}", stmt.span)
            else:
                values = [values]
        elif len(values) != len(names):
            raise RaspTypeError(f"expected {len(names)} values, got {len(values)}", stmt.span)
        for name, value in zip(names, values):
            self.bind(env, name, value, stmt.span, top)
        if top and self.program is not None:
            self.program.last_assigned = names[-1]

    def exec_for(self, stmt: ast.ForLoop, env: Env, top: bool) -> None:
        iterable = self.eval(stmt.iterable, env)
        if not isinstance(iterable, (list, dict)):
            raise RaspTypeError(f"a for loop needs a list or dict to iterate over, got {_show(iterable)}",
                                stmt.iterable.span)
        for item in list(iterable):
            self.assign_iteration(env, stmt.names, item, stmt.span, top)
            self.exec_block(stmt.body, env, top)

    def assign_iteration(self, env: Env, names: tuple[str, ...], item: Any, span: Span, top: bool) -> None:
        if len(names) == 1:
            self.bind(env, names[0], item, span, top)
            return
        if not isinstance(item, list) or len(item) != len(names):
            raise RaspTypeError(f"cannot unpack {_show(item)} into {len(names)} names", span)
        for name, value in zip(names, item):
            self.bind(env, name, value, span, top)

    def exec_load(self, stmt: ast.Load, env: Env) -> None:
        path = self.resolve_load(stmt.path, stmt.span)
        key = str(path)
        if key in self.load_stack:
            chain = " -> ".join([*self.load_stack[self.load_stack.index(key):], key])
            raise RaspLimitError(f"load cycle: {chain}", stmt.span)
        try:
            text = read_source_file(path)
        except RaspValueError as err:
            raise RaspValueError(err.message, stmt.span) from None
        module = parse(text, str(path))
        file_env = Env(self.base_env)
        inner = Builder(self.base_env, (*self.load_stack, key))
        inner.steps, inner.nodes_made, inner.call_stack = self.steps, self.nodes_made, list(self.call_stack)
        inner.program = Program(file_env, str(path))
        inner.report_load_error = self.report_load_error
        inner.run_module(module, file_env, top=True)
        self.steps, self.nodes_made = inner.steps, inner.nodes_made
        self.loaded = [name for name in inner.program.defined if not name.startswith("_")]
        for name in self.loaded:
            env.vars[name] = file_env.vars[name]
            if self.program is not None and env is self.program.env:
                if name in self.program.defined:
                    self.program.defined.remove(name)
                self.program.defined.append(name)

    def resolve_load(self, name: str, span: Span) -> Path:
        here = Path(span.filename).parent if not span.filename.startswith("<") else Path.cwd()
        candidates = []
        for base in (here, Path.cwd()):
            candidates += [base / name, base / (name + ".rasp")]
        for c in candidates:
            if c.is_file():
                return c.resolve()
        raise RaspValueError(f"could not find the file {name!r} (looked for {name!r} and "
                             f"{name + '.rasp'!r} next to {span.filename} and in the working directory)", span)

    # ---- expressions
    def eval(self, expr: ast.Expr, env: Env) -> Any:
        self._step(expr.span)
        method = _DISPATCH.get(type(expr))
        if method is None:  # pragma: no cover
            raise RaspError(f"unknown expression {expr!r}", expr.span)
        return method(self, expr, env)

    def eval_num(self, e: ast.Num, env: Env) -> Any:
        return e.value

    def eval_str(self, e: ast.Str, env: Env) -> Any:
        return e.value

    def eval_var(self, e: ast.Var, env: Env) -> Any:
        try:
            return env.lookup(e.name)
        except KeyError:
            raise RaspNameError(f"unknown name {e.name!r}", e.span) from None

    def eval_opargs(self, e: ast.OpArg, env: Env) -> Any:
        raise RaspTypeError(f"the comparison {e.op!r} can only be the third argument of select", e.span)

    def eval_binop(self, e: ast.BinOp, env: Env) -> Any:
        left = self.eval(e.left, env)
        right = self.eval(e.right, env)
        return self.binary(e.op, left, right, e.span)

    def binary(self, op: str, left: Any, right: Any, span: Span) -> Any:
        if op in ("and", "or"):
            sels = isinstance(left, ir.Selector), isinstance(right, ir.Selector)
            if all(sels):
                cls = ir.SelectAnd if op == "and" else ir.SelectOr
                return self.make(cls, left, right, span=span)
            if any(sels):
                raise RaspTypeError(f"cannot combine {_show(left)} and {_show(right)} with {op!r}: "
                                    "both sides must be selectors (or neither)", span)
            if not isinstance(left, ir.SOp) and not isinstance(right, ir.SOp):
                return (left and right) if op == "and" else (left or right)
        elif isinstance(left, ir.Selector) or isinstance(right, ir.Selector):
            raise RaspTypeError(f"cannot apply {op!r} to a selector", span)
        if isinstance(left, ir.SOp) or isinstance(right, ir.SOp):
            for side in (left, right):
                if not isinstance(side, ir.SOp) and not _is_atom(side):
                    raise RaspTypeError(f"cannot apply {op!r} to an s-op and a {_kind_name(side)} "
                                        f"({_show(side)})", span)
            if isinstance(left, ir.SOp) and isinstance(right, ir.SOp):
                return self.make(ir.Map, binary_fn(op), (left, right), span=span)
            if isinstance(left, ir.SOp):
                return self.make(ir.Map, binary_fn_const(op, right, False), (left,), span=span)
            return self.make(ir.Map, binary_fn_const(op, left, True), (right,), span=span)
        for side in (left, right):
            if isinstance(side, (RaspFunction, Builtin)):
                raise RaspTypeError(f"cannot apply {op!r} to a function", span)
        return self.python(python_binary, op, left, right, span=span)

    def python(self, fn: Callable[..., Any], op: str, *args: Any, span: Span) -> Any:
        """Apply an operator to plain values, turning Python errors into RASP errors."""
        if op == "*" and len(args) == 2:
            a, b = args
            for seq, times in ((a, b), (b, a)):
                if isinstance(seq, (list, str)) and isinstance(times, int) and len(seq) * times > MAX_COLLECTION:
                    raise RaspLimitError(f"the result would have more than {MAX_COLLECTION} elements", span)
        try:
            result = fn(op, *args)
        except ZeroDivisionError:
            raise RaspValueError("division by zero", span) from None
        except (TypeError, ValueError, OverflowError) as exc:
            shown = f" {op} ".join(_show(a) for a in args) if len(args) == 2 else f"{op} {_show(args[0])}"
            raise RaspTypeError(f"cannot compute {shown}: {describe_exception(exc)}", span) from None
        if isinstance(result, (list, str)) and len(result) > MAX_COLLECTION:
            raise RaspLimitError(f"the result would have more than {MAX_COLLECTION} elements", span)
        return result

    def eval_unop(self, e: ast.UnOp, env: Env) -> Any:
        value = self.eval(e.operand, env)
        return self.unary(e.op, value, e.span)

    def unary(self, op: str, value: Any, span: Span) -> Any:
        if isinstance(value, ir.Selector):
            if op == "not":
                return self.make(ir.SelectNot, value, span=span)
            raise RaspTypeError(f"cannot apply {op!r} to a selector", span)
        if isinstance(value, ir.SOp):
            return self.make(ir.Map, unary_fn(op), (value,), span=span)
        if isinstance(value, (RaspFunction, Builtin)):
            raise RaspTypeError(f"cannot apply {op!r} to a function", span)
        return self.python(python_unary, op, value, span=span)

    def eval_ifelse(self, e: ast.IfElse, env: Env) -> Any:
        cond = self.eval(e.cond, env)
        if isinstance(cond, ir.Selector):
            raise RaspTypeError("the condition of `a if c else b` cannot be a selector", e.cond.span)
        if not isinstance(cond, ir.SOp):
            # a plain condition picks a branch now (so recursion can terminate)
            return self.eval(e.then if cond else e.otherwise, env)
        then = self.eval(e.then, env)
        otherwise = self.eval(e.otherwise, env)
        for branch, sub in ((then, e.then), (otherwise, e.otherwise)):
            if not isinstance(branch, ir.SOp) and not _is_atom(branch):
                raise RaspTypeError(f"with an s-op condition, both branches must be s-ops or atoms; "
                                    f"got {_show(branch)}", sub.span)
        t_sop, o_sop = isinstance(then, ir.SOp), isinstance(otherwise, ir.SOp)
        fn = ifelse_fn(then, otherwise, t_sop, o_sop)
        inputs = (cond,) + ((then,) if t_sop else ()) + ((otherwise,) if o_sop else ())
        return self.make(ir.Map, fn, inputs, span=e.span)

    def eval_contains(self, e: ast.Contains, env: Env) -> Any:
        item = self.eval(e.item, env)
        container = self.eval(e.container, env)
        if isinstance(item, ir.SOp):
            if not isinstance(container, list):
                raise RaspTypeError(f"`s-op in X` needs X to be a list of atoms, got {_show(container)}",
                                    e.container.span)
            for v in container:
                if not _is_atom(v):
                    raise RaspTypeError(f"`s-op in X` needs X to be a list of atoms; it contains {_show(v)}",
                                        e.container.span)
            return self.make(ir.Map, membership_fn(container), (item,), span=e.span)
        if _is_atom(item):
            if isinstance(container, (list, dict, str)):
                if isinstance(container, str) and not isinstance(item, str):
                    raise RaspTypeError(f"`x in string` needs x to be a string, got {_show(item)}", e.span)
                return item in container
            if isinstance(container, ir.SOp):
                # "occurs anywhere": aggregate(full, indicator(container == item)) > 0
                eq = self.make(ir.Map, binary_fn_const("==", item, False), (container,), span=e.span)
                ind = self.make(ir.Map, unary_fn("indicator"), (eq,), span=e.span)
                full = self.make(ir.Select, self.make(ir.Constant, 1, span=e.span),
                                 self.make(ir.Constant, 1, span=e.span), _predicate("=="), span=e.span)
                frac = self.make(ir.Aggregate, full, ind, 0, span=e.span)
                return self.make(ir.Map, binary_fn_const(">", 0, False), (frac,), span=e.span)
            raise RaspTypeError(f"`atom in X` needs X to be a list, dict, string or s-op, got {_show(container)}",
                                e.container.span)
        raise RaspTypeError(f"`A in X` needs A to be an s-op or an atom, got {_show(item)}", e.item.span)

    def eval_index(self, e: ast.Index, env: Env) -> Any:
        obj = self.eval(e.obj, env)
        index = self.eval(e.index, env)
        if isinstance(obj, ir.SOp):
            if isinstance(index, bool) or not isinstance(index, int):
                raise RaspTypeError(f"an s-op can only be indexed by an integer, got {_show(index)}",
                                    e.index.span)
            indices = _builtin_sop(env, "indices")
            if index >= 0:
                where: Any = self.make(ir.Constant, index, span=e.span)
            else:
                length = _builtin_sop(env, "length")
                where = self.make(ir.Map, binary_fn_const("+", index, False), (length,), span=e.span)
            sel = self.make(ir.Select, indices, where, _predicate("=="), span=e.span)
            return self.make(ir.Aggregate, sel, obj, self.absent_default(obj), span=e.span)
        if isinstance(obj, (list, str, dict)):
            if isinstance(index, ir.SOp):
                return self.make(ir.Map, lookup_fn(obj), (index,), span=e.span)
            if isinstance(obj, dict):
                if not _is_atom(index):
                    raise RaspTypeError(f"a dict can only be indexed by an atom, got {_show(index)}", e.index.span)
                if index not in obj:
                    raise RaspValueError(f"index {_show(index)} not in dict", e.index.span)
                return obj[index]
            if isinstance(index, bool) or not isinstance(index, int):
                raise RaspTypeError(f"a {_kind_name(obj)} can only be indexed by an integer, got {_show(index)}",
                                    e.index.span)
            if index >= len(obj) or -index > len(obj):
                raise RaspValueError(f"index {index} out of range for a {_kind_name(obj)} of length {len(obj)}",
                                     e.index.span)
            return obj[index]
        raise RaspTypeError(f"cannot index into {_show(obj)}: only lists, dicts, strings and s-ops", e.obj.span)

    def absent_default(self, sop: ir.SOp) -> Any:
        """The default of an aggregate without one: None for text values, else 0."""
        return None if is_text_type(static_type(sop)) else 0

    def eval_list(self, e: ast.ListLit, env: Env) -> Any:
        return [self.eval(item, env) for item in e.items]

    def eval_dict(self, e: ast.DictLit, env: Env) -> Any:
        out = {}
        for k, v in e.pairs:
            key = self.eval(k, env)
            if not _is_atom(key):
                raise RaspTypeError(f"dict keys must be atoms, got {_show(key)}", k.span)
            out[key] = self.eval(v, env)
        return out

    def _iterate(self, iterable_expr: ast.Expr, env: Env) -> list:
        iterable = self.eval(iterable_expr, env)
        if not isinstance(iterable, (list, dict)):
            raise RaspTypeError(f"a comprehension needs a list or dict to loop over, got {_show(iterable)}",
                                iterable_expr.span)
        return list(iterable)

    def eval_listcomp(self, e: ast.ListComp, env: Env) -> Any:
        out = []
        for item in self._iterate(e.iterable, env):
            inner = Env(env)
            self.assign_iteration(inner, e.names, item, e.span, top=False)
            out.append(self.eval(e.expr, inner))
        return out

    def eval_dictcomp(self, e: ast.DictComp, env: Env) -> Any:
        out = {}
        for item in self._iterate(e.iterable, env):
            inner = Env(env)
            self.assign_iteration(inner, e.names, item, e.span, top=False)
            key = self.eval(e.key, inner)
            if not _is_atom(key):
                raise RaspTypeError(f"dict keys must be atoms, got {_show(key)}", e.key.span)
            out[key] = self.eval(e.value, inner)
        return out

    def eval_call(self, e: ast.Call, env: Env) -> Any:
        func = self.eval(e.func, env)
        if isinstance(func, Builtin):
            args = [a if isinstance(a, ast.OpArg) else self.eval(a, env) for a in e.args]
            if not func.min_args <= len(args) <= func.max_args:
                expected = (str(func.min_args) if func.min_args == func.max_args
                            else f"{func.min_args} to {func.max_args}")
                raise RaspTypeError(f"{func.name} takes {expected} arguments, got {len(args)}", e.span)
            return func.fn(self, args, e, env)
        for a in e.args:
            if isinstance(a, ast.OpArg):
                self.eval_opargs(a, env)
        args = [self.eval(a, env) for a in e.args]
        if isinstance(func, RaspFunction):
            return self.call_function(func, args, e.span)
        if isinstance(func, ir.Node):
            if len(args) != 1:
                raise RaspTypeError(f"applying {_show(func)} to an input takes 1 argument, got {len(args)}", e.span)
            example = args[0]
            if isinstance(example, (str, list)):
                from .interpreter import evaluate
                return evaluate(func, example)
            raise RaspTypeError(f"an s-op or selector is applied to a string or list, got {_show(example)}",
                                e.args[0].span)
        raise RaspTypeError(f"{_show(func)} is not a function", e.func.span)

    def call_function(self, func: RaspFunction, args: list, span: Span) -> Any:
        params = func.node.params
        if len(args) != len(params):
            raise RaspTypeError(f"{func.name} takes {len(params)} argument{'s' if len(params) != 1 else ''}, "
                                f"got {len(args)}", span)
        if len(self.call_stack) >= MAX_CALL_DEPTH:
            raise RaspLimitError(f"calls nested more than {MAX_CALL_DEPTH} deep (infinite recursion?) "
                                 f"in {func.name}", span)
        local = Env(func.env)
        for name, value in zip(params, args):
            if name in RESERVED:
                raise RaspNameError(f"cannot use the reserved name {name!r} as a parameter", func.node.span)
            local.vars[name] = value
        self.call_stack.append(span)
        try:
            self.exec_block(func.node.body, local, top=False)
            results = [self.eval(r, local) for r in func.node.returns]
        finally:
            self.call_stack.pop()
        result = results[0] if len(results) == 1 else results
        return result


def _predicate(op: str) -> ir.Predicate:
    return ir.Predicate(_COMPARE_PY[op], op, comparison=op)


_COMPARE_PY = {
    "==": lambda k, q: k == q,
    "!=": lambda k, q: k != q,
    "<": lambda k, q: k < q,
    "<=": lambda k, q: k <= q,
    ">": lambda k, q: k > q,
    ">=": lambda k, q: k >= q,
    "TRUE": lambda k, q: True,
    "FALSE": lambda k, q: False,
}


def _builtin_sop(env: Env, name: str) -> ir.SOp:
    # the program's own builtin node (indices/length), even if shadowed by the user
    root = env
    while root.parent is not None:
        root = root.parent
    return root.vars[name]


_DISPATCH: dict[type, Callable[[Builder, Any, Env], Any]] = {
    ast.Num: Builder.eval_num,
    ast.Str: Builder.eval_str,
    ast.Var: Builder.eval_var,
    ast.BinOp: Builder.eval_binop,
    ast.UnOp: Builder.eval_unop,
    ast.IfElse: Builder.eval_ifelse,
    ast.Contains: Builder.eval_contains,
    ast.Index: Builder.eval_index,
    ast.Call: Builder.eval_call,
    ast.ListLit: Builder.eval_list,
    ast.DictLit: Builder.eval_dict,
    ast.ListComp: Builder.eval_listcomp,
    ast.DictComp: Builder.eval_dictcomp,
    ast.OpArg: Builder.eval_opargs,
}


# ---- builtin functions -------------------------------------------------------------------

def _sop_or_atom(b: Builder, value: Any, what: str, span: Span) -> ir.SOp:
    if isinstance(value, ir.SOp):
        return value
    if _is_atom(value):
        return b.make(ir.Constant, value, span=span)
    raise RaspTypeError(f"{what} must be an s-op or an atom, got {_show(value)}", span)


def _bi_select(b: Builder, args: list, call: ast.Call, env: Env) -> ir.Select:
    keys, queries, op = args
    op_node = call.args[2]
    if isinstance(op, ast.OpArg):
        op = op.op
    # (isinstance first: an s-op's == builds an s-op, which `in` would take as True)
    if not isinstance(op, str) or op not in ("==", "!=", "<", "<=", ">", ">="):
        raise RaspTypeError(f"select's third argument must be one of == != < <= > >=, got {_show(op)}",
                            op_node.span)
    k = _sop_or_atom(b, keys, "select's keys", call.args[0].span)
    q = _sop_or_atom(b, queries, "select's queries", call.args[1].span)
    return b.make(ir.Select, k, q, _predicate(op), span=call.span)


def _bi_aggregate(b: Builder, args: list, call: ast.Call, env: Env) -> ir.Aggregate:
    sel = args[0]
    if not isinstance(sel, ir.Selector):
        raise RaspTypeError(f"aggregate's first argument must be a selector, got {_show(sel)}", call.args[0].span)
    sop = _sop_or_atom(b, args[1], "aggregate's second argument", call.args[1].span)
    if len(args) == 3:
        default = args[2]
        if not _is_atom(default):
            raise RaspTypeError(f"aggregate's default must be an atom, got {_show(default)}", call.args[2].span)
    else:
        default = b.absent_default(sop)
    return b.make(ir.Aggregate, sel, sop, default, span=call.span)


def _bi_selector_width(b: Builder, args: list, call: ast.Call, env: Env) -> ir.SelectorWidth:
    (sel,) = args
    if not isinstance(sel, ir.Selector):
        raise RaspTypeError(f"selector_width needs a selector, got {_show(sel)}", call.args[0].span)
    return b.make(ir.SelectorWidth, sel, span=call.span)


def _unary_builtin(op: str) -> Callable[..., Any]:
    def fn(b: Builder, args: list, call: ast.Call, env: Env) -> Any:
        (value,) = args
        if isinstance(value, ir.Selector):
            raise RaspTypeError(f"{op} needs an s-op or an atom, got a selector", call.args[0].span)
        return b.unary(op, value, call.span)
    return fn


def _bi_range(b: Builder, args: list, call: ast.Call, env: Env) -> list:
    for a, node in zip(args, call.args):
        if isinstance(a, bool) or not isinstance(a, int):
            raise RaspTypeError(f"range expects integers, got {_show(a)}", node.span)
    r = range(*args)
    if len(r) > MAX_COLLECTION:
        raise RaspLimitError(f"range of {len(r)} elements is larger than the limit {MAX_COLLECTION}", call.span)
    return list(r)


def _bi_zip(b: Builder, args: list, call: ast.Call, env: Env) -> list:
    for i, (a, node) in enumerate(zip(args, call.args)):
        if not isinstance(a, list):
            raise RaspTypeError(f"zip expects lists, argument {i + 1} is {_show(a)}", node.span)
    lengths = {len(a) for a in args}
    if len(lengths) > 1:
        raise RaspTypeError(f"zip expects lists of one length, got lengths {sorted(lengths)}", call.span)
    return [list(t) for t in zip(*args)]


def _bi_len(b: Builder, args: list, call: ast.Call, env: Env) -> int:
    (value,) = args
    if not isinstance(value, (list, dict, str)):
        raise RaspTypeError(f"len expects a list, dict or string, got {_show(value)}", call.args[0].span)
    return len(value)


def _encoding_builtin(encoding: str) -> Callable[..., Any]:
    def fn(b: Builder, args: list, call: ast.Call, env: Env) -> Any:
        (value,) = args
        if not isinstance(value, ir.SOp):
            raise RaspTypeError(f"{encoding}(...) needs an s-op, got {_show(value)}", call.args[0].span)
        value.annotated(encoding=encoding)
        return value
    return fn


_BUILTINS = [
    Builtin("select", _bi_select, 3, 3),
    Builtin("aggregate", _bi_aggregate, 2, 3),
    Builtin("selector_width", _bi_selector_width, 1, 1),
    Builtin("round", _unary_builtin("round"), 1, 1),
    Builtin("indicator", _unary_builtin("indicator"), 1, 1),
    Builtin("range", _bi_range, 1, 3),
    Builtin("zip", _bi_zip, 1, 64),
    Builtin("len", _bi_len, 1, 1),
    Builtin("numerical", _encoding_builtin("numerical"), 1, 1),
    Builtin("categorical", _encoding_builtin("categorical"), 1, 1),
]


def _root_env() -> Env:
    """Fresh builtin s-ops and functions (fresh per program, so programs never share nodes)."""
    env = Env()
    tokens_str = ir.Tokens("str")
    for name, node in (("tokens_str", tokens_str), ("tokens_int", ir.Tokens("int")),
                       ("tokens_float", ir.Tokens("float")), ("tokens_bool", ir.Tokens("bool")),
                       ("tokens_asis", ir.Tokens("asis")), ("indices", ir.Indices()), ("length", ir.Length())):
        node.name_locked = True
        env.vars[name] = node
    env.vars["tokens"] = tokens_str
    env.vars["True"] = True
    env.vars["False"] = False
    for builtin in _BUILTINS:
        env.vars[builtin.name] = builtin
    return env


@functools.lru_cache(maxsize=1)
def _prelude_module() -> ast.Module:
    return parse(PRELUDE_PATH.read_text(), "<prelude>")


def _base_env() -> Env:
    """The environment every program starts from: builtins plus the prelude library."""
    root = _root_env()
    prelude_env = Env(root)
    builder = Builder(root)
    builder.run_module(_prelude_module(), prelude_env, top=False)
    for value in prelude_env.vars.values():
        if isinstance(value, ir.Node):
            value.name_locked = True
    return prelude_env


def build_module(module: ast.Module) -> Program:
    """Run a parsed module in a fresh environment and return the resulting Program."""
    base = _base_env()
    env = Env(base)
    program = Program(env, module.filename)
    key = str(Path(module.filename).resolve()) if not module.filename.startswith("<") else module.filename
    builder = Builder(base, (key,))
    builder.program = program
    limit = sys.getrecursionlimit()
    sys.setrecursionlimit(max(limit, 30000))
    try:
        builder.run_module(module, env, top=True)
    except RecursionError:
        raise RaspLimitError("the program nests expressions or calls too deeply") from None
    finally:
        sys.setrecursionlimit(limit)
    return program


def parse_program(text: str, filename: str = "<string>") -> Program:
    """Parse and build RASP source text."""
    if not isinstance(text, str):
        raise RaspValueError(f"RASP source must be text (a str), got {type(text).__name__}")
    return build_module(parse(text, filename))


def load_program(path: str | Path) -> Program:
    """Read, parse and build a RASP file."""
    path = Path(path)
    return build_module(parse(read_source_file(path), str(path)))


__all__ = ["Program", "Builder", "Env", "RaspFunction", "Builtin", "build_module", "parse_program",
           "load_program", "RaspSyntaxError"]
