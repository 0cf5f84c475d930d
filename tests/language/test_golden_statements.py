"""Golden tests for definition-time constructs: functions, loops, comprehensions, load, `out`."""

from __future__ import annotations

import pytest

import rasp

from .helpers import check, same, value


# ---- functions --------------------------------------------------------------------------

def test_function_returning_several_values_unpacks():
    src = """
    def sum_prod(a, b) { return a + b, a * b; }
    s, p = sum_prod(tokens_int, 2);
    pair = sum_prod(2, 3);
    """
    check(src, [1, 2], [3, 4], "s")
    check(src, [1, 2], [2, 4], "p")
    assert same(value(src, "pair"), [5, 6])


def test_functions_with_local_statements_and_closures():
    src = """
    offset = 10;
    def add_offset(x) { y = x + offset; return y; }
    def make() {
        def inner(z) { return z * 2; }
        return inner;
    }
    doubler = make();
    a = add_offset(tokens_int);
    b = doubler(tokens_int);
    """
    check(src, [1, 2], [11, 12], "a")
    check(src, [1, 2], [2, 4], "b")
    prog = rasp.parse(src)
    assert "y" not in prog           # locals do not leak
    assert "inner" not in prog


def test_recursion_with_atom_conditions():
    assert same(value("def fib(n) { return n if n < 2 else fib(n - 1) + fib(n - 2); }\nfib(10);"), 55)


def test_recursive_function_building_sops():
    # shift right k times by one position: the same as shift(tokens, k, '_')
    src = """
    def shift_k(s, k) { return s if k == 0 else shift(shift_k(s, k - 1), 1, '_'); }
    shift_k(tokens, 2);
    """
    check(src, "abcd", ["_", "_", "a", "b"])


def test_bare_expression_in_a_function_body_does_not_bind_out():
    prog = rasp.parse("def f(x) { x + 100; return x; }\ny = f(1);")
    assert same(prog["out"], 1)


# ---- for loops --------------------------------------------------------------------------

def test_for_loop_accumulates_sops():
    src = "x = tokens_int; for i in range(3) { x = x + i; }"   # + 0 + 1 + 2
    check(src, [1, 2], [4, 5], "x")
    src = "acc = 0; for c in ['a', 'b'] { acc = acc + indicator(tokens == c); }"
    check(src, "abc", [1, 1, 0], "acc")


def test_for_loop_unpacking_and_dict_iteration():
    assert same(value("total = 0; for k, v in [[1, 2], [3, 4]] { total = total + k * v; }", "total"), 14)
    assert same(value("s = ''; for k in {'x': 1, 'y': 2} { s = s + k; }", "s"), "xy")
    assert same(value("t = 0; for a, b in zip([1, 2], [10, 20]) { t = t + a * b; }", "t"), 50)
    # the loop variable stays bound after a top-level loop, as in Python
    assert same(value("for i in range(3) { j = i * 2; }\nk = i + j;", "k"), 6)


def test_nested_for_loops():
    src = "n = 0; for i in range(3) { for j in range(i) { n = n + 1; } }"   # 0 + 1 + 2
    assert same(value(src, "n"), 3)


def test_for_loop_inside_a_function():
    src = """
    def count_all(seq, items) {
        total = 0;
        for item in items { total = total + indicator(seq == item); }
        return total;
    }
    count_all(tokens, ['a', 'c']);
    """
    check(src, "abcab", [1, 0, 1, 1, 0])


# ---- lists, dicts, comprehensions, builtins ---------------------------------------------

@pytest.mark.parametrize("src, expected", [
    ("[i * i for i in range(4)];", [0, 1, 4, 9]),
    ("{c: i for c, i in zip(['a', 'b'], [1, 2])};", {"a": 1, "b": 2}),
    ("[[i, j] for i, j in zip([1, 2], [3, 4])];", [[1, 3], [2, 4]]),
    ("range(2, 8, 3);", [2, 5]),
    ("range(3, 0, -1);", [3, 2, 1]),
    ("len([1, 2, 3]) + len('ab') + len({1: 2});", 6),
    ("zip([1, 2], ['a', 'b']);", [[1, "a"], [2, "b"]]),
    ("{'a': [1, 2]}['a'][1];", 2),
    ("[x for x in []];", []),
])
def test_collections_and_builtins(src, expected):
    assert same(value(src), expected)


def test_comprehension_variables_do_not_leak():
    with pytest.raises(rasp.RaspNameError):
        rasp.parse("xs = [i for i in range(3)];\ni;")


def test_lists_and_dicts_of_sops():
    src = """
    flags = [tokens == c for c in ['a', 'b']];
    table = {'pos': indices, 'n': length};
    b_flag = flags[1];
    shifted = table['pos'] + table['n'];
    """
    check(src, "ab", [False, True], "b_flag")
    check(src, "ab", [2, 3], "shifted")


# ---- load -------------------------------------------------------------------------------

def write(path, text):
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    return path


