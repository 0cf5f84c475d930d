"""`rasp repl`: the interactive RASP prompt, as in the original RASP REPL.

Statements are run as they are entered, in one environment that persists for the
session, and every s-op or selector is shown on the running example input:

    >> set example "hello"
         example: hello
    >> x = tokens == "l";
         s-op: x = [F, F, T, T, F]
    >> sel = select(indices, indices, <);
         selector: sel
              h e l l o
            h 0 0 0 0 0
            ...

A statement may span several lines: input is collected until it parses (a `;` ends a
simple statement, `}` a `def` or `for`); an empty line ends a statement that only
lacks its `;` (any other goes on past empty lines, as in the original REPL). A `load`
shows every name the file bound; a failing statement in a loaded file is reported and
skipped, as in the original. REPL commands besides the language's own (`set example`,
`show example`, `exit`):

    compile NAME [VOCAB] [MAX-LEN]   compile an s-op (default vocab: the example's tokens)
    draw NAME FILE                   write the compiled dataflow graph (.svg/.png/.pdf)
    help                             this list

History (up/down, saved in ~/.rasp_history) and tab completion of names use
prompt_toolkit when the input is a terminal; piped input is read line by line.
"""

from __future__ import annotations

import json
import os
import re
import shlex
import sys
from pathlib import Path
from typing import Any, Callable, Optional

from rasp import ir
from rasp import syntax as ast
from rasp.build import Builder, Builtin, Env, Program, RaspFunction, _base_env
from rasp.errors import RaspError, RaspSyntaxError
from rasp.header import parse_sequence
from rasp.parser import parse

from .trace import show_value

PROMPT = ">> "
CONTINUE = ".. "
INDENT = "     "
DEFAULT_EXAMPLE = "hello"
MAX_MATRIX = 24

_COMMAND = re.compile(r"^\s*(compile|draw)\s+([A-Za-z_][A-Za-z0-9_]*)\b(.*?);?\s*$", re.S)
KEYWORDS = ["select", "aggregate", "selector_width", "def", "return", "for", "in", "if", "else", "and", "or",
            "not", "load", "set example", "show example", "examples on", "examples off", "full seq display on",
            "full seq display off", "exit", "compile", "draw", "help", "numerical", "categorical"]

HELP = """\
statements end with ';' (def/for blocks with '}'); an empty line ends a statement missing its ';'
  set example "abc"               the input every s-op is shown on (also: set example [1, 2, 3])
  show example                    print it
  compile NAME [VOCAB] [MAX-LEN]  compile an s-op to a transformer (vocab: a string or JSON list)
  draw NAME FILE                  save the compiled dataflow graph (.svg, .png or .pdf)
  load "file.rasp"                run a file into this session
  exit                            leave (or Ctrl-D)"""


