"""`rasp report`: one self-contained HTML page about a compiled program on one input.

Sections (each a `<section id=...>`): `summary` (input, outputs, sizes), `graph` (the
dataflow graph, SVG), `layers` (every layer's heads and MLP blocks), `trace` (every
named s-op by the interpreter), `residual` (the s-ops decoded from the residual stream
after every sublayer) and `attention` (one map per head, PNG). Pictures are embedded
as base64 data URLs, so the file needs nothing else.
"""

from __future__ import annotations

import base64
import html
from typing import Any

CSS = """
body { font-family: -apple-system, "Segoe UI", Helvetica, Arial, sans-serif; margin: 24px 32px;
       color: #222; max-width: 1300px; }
h1 { font-size: 22px; margin-bottom: 4px; }
h2 { font-size: 18px; border-bottom: 1px solid #ddd; padding-bottom: 4px; margin-top: 32px; }
h3 { font-size: 14px; margin: 16px 0 6px; }
p.note, .muted { color: #666; font-size: 13px; }
table { border-collapse: collapse; font-size: 13px; margin: 6px 0 12px; }
th, td { border: 1px solid #ddd; padding: 3px 7px; text-align: center; }
th { background: #f4f4f4; font-weight: 600; }
td.name, th.name { text-align: left; font-weight: 600; white-space: nowrap; }
td.src { text-align: left; font-family: Menlo, Consolas, monospace; font-size: 12px; color: #444; }
td.new { background: #fff6d5; }
tr.out td.name { color: #b00; }
code { font-family: Menlo, Consolas, monospace; font-size: 12px; }
.ok { color: #080; font-weight: 600; } .bad { color: #b00; font-weight: 600; }
.grid { display: flex; flex-wrap: wrap; gap: 12px; }
.grid figure { margin: 0; border: 1px solid #eee; padding: 6px; }
.grid figcaption { font-size: 12px; color: #444; max-width: 460px; }
img.graph { max-width: 100%; height: auto; border: 1px solid #eee; }
img.attn { width: 460px; height: auto; }
.sub { color: #888; font-weight: normal; font-size: 12px; }
"""


def _e(x: Any) -> str:
    return html.escape(str(x), quote=True)


def _data_url(data: bytes, mime: str) -> str:
    return f"data:{mime};base64," + base64.b64encode(data).decode("ascii")


def _tokens_header(tokens: list) -> str:
    from .trace import show_value
    return "".join(f"<th>{i}<br><code>{_e(show_value(t))}</code></th>" for i, t in enumerate(tokens))


