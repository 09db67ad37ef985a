"""Builders for small ONNX models with ConvTranspose nodes in each risky form.

The forms mirror what converters emit: tf2onnx 1.17 writes negative pads for
Keras layers with kernel < stride or ``valid`` with output_padding, and
``output_shape`` (odd totals included) for ``same``; keras2onnx wrote
``auto_pad`` SAME_UPPER/SAME_LOWER; some hand-edited and old exports carry
``output_padding >= stride`` or pads together with auto_pad.
"""

from __future__ import annotations

from typing import Any, Sequence

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

OPSET = 17


def convt_model(attrs: dict[str, Any], *, x_shape: Sequence[Any] = (1, 2, 4, 5),
                k: Sequence[int] = (3, 3), c_out: int = 3, group: int = 1, bias: bool = True,
                seed: int = 0, dtype: Any = np.float32, opset: int = OPSET,
                name: str = "convt", y_shape: Sequence[Any] | None = None) -> onnx.ModelProto:
    """``x -> ConvTranspose(attrs) -> y`` with seeded W (and B) initializers."""
    rng = np.random.default_rng(seed)
    c_in = x_shape[1]
    w = rng.standard_normal((c_in, c_out // group, *k)).astype(dtype)
    inits = [numpy_helper.from_array(w, "W")]
    inputs = ["x", "W"]
    if bias:
        inits.append(numpy_helper.from_array(rng.standard_normal(c_out).astype(dtype), "B"))
        inputs.append("B")
    if group != 1:
        attrs = {**attrs, "group": group}
    node = helper.make_node("ConvTranspose", inputs, ["y"], name=name, **attrs)
    elem = helper.np_dtype_to_tensor_dtype(np.dtype(dtype))
    y_dims = list(y_shape) if y_shape is not None else [x_shape[0], c_out, "h_out", "w_out"]
    graph = helper.make_graph([node], "g", [helper.make_tensor_value_info("x", elem, list(x_shape))],
                              [helper.make_tensor_value_info("y", elem, y_dims)], inits)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", opset)])
    model.ir_version = 8
    return model


# name -> (attrs, extra kwargs); every one is a form `convt check` must flag.
RISKY: dict[str, tuple[dict[str, Any], dict[str, Any]]] = {
    # tf2onnx: Keras valid, kernel 1 < stride 2 -> one zero row appended at the end.
    "neg_pads_k_lt_s": ({"strides": [2, 2], "pads": [0, 0, -1, -1]}, {"k": (1, 1)}),
    # tf2onnx: Keras valid with output_padding 1.
    "neg_pads_valid_op": ({"strides": [2, 2], "pads": [0, 0, -1, -1]}, {}),
    # a negative begin pad: zero rows before the data (a shift).
    "neg_pads_begin": ({"strides": [2, 2], "pads": [-1, 0, 1, 0]}, {}),
    # tf2onnx: Keras same k3 s2 -> output_shape with an odd total.
    "output_shape_odd": ({"strides": [2, 2], "output_shape": [8, 10]}, {}),
    "output_shape_odd_upper": ({"strides": [2, 2], "output_shape": [8, 10],
                                "auto_pad": "SAME_UPPER"}, {}),
    # keras2onnx: Keras same -> auto_pad.
    "same_upper": ({"strides": [2, 2], "auto_pad": "SAME_UPPER"}, {}),
    "same_lower": ({"strides": [2, 2], "auto_pad": "SAME_LOWER"}, {}),
    "same_upper_k_lt_s": ({"strides": [2, 2], "auto_pad": "SAME_UPPER"}, {"k": (1, 1)}),
    "same_lower_k_lt_s": ({"strides": [3, 3], "auto_pad": "SAME_LOWER"}, {"k": (1, 1)}),
    "same_upper_op": ({"strides": [2, 2], "auto_pad": "SAME_UPPER",
                       "output_padding": [1, 1]}, {}),
    "op_ge_stride": ({"strides": [2, 2], "output_padding": [2, 2]}, {}),
    "pads_and_auto_pad": ({"strides": [2, 2], "auto_pad": "SAME_UPPER",
                           "pads": [1, 1, 0, 0]}, {}),
}

# The rule each risky form must trigger (at least).
RISKY_CODES: dict[str, str] = {
    "neg_pads_k_lt_s": "CT001", "neg_pads_valid_op": "CT001", "neg_pads_begin": "CT001",
    "output_shape_odd": "CT013", "output_shape_odd_upper": "CT013",
    "same_upper": "CT010", "same_lower": "CT010", "same_upper_k_lt_s": "CT011",
    "same_lower_k_lt_s": "CT011", "same_upper_op": "CT012", "op_ge_stride": "CT002",
    "pads_and_auto_pad": "CT005",
}


def risky(name: str, **overrides: Any) -> onnx.ModelProto:
    """The model for ``RISKY[name]``."""
    attrs, kwargs = RISKY[name]
    return convt_model(dict(attrs), **{**kwargs, **overrides})


def clean_model(**overrides: Any) -> onnx.ModelProto:
    """A portable node: explicit symmetric pads, stride 2, kernel 4 (DCGAN style)."""
    return convt_model({"strides": [2, 2], "pads": [1, 1, 1, 1]}, **{"k": (4, 4), **overrides})


def if_model(inner_attrs: dict[str, Any]) -> onnx.ModelProto:
    """``y = If(cond) then ConvTranspose(x; inner_attrs) else ConvTranspose(x; pads 1)``.

    The subgraphs use the outer initializer ``W`` and input ``x`` (outer scope).
    """
    rng = np.random.default_rng(1)
    w = numpy_helper.from_array(rng.standard_normal((2, 3, 3, 3)).astype(np.float32), "W")

    def branch(attrs: dict[str, Any], tag: str) -> onnx.GraphProto:
        node = helper.make_node("ConvTranspose", ["x", "W"], [f"y_{tag}"], name=f"ct_{tag}",
                                **attrs)
        return helper.make_graph([node], tag, [], [helper.make_tensor_value_info(
            f"y_{tag}", TensorProto.FLOAT, [1, 3, None, None])])

    node = helper.make_node("If", ["cond"], ["y"], name="if0",
                            then_branch=branch(inner_attrs, "then"),
                            else_branch=branch({"strides": [2, 2], "pads": [1, 1, 1, 1]}, "else"))
    graph = helper.make_graph(
        [node], "g",
        [helper.make_tensor_value_info("cond", TensorProto.BOOL, []),
         helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 2, 4, 5])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 3, None, None])], [w])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", OPSET)])
    model.ir_version = 8
    return model


