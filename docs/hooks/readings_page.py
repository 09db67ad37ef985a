"""mkdocs hook: generates docs/readings.md from convt_tools.check.readings (issue 24: the
runtime reading table is generated from the code's table, never copied), and the API
reference of docs/api.md from ``convt_tools.__all__``.

Also runnable alone: ``python docs/hooks/readings_page.py --write`` rewrites docs/readings.md
(committed, so that it reads on GitHub too; tests/test_docs.py checks it is current).
"""

from __future__ import annotations

import inspect
from pathlib import Path

PAGE = "readings.md"

# Representative 1-D nodes: kernel 3, stride 2, input length 5 (natural length L = 11).
FORMS = [
    ("symmetric pads [1, 1]", dict(pads=(1, 1))),
    ("asymmetric pads [0, 1]", dict(pads=(0, 1))),
    ("negative end pad [0, -1]", dict(pads=(0, -1))),
    ("auto_pad SAME_UPPER", dict(auto_pad="SAME_UPPER")),
    ("auto_pad SAME_LOWER", dict(auto_pad="SAME_LOWER")),
    ("output_shape [10] (odd crop)", dict(output_shape=(10,))),
    ("output_padding 2 (>= stride)", dict(pads=(0, 0), output_padding=(2,))),
]


def _attrs(**kw):  # type: ignore[no-untyped-def]
    from convt_tools.check.attrs import ConvTAttrs
    base = dict(rank=1, auto_pad="NOTSET", pads=None, output_padding=(0,), output_shape=None,
                strides=(2,), dilations=(1,), kernel_shape=(3,), kernel=(3,), group=1)
    base.update(kw)
    return ConvTAttrs(**base)


def _cell(r) -> str:  # type: ignore[no-untyped-def]
    if r.status == "window":
        w = r.windows[0]
        return f"rows {w.begin}..{w.begin + w.length - 1} of 0..10"
    return r.status


def render() -> str:
    from convt_tools.check import readings as rd

    lines = ["# What each runtime computes", "",
             "_Generated at build time from `convt_tools.check.readings` (the table `convt check` "
             "uses for runtimes that are not installed); do not edit._", "",
             "`convt check` measures the installed runtimes and reads this table for the others. "
             "Each cell: the rows of the natural full output (length L = 11 for a 1-D node with "
             "kernel 3, stride 2 and input length 5) that the runtime returns, or `refused` "
             "(the model does not load or run), or `unknown` (nothing documented).", "",
             "| node | " + " | ".join(f"`{n}`" for n in rd.RUNTIMES) + " |",
             "|---|" + "---|" * len(rd.RUNTIMES)]
    for label, kw in FORMS:
        a = _attrs(**kw)
        cells = [_cell(rd.documented_reading(n, a, (5,))) for n in rd.RUNTIMES]
        lines.append(f"| {label} | " + " | ".join(cells) + " |")
    lines += ["", "## Sources", "", "| runtime | source |", "|---|---|"]
    lines += [f"| `{n}` | {rd.DOCUMENTED[n]} |" for n in rd.RUNTIMES]
    doc = inspect.getdoc(rd) or ""
    lines += ["", "## The rules, per runtime", "", doc.split("Sources (facts only", 1)[-1]
              .split(":", 1)[-1].strip() if "Sources (facts only" in doc else doc, ""]
    lines += ["Notation per axis: `L = (in-1)*s + K`, `op` output_padding, `pb, pe` pads, "
              "`O` the output_shape entry (`in*s` for SAME), `T = L + op - O`.", ""]
    lines += _qdq_section()
    return "\n".join(lines)


# Representative QDQ ConvTranspose nodes (issue 20): (label, group, weight scales, weight zero
# point, activation type, activation zero point, strides, dilations, opset).
QDQ_FORMS = [
    ("per-tensor W, int8 activations at zero point 0", 1, "tensor", 0, "int8", 0, 1, 1, 21),
    ("axis-1 W (per output channel), int8 activations at 0", 1, "axis1", 0, "int8", 0, 1, 1, 21),
    ("per-tensor W, uint8 activations", 1, "tensor", 0, "uint8", 128, 1, 1, 21),
    ("per-tensor W zero point 9, int8 activations at 0", 1, "tensor", 9, "int8", 0, 1, 1, 21),
    ("axis-0 W (per input channel)", 1, "axis0", 0, "int8", 0, 1, 1, 21),
    ("blocked W (axis 0, block C_in/group), group 2", 2, "blocked", 0, "int8", 0, 1, 1, 21),
    ("per-tensor W, int8 at 0, stride 2 and dilation 2", 1, "tensor", 0, "int8", 0, 2, 2, 21),
    ("per-tensor W, opset 13", 1, "tensor", 0, "int8", 0, 1, 1, 13),
]