def test_load_exports_public_names_only(tmp_path):
    write(tmp_path / "lib.rasp", "_hidden = 5;\nshown = _hidden + 1;\ndef dbl(x) { return x * 2; }\n"
                                 "_helper = tokens == 'a';\nis_a = _helper;\n")
    main = write(tmp_path / "main.rasp", 'load "lib.rasp";\ny = dbl(shown);\n')
    prog = rasp.load(main)
    assert same(prog["y"], 12)
    assert same(prog["shown"], 6)
    assert "_hidden" not in prog and "_helper" not in prog
    assert rasp.evaluate(prog["is_a"], "ab") == [True, False]
    assert prog.names() == ["shown", "dbl", "is_a", "y"]


def test_load_also_tries_the_rasp_extension(tmp_path):
    write(tmp_path / "util.rasp", "def inc(x) { return x + 1; }\n")
    main = write(tmp_path / "main.rasp", 'load "util";\nz = inc(tokens_int);\n')
    assert rasp.evaluate(rasp.load(main)["z"], [1, 5]) == [2, 6]


def test_load_is_relative_to_the_loading_file(tmp_path):
    write(tmp_path / "lib" / "a.rasp", 'load "b";\nfrom_a = from_b + 1;\n')
    write(tmp_path / "lib" / "b.rasp", "from_b = 41;\n")
    main = write(tmp_path / "main.rasp", 'load "lib/a";\nanswer = from_a;\n')
    prog = rasp.load(main)
    assert same(prog["answer"], 42)
    assert same(prog["from_b"], 41)      # a's own load is re-exported


def test_load_from_text_is_relative_to_the_working_directory(tmp_path, monkeypatch):
    write(tmp_path / "consts.rasp", "k = 3;\n")
    monkeypatch.chdir(tmp_path)
    assert same(rasp.parse('load "consts";\nk * 2;')["out"], 6)


def test_loaded_file_does_not_set_out(tmp_path):
    write(tmp_path / "lib.rasp", "99;\n")
    main = write(tmp_path / "main.rasp", 'load "lib";\nx = 1;\n')
    assert same(rasp.load(main)["out"], 1)


def test_load_cycle_is_an_error(tmp_path):
    write(tmp_path / "a.rasp", 'load "b";\n')
    write(tmp_path / "b.rasp", 'load "a.rasp";\n')
    with pytest.raises(rasp.RaspLimitError) as info:
        rasp.load(tmp_path / "a.rasp")
    assert "load cycle" in str(info.value)
    assert "b.rasp:1:1" in str(info.value)


def test_self_load_is_a_cycle(tmp_path):
    me = write(tmp_path / "me.rasp", 'x = 1;\nload "me";\n')
    with pytest.raises(rasp.RaspLimitError):
        rasp.load(me)


def test_loading_the_same_file_twice_is_not_a_cycle(tmp_path):
    write(tmp_path / "lib.rasp", "v = 7;\n")
    main = write(tmp_path / "main.rasp", 'load "lib";\nload "lib";\nw = v;\n')
    assert same(rasp.load(main)["w"], 7)


def test_load_of_a_missing_file_names_the_statement(tmp_path):
    main = write(tmp_path / "main.rasp", 'x = 1;\nload "nope";\n')
    with pytest.raises(rasp.RaspError) as info:
        rasp.load(main)
    assert "main.rasp:2:1" in str(info.value)
    assert "nope" in str(info.value)


# ---- `out` and naming -------------------------------------------------------------------

def test_out_is_the_last_bare_expression():
    assert same(value("1; 2; x = 3;"), 2)
    assert same(value("x = 1; x + 1; y = 10;"), 2)


def test_out_can_be_read_after_a_bare_expression():
    # (the original REPL rebinds `out` at every top-level expression; a function body does not)
    prog = rasp.parse("3 + 4;\nx = out * 2;\ntokens == 'a';\ny = out;\ndef f(v) { v + 1; return out; }\nz = f(0);")
    assert same(prog["x"], 14)
    assert rasp.evaluate(prog["y"], "ab") == [True, False]
    assert prog["z"] is prog["y"]          # (the body's `v + 1;` left `out` alone)
    with pytest.raises(rasp.RaspNameError, match="unknown name 'out'"):
        rasp.parse("x = out;")


def test_out_falls_back_to_the_last_top_level_assignment():
    assert same(value("x = 1; y = 2;"), 2)
    assert same(value("x, y = 1, 2;"), 2)
    assert same(value("x = 1;\ndef f(a) { b = 5; return a; }"), 1)


def test_out_is_missing_when_nothing_is_defined():
    prog = rasp.parse("def f(a) { return a; }")
    assert "out" not in prog
    with pytest.raises(KeyError):
        prog["out"]


def test_out_is_an_sop_when_the_expression_is():
    prog = rasp.parse("tokens == 'a';")
    assert isinstance(prog["out"], rasp.SOp)
    assert rasp.evaluate(prog["out"], "ba") == [False, True]


def test_unknown_program_names_raise_key_error():
    prog = rasp.parse("x = 1;")
    with pytest.raises(KeyError):
        prog["nope"]
    assert prog.get("nope", 5) == 5


def test_set_example_is_recorded():
    assert rasp.parse('set example "hello"\nx = 1;').example == "hello"
    assert rasp.parse("set example [1, 2, 3];").example == [1, 2, 3]


def test_applying_an_sop_to_an_example_evaluates_it():
    assert same(value("f = tokens_int + 1;\nf([1, 2]);"), [2, 3])
    assert same(value("(tokens == 'a')('aba');"), [True, False, True])