class ReplSession:
    """One REPL session: the persistent environment plus the example and compiled models."""

    def __init__(self, write: Callable[[str], None] = print, example: Optional[str] = None) -> None:
        self.write = write
        base = _base_env()
        self.env = Env(base)
        self.program = Program(self.env, "<repl>")
        self.builder = Builder(base, ("<repl>",))
        self.builder.program = self.program
        self.builder.report_load_error = self._error
        self.example: list = parse_sequence(example) if example is not None else list(DEFAULT_EXAMPLE)
        self.program.example = self.example
        self.show_examples = True
        self.models: dict[str, Any] = {}
        self.buffer: list[str] = []
        self.done = False
        self.chunks = 0

    # ---- input handling
    @property
    def pending(self) -> bool:
        return bool(self.buffer)

    def feed(self, line: str) -> None:
        """One line of input: run what is complete, keep what is not."""
        if not self.buffer:
            stripped = line.strip()
            if stripped in ("help", "help;", "?"):
                self.write(HELP)
                return
            match = _COMMAND.match(line)
            if match:
                self._command(match.group(1), match.group(2), match.group(3))
                return
            if not stripped:
                return
        if not line.strip():
            # an empty line ends a statement that only lacks its ';' (others go on, as a
            # statement may hold blank lines)
            self._finish(report=False)
            return
        self.buffer.append(line)
        text = "\n".join(self.buffer)
        try:
            module = parse(text, self._filename())
        except RaspSyntaxError as err:
            if err.message.startswith("unexpected end of input"):
                return            # wait for more lines
            self.buffer = []
            self._error(err)
            return
        self.buffer = []
        self.chunks += 1
        self._run_module(module)

    def finish(self) -> None:
        """End of input: run the statement in progress if only its ';' is missing, else
        say why it cannot run."""
        self._finish(report=True)

    def _finish(self, report: bool) -> None:
        if not self.buffer:
            return
        text = "\n".join(self.buffer)
        try:
            module = parse(text.rstrip() + ";", self._filename())
        except RaspSyntaxError:
            if report:
                self.buffer = []
                try:
                    parse(text, self._filename())
                except RaspSyntaxError as err:     # (where the text itself stops, not the ';')
                    self._error(err)
            return
        self.buffer = []
        self.chunks += 1
        self._run_module(module)

    def _filename(self) -> str:
        return f"<repl {self.chunks + 1}>"

    def _run_module(self, module: ast.Module) -> None:
        for stmt in module.statements:
            if self.done:
                return
            try:
                self._run_statement(stmt)
            except RaspError as err:
                self._error(err)
                return
            except RecursionError:
                self.write("limit exceeded: the statement nests expressions or calls too deeply")
                return
            except (ValueError, TypeError, OSError, ArithmeticError) as err:
                self.write(f"error: {err}")
                return

    def _run_statement(self, stmt: ast.Stmt) -> None:
        if isinstance(stmt, ast.ReplCommand):
            self._repl_command(stmt)
            return
        if isinstance(stmt, ast.Draw):
            value = self.builder.eval(stmt.expr, self.env)
            self.write(f"{INDENT}(use `draw NAME FILE` to save the compiled graph of an s-op)")
            self.show(value, None)
            return
        self.builder.exec_stmt(stmt, self.env, top=True)
        if isinstance(stmt, ast.Assign):
            for name in stmt.names:
                self.show(self.env.vars.get(name), name)
        elif isinstance(stmt, ast.ExprStmt):
            self.show(self.program.out, stmt.expr.name if isinstance(stmt.expr, ast.Var) else None)
        elif isinstance(stmt, ast.FuncDef):
            self.write(f"{INDENT}function: {stmt.name}({', '.join(stmt.params)})")
        elif isinstance(stmt, ast.SetExample):
            if self.program.example is not None:
                self.example = list(self.program.example)
            self.write(f"{INDENT}example: {self._show_example()}")
        elif isinstance(stmt, ast.Load):
            # every name the file bound, in the order of its last assignment, as the
            # original REPL does (which shows nothing for a `for` loop; neither do we)
            for name in self.builder.loaded:
                self.show(self.env.vars[name], name)
            if not self.builder.loaded:
                self.write(f"{INDENT}loaded {stmt.path} (it binds no public names)")

    def _repl_command(self, stmt: ast.ReplCommand) -> None:
        if stmt.command == "exit":
            self.done = True
        elif stmt.command == "show example":
            self.write(f"{INDENT}example: {self._show_example()}")
        elif stmt.command == "examples":
            self.show_examples = stmt.argument.strip().endswith("on")
            self.write(f"{INDENT}examples {'on' if self.show_examples else 'off'}")
        else:
            self.write(f"{INDENT}(full sequences are always shown)")

    def _error(self, err: RaspError) -> None:
        self.write(str(err))

    # ---- display
    def _show_example(self) -> str:
        if all(isinstance(t, str) and len(t) == 1 for t in self.example):
            return "".join(self.example)
        return json.dumps(self.example)

    def show(self, value: Any, name: Optional[str]) -> None:
        label = f"{name} = " if name else ""
        if isinstance(value, ir.SOp):
            head = f"{INDENT}s-op: {name or value.name}"
            if not self.show_examples:
                self.write(head)
                return
            try:
                from rasp.interpreter import evaluate
                vals = evaluate(value, self.example)
            except RaspError as err:
                self.write(f"{head}\n{INDENT}  (on the example: {err.message})")
                return
            self.write(f"{head} = [{', '.join(show_value(v) for v in vals)}]")
        elif isinstance(value, ir.Selector):
            self.write(f"{INDENT}selector: {name or value.name}")
            if self.show_examples:
                self._show_matrix(value)
        elif isinstance(value, (RaspFunction, Builtin)):
            self.write(f"{INDENT}function: {label}{value!r}")
        elif isinstance(value, list):
            self.write(f"{INDENT}list: {label}{_show_atom(value)}")
        elif isinstance(value, dict):
            self.write(f"{INDENT}dict: {label}{_show_atom(value)}")
        elif value is None:
            self.write(f"{INDENT}{label}None")
        else:
            self.write(f"{INDENT}value: {label}{_show_atom(value)}")

    def _show_matrix(self, sel: ir.Selector) -> None:
        from rasp.interpreter import evaluate
        try:
            matrix = evaluate(sel, self.example)
        except RaspError as err:
            self.write(f"{INDENT}  (on the example: {err.message})")
            return
        toks = [show_value(t) for t in self.example][:MAX_MATRIX]
        width = max([len(t) for t in toks] + [1])
        pad = INDENT + " " * (width + 1)
        self.write(pad + " ".join(t.rjust(width) for t in toks))
        for q, row in enumerate(matrix[:MAX_MATRIX]):
            cells = " ".join(str(int(x)).rjust(width) for x in row[:MAX_MATRIX])
            self.write(f"{INDENT}{toks[q].rjust(width)} {cells}")
        if len(self.example) > MAX_MATRIX:
            self.write(f"{INDENT}(first {MAX_MATRIX} rows and columns of {len(self.example)})")

    # ---- compile / draw
    def _command(self, command: str, name: str, rest: str) -> None:
        try:
            args = shlex.split(rest)
        except ValueError as err:
            self.write(f"error: {err}")
            return
        try:
            if command == "compile":
                if len(args) > 2:
                    raise ValueError("usage: compile NAME [VOCAB] [MAX-LEN]")
                vocab = parse_sequence(args[0]) if args else None
                max_len = _int_arg(args[1], "max-len") if len(args) > 1 else None
                self.compile(name, vocab, max_len, verbose=True)
            else:
                if len(args) != 1:
                    raise ValueError("usage: draw NAME FILE (FILE ends in .svg, .png or .pdf)")
                self.draw(name, args[0])
        except RaspError as err:
            self._error(err)
        except (ValueError, OSError) as err:
            self.write(f"error: {err}")

    def _sop(self, name: str) -> ir.SOp:
        try:
            value = self.env.lookup(name)
        except KeyError:
            raise ValueError(f"unknown name {name!r}") from None
        if not isinstance(value, ir.SOp):
            raise ValueError(f"{name!r} is not an s-op (only s-ops can be compiled)")
        return value

    def compile(self, name: str, vocab: Optional[list] = None, max_len: Optional[int] = None,
                verbose: bool = False):
        import compiler
        sop = self._sop(name)
        vocab = vocab if vocab is not None else sorted(set(self.example), key=lambda v: (str(type(v)), v))
        max_len = max_len if max_len is not None else max(len(self.example), 1)
        model = compiler.compile(sop, vocab=vocab, max_seq_len=max_len)
        self.models[name] = (sop, model)
        if verbose:
            self.write(f"{INDENT}compiled {name}: {model.num_layers} layers, heads per layer "
                       f"{model.heads_per_layer}, d_model {model.d_model}, d_mlp {model.d_mlp}, "
                       f"{model.num_params} parameters (vocab {_show_atom(vocab)}, max-len {max_len})")
            for layer, blocks in enumerate(model.info.get("blocks", [])):
                self.write(f"{INDENT}  layer {layer}: {'; '.join(blocks) or '(empty)'}")
            if len(self.example) <= max_len and all(t in vocab for t in self.example):
                from rasp.interpreter import evaluate
                got = model(self.example)
                want = evaluate(sop, self.example)
                same = compiler.same_output(got, want)
                self.write(f"{INDENT}on the example: [{', '.join(show_value(v) for v in got)}] "
                           f"({'agrees with' if same else 'DIFFERS from'} the interpreter)")
            else:
                self.write(f"{INDENT}(the example is not an input of this model: tokens outside the vocabulary "
                           "or too long)")
        return model

    def draw(self, name: str, path: str) -> None:
        from compiler import plots
        if Path(path).suffix.lower() not in (".svg", ".png", ".pdf"):
            raise ValueError(f"the picture's file name must end in .svg, .png or .pdf, got {path!r}")
        sop = self._sop(name)
        cached = self.models.get(name)
        model = cached[1] if cached is not None and cached[0] is sop else self.compile(name)
        plots.save_graph(model, path, title=f"{name} ({model.num_layers} layers)")
        self.write(f"{INDENT}wrote {path}")

    # ---- completion
    def names(self) -> list[str]:
        out: list[str] = []
        env: Optional[Env] = self.env
        while env is not None:
            out += [n for n in env.vars if not n.startswith("_")]
            env = env.parent
        return sorted(set(out) | {k for k in KEYWORDS if " " not in k})


