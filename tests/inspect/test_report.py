"""`rasp report`: one self-contained HTML page with every section (parsed, no browser)."""

from __future__ import annotations

import pytest

import base64
from html.parser import HTMLParser

import rasp

from inspect_helpers import compiled, load, program_path, run_cli, one_thread  # noqa: F401

pytestmark = pytest.mark.usefixtures("one_thread")

SECTIONS = ["summary", "graph", "layers", "trace", "residual", "attention"]


class Page(HTMLParser):
    """Collects sections, images, table cells and every external reference."""

    def __init__(self) -> None:
        super().__init__()
        self.sections: list[str] = []
        self.images: list[dict] = []
        self.external: list[str] = []
        self.text: dict[str, list[str]] = {}
        self.current: str | None = None
        self.stack: list[str] = []

    def handle_starttag(self, tag, attrs):
        a = dict(attrs)
        if tag == "section":
            self.sections.append(a.get("id"))
            self.current = a.get("id")
        if tag == "img":
            self.images.append({**a, "section": self.current})
        for key in ("src", "href"):
            if key in a and not a[key].startswith("data:"):
                self.external.append(a[key])
        if tag in ("script", "link", "iframe"):
            self.external.append(tag)

    def handle_endtag(self, tag):
        if tag == "section":
            self.current = None

    def handle_data(self, data):
        if self.current and data.strip():
            self.text.setdefault(self.current, []).append(data.strip())


def _report(tmp_path, name, tokens):
    out = tmp_path / f"{name}.html"
    result = run_cli("report", str(program_path(name)), "--input", tokens, "-o", str(out))
    assert result.exit_code == 0, result.output
    page = Page()
    page.feed(out.read_text(encoding="utf-8"))
    return page


def test_report_has_every_section_and_is_self_contained(tmp_path):
    page = _report(tmp_path, "sort", "cabbad")
    assert page.sections == SECTIONS
    assert page.external == []                       # nothing outside the file
    model = compiled("sort")
    graph = [i for i in page.images if i["section"] == "graph"]
    assert len(graph) == 1 and graph[0]["src"].startswith("data:image/svg+xml;base64,")
    svg = base64.b64decode(graph[0]["src"].split(",", 1)[1])
    assert svg.lstrip().startswith(b"<?xml") and b"<svg" in svg
    maps = [i for i in page.images if i["section"] == "attention"]
    assert len(maps) == sum(model.heads_per_layer) == 3
    for img in maps:
        assert base64.b64decode(img["src"].split(",", 1)[1])[:8] == b"\x89PNG\r\n\x1a\n"
    summary = " ".join(page.text["summary"])
    assert "agrees with the interpreter" in summary
    layers = " ".join(page.text["layers"])
    assert "L1H0" in layers and "select(target, indices, ==)" in layers and "decode target" in layers
    trace = page.text["trace"]
    prog, _, _ = load("sort")
    assert "target" in trace and "sorted" in trace
    assert " ".join(map(str, rasp.evaluate(prog["target"], "cabbad"))) in " ".join(trace)
    residual = page.text["residual"]
    for label in ("embedding", "layer 0 attention", "layer 0 MLP", "layer 1 attention"):
        assert label in residual
    assert "blocks.1.hook_resid_post" in residual


def test_report_marks_ambiguous_sops_and_headless_models(tmp_path):
    page = _report(tmp_path, "count_a", "abca")
    assert page.sections == SECTIONS
    assert "tokens~" in page.text["residual"]      # count_a keeps only tokens == "a"
    page = _report(tmp_path, "length", "abc")
    assert page.sections == SECTIONS


def test_report_errors(tmp_path):
    result = run_cli("report", "sort", "--input", "xyz", "-o", str(tmp_path / "r.html"))
    assert result.exit_code == 1 and "not in the vocabulary" in result.output
    assert not (tmp_path / "r.html").exists()
