"""Random well-typed RASP programs, for fuzzing the interpreter and the compiler.

`random_program(rng)` writes RASP source text that uses every primitive: typed
tokens, indices, length, elementwise maps (arithmetic, comparisons, boolean logic,
conditionals, membership, indicator), selects with every comparison, selector
and/or/not, numerical and categorical aggregates (with and without defaults) and
selector_width, with shared subexpressions (later statements reuse earlier names).
Values stay small (small vocabularies, bounded arithmetic) so that programs are
compilable at short lengths; the last statement is the program's output.
"""

from __future__ import annotations

import random
from dataclasses import dataclass, field

VOCAB = ["a", "b", "c"]
COMPARISONS = ["==", "!=", "<", "<=", ">", ">="]


@dataclass
class _Var:
    name: str
    kind: str        # "int" (small integers), "bool", "str", "frac" (a mean), "sel"


@dataclass
class _Gen:
    rng: random.Random
    lines: list[str] = field(default_factory=list)
    vars: list[_Var] = field(default_factory=list)
    count: int = 0

    def fresh(self) -> str:
        self.count += 1
        return f"v{self.count}"

    def pick(self, kind: str) -> str:
        options = [v.name for v in self.vars if v.kind == kind]
        base = {"int": ["indices", "tokens_int_small", "length"], "str": ["tokens"], "bool": [], "frac": [],
                "sel": []}[kind]
        options = options + [b for b in base if b != "tokens_int_small"]
        if kind == "int" and self.rng.random() < 0.3:
            options.append("(indices % 3)")
        if not options:
            return {"bool": "(tokens == \"a\")", "frac": "aggregate(select(indices, indices, <=), "
                    "indicator(tokens == \"b\"))"}[kind]
        return self.rng.choice(options)

    def add(self, kind: str, expr: str) -> str:
        name = self.fresh()
        self.lines.append(f"{name} = {expr};")
        self.vars.append(_Var(name, kind))
        return name

    # ---- generators per kind
    def selector(self) -> str:
        r = self.rng.random()
        if r < 0.6 or not any(v.kind == "sel" for v in self.vars):
            kind = self.rng.choice(["int", "str", "int", "bool"])
            op = self.rng.choice(COMPARISONS if kind != "bool" else ["==", "!="])
            if kind == "str":
                op = self.rng.choice(["==", "!=", "<", ">"])
            keys, queries = self.pick(kind), self.pick(kind)
            if self.rng.random() < 0.15:
                queries = {"int": "1", "str": "\"b\"", "bool": "True"}[kind]
            return f"select({keys}, {queries}, {op})"
        a = self.pick("sel")
        r2 = self.rng.random()
        if r2 < 0.4:
            return f"{a} and {self.selector()}"
        if r2 < 0.6:
            return f"not {a}"
        return f"{a} or {self.selector()}"

    def step(self) -> None:
        r = self.rng.random()
        if r < 0.18:
            self.add("sel", self.selector())
        elif r < 0.32:
            sel = self.pick("sel") if any(v.kind == "sel" for v in self.vars) else self.selector()
            self.add("int", f"selector_width({sel})")
        elif r < 0.48:
            sel = self.pick("sel") if any(v.kind == "sel" for v in self.vars) else self.selector()
            src = self.rng.choice(["str", "int", "bool"])
            if src == "str":
                default = self.rng.choice(["", ", \"_\""])
                self.add("str", f"aggregate({sel}, {self.pick('str')}{default})")
            elif src == "bool":
                self.add("frac", f"aggregate({sel}, indicator({self.pick('bool')}))")
            else:
                self.add("frac", f"aggregate({sel}, {self.pick('int')}, 0)")
        elif r < 0.62:
            a = self.pick("int")
            op = self.rng.choice(["+", "-", "*", "%"])
            b = self.rng.choice([str(self.rng.randint(1, 3)), self.pick("int")])
            if op == "*":
                b = str(self.rng.randint(0, 2))
            if op == "%":
                b = str(self.rng.randint(2, 3))
            self.add("int", f"{a} {op} {b}")
        elif r < 0.74:
            kind = self.rng.choice(["int", "str", "frac"])
            a = self.pick(kind)
            if kind == "str":
                b = self.rng.choice(["\"a\"", "\"b\"", self.pick("str")])
                op = self.rng.choice(["==", "!="])
            elif kind == "frac":
                b = self.rng.choice(["0", "0.5", self.pick("frac")])
                op = self.rng.choice(["<", ">", "==", "<="])
            else:
                b = self.rng.choice([str(self.rng.randint(0, 3)), self.pick("int")])
                op = self.rng.choice(COMPARISONS)
            self.add("bool", f"{a} {op} {b}")
        elif r < 0.82:
            a, b = self.pick("bool"), self.pick("bool")
            op = self.rng.choice(["and", "or"])
            self.add("bool", self.rng.choice([f"{a} {op} {b}", f"not {a}"]))
        elif r < 0.9:
            kind = self.rng.choice(["int", "str"])
            cond = self.pick("bool")
            x, y = self.pick(kind), self.pick(kind)
            if self.rng.random() < 0.3:
                y = {"int": "0", "str": "\"z\""}[kind]
            self.add(kind, f"{x} if {cond} else {y}")
        elif r < 0.95:
            self.add("bool", f"{self.pick('str')} in [\"a\", \"c\"]")
        else:
            self.add("int", f"indicator({self.pick('bool')}) + {self.pick('int')}")

    def finish(self) -> str:
        outs = [v for v in self.vars if v.kind != "sel"]
        if not outs:
            self.add("int", f"selector_width({self.selector()})")
            outs = [self.vars[-1]]
        # prefer a late value so that most of the program is live
        out = outs[-1] if self.rng.random() < 0.7 else self.rng.choice(outs)
        self.lines.append(f"{out.name};")
        return "\n".join(self.lines) + "\n"


def random_program(rng: random.Random, steps: int = 6) -> str:
    """RASP source of a random program over tokens from VOCAB (strings)."""
    g = _Gen(rng)
    g.lines.append("tokens_int_small = indicator(tokens == \"a\") + 2 * indicator(tokens == \"c\");")
    g.vars.append(_Var("tokens_int_small", "int"))
    for _ in range(steps):
        g.step()
    return g.finish()