def _int_arg(text: str, what: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise ValueError(f"{what} must be an integer, got {text!r}") from None
    if value < 1:
        raise ValueError(f"{what} must be at least 1, got {value}")
    return value


def _show_atom(value: Any) -> str:
    if isinstance(value, list):
        return "[" + ", ".join(_show_atom(v) for v in value) + "]"
    if isinstance(value, dict):
        return "{" + ", ".join(f"{_show_atom(k)}: {_show_atom(v)}" for k, v in value.items()) + "}"
    if isinstance(value, str):
        return json.dumps(value, ensure_ascii=False)
    if isinstance(value, ir.Node):
        return value.name
    return show_value(value)


# ---- the terminal loop -------------------------------------------------------------------

def _completer(session: ReplSession):
    from prompt_toolkit.completion import Completer, Completion

    class NameCompleter(Completer):
        def get_completions(self, document, complete_event):
            word = document.get_word_before_cursor(WORD=False)
            if not word or not (word[0].isalpha() or word[0] == "_"):
                return
            for name in session.names():
                if name.startswith(word) and name != word:
                    yield Completion(name, start_position=-len(word))

    return NameCompleter()


def run_repl(history_path: Optional[str] = None, example: Optional[str] = None) -> None:
    session = ReplSession(example=example)
    interactive = sys.stdin.isatty() and sys.stdout.isatty()
    if not interactive:
        for line in sys.stdin:
            session.feed(line.rstrip("\n"))
            if session.done:
                break
        session.finish()
        return
    from prompt_toolkit import PromptSession
    from prompt_toolkit.history import FileHistory, InMemoryHistory

    path = Path(history_path) if history_path else Path(os.path.expanduser("~")) / ".rasp_history"
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.touch(exist_ok=True)
        history = FileHistory(str(path))
    except OSError:
        history = InMemoryHistory()
    prompt = PromptSession(history=history, completer=_completer(session), complete_while_typing=False)
    print("RASP REPL: statements end with ';'. `help` lists the commands; Ctrl-D leaves.")
    print(f"{INDENT}example: {session._show_example()}")
    while not session.done:
        try:
            line = prompt.prompt(CONTINUE if session.pending else PROMPT)
        except KeyboardInterrupt:
            if session.pending:
                session.buffer = []
                print("(statement dropped)")
            continue
        except EOFError:
            break
        session.feed(line)
    print("bye")