def _qdq_node(group, w_form, w_zp, act, act_zp, s, d):  # type: ignore[no-untyped-def]
    import numpy as np

    from convt_tools.quant import ConvAttrs, QdqConvTranspose, QParams

    cin, cpo = 4 * group, 6 // (2 if group > 1 else 1)
    scale = {"tensor": np.float32(0.01), "axis1": np.full(cpo, 0.01, np.float32),
             "axis0": np.full(cin, 0.01, np.float32),
             "blocked": np.full((group, cpo, 3), 0.01, np.float32)}[w_form]
    zp = np.zeros(scale.shape, np.int8) + np.int8(w_zp)
    w = QParams("W_DQ", scale, zp, 0 if w_form in ("axis0", "blocked") else 1,
                cin // group if w_form == "blocked" else 0, "int8")
    a = QParams("x", np.float32(0.05), np.asarray(act_zp, act), 1, 0, act)
    attrs = ConvAttrs(1, (3,), (s,), (d,), (0, 0), (0,), group, "NOTSET", None)
    return QdqConvTranspose("convt", attrs, x=a, x_quantize=a, w=w,
                            w_int=np.zeros((cin, cpo, 3), np.int8), y=a, y_dequantize=a)


def _qdq_section() -> list[str]:
    from convt_tools.check.qdq_readings import QDQ_TABLE, qdq_execution
    from convt_tools.check.readings import RUNTIMES
    from convt_tools.quant import weight_granularity

    lines = ["## Quantized (QDQ) ConvTranspose", "",
             "How each runtime executes a ConvTranspose with Q/DQ around it "
             "(`convt_tools.check.qdq_readings`; `convt check --json` `execution`): `int8` (an "
             "integer kernel), `float` (DequantizeLinear -> float ConvTranspose -> "
             "QuantizeLinear), `refused`, `unknown`; `+ fault` where a right node is computed "
             "wrongly (measured). 1-D nodes, kernel 3.", "",
             "| node | " + " | ".join(f"`{n}`" for n in RUNTIMES) + " |",
             "|---|" + "---|" * len(RUNTIMES)]
    for label, group, w_form, w_zp, act, act_zp, s, d, opset in QDQ_FORMS:
        q = _qdq_node(group, w_form, w_zp, act, act_zp, s, d)
        g = weight_granularity(q.w, q.w_shape, group)
        cells = []
        for n in RUNTIMES:
            e = qdq_execution(n, q, g, opset)
            cells.append(e.mode + (" + fault" if e.fault else ""))
        lines.append(f"| {label} | " + " | ".join(cells) + " |")
    lines += ["", "| runtime | source |", "|---|---|"]
    lines += [f"| `{n}` | {rules.source} |" for n, rules in QDQ_TABLE.items()]
    return lines + [""]


def api_reference() -> str:
    """One mkdocstrings directive per name of ``convt_tools.__all__`` (lazy names included,
    which a plain ``::: convt_tools`` does not see)."""
    import convt_tools as ct

    lazy = getattr(ct, "_LAZY", {})  # name -> submodule, imported on first use
    out = []
    for name in ct.__all__:
        if name.startswith("__"):
            continue
        if name in lazy:
            path = f"convt_tools.{lazy[name]}.{name}"
        elif name in vars(ct):  # imported eagerly: griffe follows the re-export
            path = f"convt_tools.{name}"
        else:
            path = f"{getattr(ct, name).__module__}.{name}"
        out.append(f"### `{name}`\n\n::: {path}\n    options:\n"
                   f"      show_root_heading: false\n")
    return "\n".join(out)


def on_page_markdown(markdown, page, **kwargs):  # type: ignore[no-untyped-def]
    if page.file.src_uri == "api.md":
        return markdown.replace("<!-- api-reference -->", api_reference())
    return markdown


def on_pre_build(config, **kwargs) -> None:  # type: ignore[no-untyped-def]
    """Writes docs/readings.md before mkdocs reads the pages."""
    path = Path(config["docs_dir"]) / PAGE
    text = render()
    if not path.exists() or path.read_text() != text:
        path.write_text(text)


if __name__ == "__main__":
    import sys

    if "--write" in sys.argv[1:]:
        (Path(__file__).resolve().parents[1] / PAGE).write_text(render())
    else:
        sys.stdout.write(render())