def function_model(attrs: dict[str, Any], *, w_inside: bool = False, k: Sequence[int] = (3, 3),
                   ref_attrs: dict[str, str] | None = None,
                   call_attrs: dict[str, Any] | None = None) -> onnx.ModelProto:
    """``y = local.MyFn(x, W)`` whose body is ``fy = ConvTranspose(fx, fw; attrs)``.

    ``w_inside``: W is a Constant node in the function body (the function then
    takes only ``fx``) instead of the main graph's initializer passed in.
    ``ref_attrs`` (``{attribute: caller's name}``) binds attributes at the call
    site with ``ref_attr_name``; ``call_attrs`` are the call site's values.
    """
    rng = np.random.default_rng(4)
    w = rng.standard_normal((2, 3, *k)).astype(np.float32)
    node = helper.make_node("ConvTranspose", ["fx", "fw"], ["fy"], name="inner", **attrs)
    for name, ref in (ref_attrs or {}).items():
        a = onnx.AttributeProto(name=name, ref_attr_name=ref, type=onnx.AttributeProto.INTS)
        node.attribute.append(a)
    body = [node]
    fn_inputs = ["fx", "fw"]
    inits = []
    call_inputs = ["x", "W"]
    if w_inside:
        body.insert(0, helper.make_node("Constant", [], ["fw"],
                                        value=numpy_helper.from_array(w, "fw")))
        fn_inputs, call_inputs = ["fx"], ["x"]
    else:
        inits.append(numpy_helper.from_array(w, "W"))
    fn = helper.make_function("local", "MyFn", fn_inputs, ["fy"], body,
                              [helper.make_opsetid("", OPSET)],
                              attributes=sorted((ref_attrs or {}).values()))
    call = helper.make_node("MyFn", call_inputs, ["y"], domain="local", name="call",
                            **(call_attrs or {}))
    graph = helper.make_graph(
        [call], "g", [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 2, 4, 5])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 3, None, None])], inits)
    model = helper.make_model(graph, functions=[fn], opset_imports=[
        helper.make_opsetid("", OPSET), helper.make_opsetid("local", 1)])
    model.ir_version = 8
    return model


def unknown_op_model() -> onnx.ModelProto:
    """``x (1, 2) -> NoSuchOp (domain convt.test) -> y``: an op no runtime knows."""
    node = helper.make_node("NoSuchOp", ["x"], ["y"], domain="convt.test")
    graph = helper.make_graph([node], "g", [helper.make_tensor_value_info("x", 1, [1, 2])],
                              [helper.make_tensor_value_info("y", 1, [1, 2])])
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17),
                                                   helper.make_opsetid("convt.test", 1)])


def save(model: onnx.ModelProto, path: Any) -> str:
    """Write ``model`` to ``path`` (str or Path) and return it as a string."""
    onnx.save(model, str(path))
    return str(path)
