"""`rasp attn` (one PNG per head) and `rasp draw` (the dataflow graph by layer)."""

from __future__ import annotations

import pytest

import xml.etree.ElementTree as ET

import matplotlib

matplotlib.use("Agg")

from compiler import inspect, plots  # noqa: E402

from inspect_helpers import compiled, program_path, run_cli, one_thread  # noqa: E402,F401

pytestmark = pytest.mark.usefixtures("one_thread")

PNG = b"\x89PNG\r\n\x1a\n"


def test_attn_writes_one_png_per_head(tmp_path):
    out = tmp_path / "maps"
    result = run_cli("attn", str(program_path("sort")), "--input", "cab", "-o", str(out))
    assert result.exit_code == 0, result.output
    model = compiled("sort")
    files = sorted(p.name for p in out.iterdir())
    assert files == sorted(f"{h.name}.png" for h in inspect.heads(model)) == ["L0H0.png", "L0H1.png", "L1H0.png"]
    for f in out.iterdir():
        assert f.read_bytes()[:8] == PNG
        img = matplotlib.image.imread(f)
        assert img.shape[0] > 200 and img.shape[1] > 200


def test_attention_figure_axes_and_title():
    model = compiled("sort")
    tokens = list("cab")
    head = next(h for h in inspect.heads(model) if h.label == "aggregate sorted")
    pattern = inspect.attention_patterns(model, tokens)[(head.layer, head.index)]
    assert pattern.shape == (4, 4)
    assert abs(pattern.sum(axis=1) - 1).max() < 1e-5
    fig = plots.attention_figure(pattern, tokens, head)
    ax = fig.axes[0]
    assert [t.get_text() for t in ax.get_xticklabels()] == ["BOS", "c", "a", "b"]
    assert [t.get_text() for t in ax.get_yticklabels()] == ["BOS", "c", "a", "b"]
    title = ax.get_title()
    assert "select(target, indices, ==)" in title and f"line {head.line}" in title and head.line == 18
    # query 0 fetches the token whose target is 0: "a", input position 1 (model position 2);
    # BOS attends to itself
    assert pattern[1].argmax() == 2 and pattern[0].argmax() == 0
    matplotlib.pyplot.close(fig)


def test_draw_svg_and_png(tmp_path):
    svg = tmp_path / "g.svg"
    result = run_cli("draw", str(program_path("reverse")), "-o", str(svg))
    assert result.exit_code == 0, result.output
    root = ET.parse(svg).getroot()
    assert root.tag.endswith("svg")
    text = svg.read_text()
    for word in ("opp_index", "flip", "reverse", "embedding", "layer 1 attention", "virtual (no block)"):
        assert word in text, word
    png = tmp_path / "g.png"
    assert run_cli("draw", "sort", "-o", str(png)).exit_code == 0
    assert png.read_bytes()[:8] == PNG


def test_placements_colour_nodes_by_sublayer():
    model = compiled("reverse")
    by_name = {model.program.graph.node(i).name: label for i, (label, _) in plots.placements(model).items()}
    assert by_name["tokens"] == "embedding" and by_name["indices"] == "embedding"
    assert by_name["length"] == "layer 0 MLP"
    assert by_name["opp_index"] == "virtual (no block)"
    assert by_name["flip"] == "layer 1 attention" and by_name["reverse"] == "layer 1 attention"
    model = compiled("sort")
    by_name = {model.program.graph.node(i).name: label for i, (label, _) in plots.placements(model).items()}
    assert by_name["target"] == "layer 0 MLP" and by_name["goes_before"] == "layer 0 attention"


def test_draw_rejects_other_formats(tmp_path):
    result = run_cli("draw", "sort", "-o", str(tmp_path / "g.gif"))
    assert result.exit_code == 2 and ".svg, .png or .pdf" in result.output


def test_layers_command_json():
    import json
    result = run_cli("layers", "sort", "--input", "cab", "--json")
    assert result.exit_code == 0, result.output
    data = json.loads(result.output)
    assert data["output"] == ["a", "b", "c"]
    labels = [s["label"] for s in data["sublayers"]]
    assert labels[0] == "embedding" and labels[-1] == "layer 1 MLP"
    assert data["sublayers"][0]["values"]["tokens"] == ["c", "a", "b"]
    assert data["sublayers"][-1]["values"]["target"] == [2, 0, 1]
    table = run_cli("layers", "sort", "--input", "cab")
    assert table.exit_code == 0 and "layer 1 MLP" in table.output and "target" in table.output