def build_report(loaded, model, tokens: list) -> str:
    import rasp
    from compiler import inspect, plots, same_output

    from .inspect_cmds import display_names
    from .trace import show_value, trace

    tokens = list(tokens)
    names = display_names(loaded, model)
    compiled_out = model(tokens)
    tr = trace(loaded.program, tokens, loaded.name, loaded.node)
    expected = next((r.values for r in tr.rows if r.node is loaded.node), None)
    if expected is None:
        expected = rasp.evaluate(loaded.node, tokens)
    agree = same_output(expected, compiled_out)
    parts: list[str] = []
    title = f"{loaded.path.name}: {loaded.name}"
    parts.append(f"<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">"
                 f"<title>{_e(title)}</title><style>{CSS}</style></head><body>")
    parts.append(f"<h1>{_e(title)}</h1>")
    if loaded.header.description:
        parts.append(f"<p class=\"note\">{_e(loaded.header.description)}</p>")

    # ---- summary
    shape = model.module.shape
    parts.append("<section id=\"summary\"><h2>Summary</h2><table>")
    rows = [("input", " ".join(show_value(t) for t in tokens)),
            ("interpreter output", " ".join(show_value(v) for v in expected)),
            ("compiled output", " ".join(show_value(v) for v in compiled_out)),
            ("layers", model.num_layers), ("heads per layer", ", ".join(map(str, model.heads_per_layer))),
            ("MLP width per layer", ", ".join(map(str, shape.d_mlp))), ("d_model", model.d_model),
            ("parameters", f"{model.num_params:,}"), ("vocabulary", " ".join(show_value(v) for v in model.vocab)),
            ("max length", model.max_seq_len)]
    for k, v in rows:
        parts.append(f"<tr><th class=\"name\">{_e(k)}</th><td class=\"src\">{_e(v)}</td></tr>")
    verdict = "<span class=\"ok\">the compiled model agrees with the interpreter</span>" if agree else \
        "<span class=\"bad\">the compiled model DISAGREES with the interpreter</span>"
    parts.append(f"</table><p>{verdict}</p></section>")

    # ---- graph
    svg = plots.figure_bytes(plots.graph_figure(model), fmt="svg")
    parts.append("<section id=\"graph\"><h2>Dataflow graph</h2>"
                 "<p class=\"note\">Every s-op (circle) and selector (diamond) the output depends on, "
                 "coloured by the sublayer it is compiled into; the output has a red outline.</p>"
                 f"<img class=\"graph\" alt=\"dataflow graph\" src=\"{_data_url(svg, 'image/svg+xml')}\">"
                 "</section>")

    # ---- layers
    heads = inspect.heads(model)
    mlps = inspect.mlps(model)
    parts.append("<section id=\"layers\"><h2>Layers, heads and MLPs</h2>"
                 "<table><tr><th>layer</th><th>sublayer</th><th>block</th><th>implements</th>"
                 "<th>width</th><th>source</th></tr>")
    for layer in range(model.num_layers):
        lh = [h for h in heads if h.layer == layer]
        lm = [m for m in mlps if m.layer == layer]
        if not lh and not lm:
            parts.append(f"<tr><td>{layer}</td><td colspan=\"5\" class=\"muted\">(empty)</td></tr>")
        for h in lh:
            parts.append(f"<tr><td>{layer}</td><td>attention</td><td class=\"name\">{_e(h.name)}</td>"
                         f"<td class=\"src\">{_e(h.label)}: {_e(h.select)}</td>"
                         f"<td>{h.dims} dims</td><td class=\"src\">{_e(h.location)}</td></tr>")
        for m in lm:
            span = m.node.origin.user_span() if m.node.origin is not None else None
            parts.append(f"<tr><td>{layer}</td><td>MLP</td><td class=\"name\">{_e(m.label)}</td>"
                         f"<td class=\"src\">{_e(m.node.name)} = {_e(_short(m.node.source_text or ''))}</td>"
                         f"<td>{m.units} units</td><td class=\"src\">{_e(span.location if span else '')}</td></tr>")
    parts.append("</table></section>")

    # ---- trace
    parts.append("<section id=\"trace\"><h2>Trace (reference interpreter)</h2>"
                 f"<table><tr><th>line</th><th class=\"name\">s-op</th>{_tokens_header(tokens)}"
                 "<th>source</th></tr>")
    for row in tr.rows:
        cls = " class=\"out\"" if row.is_output else ""
        if row.values is None:
            cells = f"<td colspan=\"{max(1, len(tokens))}\" class=\"bad\">{_e(row.error)}</td>"
        else:
            cells = "".join(f"<td>{_e(show_value(v))}</td>" for v in row.values)
        parts.append(f"<tr{cls}><td>{_e(row.line or '')}</td><td class=\"name\">{_e(row.name)}</td>{cells}"
                     f"<td class=\"src\">{_e(row.source)}</td></tr>")
    parts.append("</table></section>")

    # ---- residual stream
    steps = inspect.decode_layers(model, tokens, names)
    parts.append("<section id=\"residual\"><h2>Residual stream, decoded after every sublayer</h2>"
                 "<p class=\"note\">Each s-op is read back out of the residual stream with the compiler's "
                 "probes from the sublayer that writes it on (highlighted where it first appears). "
                 "~ marks an s-op of which the model keeps only a function that does not tell all "
                 "its values apart; its cells show the values consistent with the stream "
                 "(a|b: one of these, ≠a: any value but a).</p>"
                 f"<table><tr><th>after</th><th class=\"name\">s-op</th>{_tokens_header(tokens)}</tr>")
    for s in steps:
        shown = list(s.values)
        if not shown:
            parts.append(f"<tr><td>{_e(s.label)}<br><span class=\"sub\">{_e(s.hook)}</span></td>"
                         f"<td class=\"muted\" colspan=\"{len(tokens) + 1}\">(nothing readable yet)</td></tr>")
            continue
        for i, nm in enumerate(shown):
            head_cell = (f"<td rowspan=\"{len(shown)}\">{_e(s.label)}<br><span class=\"sub\">{_e(s.hook)}</span>"
                         "</td>") if i == 0 else ""
            new = " new" if nm in s.new else ""
            mark = "~" if nm in s.ambiguous else ""
            if nm in s.ambiguous:
                shown_vals = [inspect.describe_candidates(c, s.domains[nm], show_value) for c in s.candidates[nm]]
            else:
                shown_vals = [show_value(v) for v in s.values[nm]]
            cells = "".join(f"<td class=\"v{new}\">{_e(v)}</td>" for v in shown_vals)
            parts.append(f"<tr>{head_cell}<td class=\"name{new}\">{_e(nm + mark)}</td>{cells}</tr>")
    parts.append("</table></section>")

    # ---- attention maps
    patterns = inspect.attention_patterns(model, tokens)
    parts.append("<section id=\"attention\"><h2>Attention maps</h2>"
                 "<p class=\"note\">Rows are queries, columns keys; position 0 is BOS, where a query "
                 "with an empty selection parks its attention.</p><div class=\"grid\">")
    if not heads:
        parts.append("<p class=\"muted\">The model has no attention heads.</p>")
    for h in heads:
        png = plots.figure_bytes(plots.attention_figure(patterns[(h.layer, h.index)], tokens, h), fmt="png", dpi=80)
        parts.append(f"<figure class=\"head\" id=\"head-{_e(h.name)}\"><img class=\"attn\" "
                     f"alt=\"attention of {_e(h.name)}\" src=\"{_data_url(png, 'image/png')}\">"
                     f"<figcaption><b>{_e(h.name)}</b> {_e(h.label)}: <code>{_e(h.select)}</code> "
                     f"({_e(h.location)})</figcaption></figure>")
    parts.append("</div></section>")
    parts.append("</body></html>\n")
    return "\n".join(parts)


def _short(text: str, limit: int = 90) -> str:
    text = " ".join(text.split())
    return text if len(text) <= limit else text[:limit - 1] + "…"
