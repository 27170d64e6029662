#!/usr/bin/env python3
"""Generates the tiny ONNX test detectors in models/test/ (committed; re-run to regenerate).

Each model is a real ONNX graph that finds the single bright blob in its input (a white, person-like
rectangle on a dark background, as in tests/fixtures/walker.*) and reports it in the output layout of a
real detector family. Outputs are known exactly, so the Rust output decoders, letterboxing and NMS can
be checked against them through the real ONNX Runtime:

Every model takes a dynamic batch N (input [N, 3, 128, 128]), so batched inference is tested too.

  blob-yolov8-{fp32,int8}.onnx  [N, 4+2, 2]  anchor 0: the blob box (cx,cy,w,h in input pixels),
                                             person score 0.9*present, class-1 score 0.05;
                                             anchor 1: the same box shifted by +1 px, person 0.8
                                             (an overlapping duplicate that NMS must remove).
  blob-yolov5-fp32.onnx         [N, 2, 5+2]  same boxes, objectness 0.9/0.8, class probs (1.0, 0.0).
  blob-ssd-fp32.onnx            boxes [N,2,4] (ymin,xmin,ymax,xmax normalised 0-1),
                                classes [N,2] (float ids), scores [N,2].

"Bright" means the mean of R,G,B (input scaled /255) is above 0.6; letterbox fill 114 is below it.
The INT8 variant quantises the input and the 1x1 grey Conv weights with QuantizeLinear /
DequantizeLinear pairs (QDQ), which ONNX Runtime runs as an integer QLinearConv.
Requires: pip install onnx numpy
"""
import os
import sys

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

SIZE = 128
OUT_DIR = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "models", "test")


def const(name, arr):
    return numpy_helper.from_array(np.asarray(arr), name)


def grey_nodes(int8):
    """x [1,3,S,S] -> grey [1,1,S,S] through a 1x1 Conv (optionally QDQ-quantised)."""
    inits = [const("w_grey", np.full((1, 3, 1, 1), 1.0 / 3.0, dtype=np.float32))]
    nodes = []
    x, w = "images", "w_grey"
    if int8:
        inits += [
            const("x_scale", np.float32(1.0 / 255.0)), const("x_zp", np.uint8(0)),
            const("w_q", np.full((1, 3, 1, 1), 127, dtype=np.int8)),
            const("w_scale", np.float32(1.0 / 381.0)), const("w_zp", np.int8(0)),
        ]
        inits = [i for i in inits if i.name != "w_grey"]
        nodes += [
            helper.make_node("QuantizeLinear", ["images", "x_scale", "x_zp"], ["x_q"]),
            helper.make_node("DequantizeLinear", ["x_q", "x_scale", "x_zp"], ["x_dq"]),
            helper.make_node("DequantizeLinear", ["w_q", "w_scale", "w_zp"], ["w_dq"]),
        ]
        x, w = "x_dq", "w_dq"
    nodes.append(helper.make_node("Conv", [x, w], ["grey"]))
    return nodes, inits


def blob_nodes():
    """grey -> x1, x2, y1, y2 (float [1,1], inclusive pixel indices) and present (float [1,1])."""
    inits = [const("thr", np.float32(0.6)), const("one", np.float32(1.0))]
    nodes = [
        helper.make_node("Greater", ["grey", "thr"], ["mask_b"]),
        helper.make_node("Cast", ["mask_b"], ["mask4"], to=TensorProto.FLOAT),
        helper.make_node("Squeeze", ["mask4", "ax1"], ["mask"]),  # [N,S,S]
        helper.make_node("ReduceMax", ["mask", "ax1"], ["cols"], keepdims=0),  # [N,S]
        helper.make_node("ReduceMax", ["mask", "ax2"], ["rows"], keepdims=0),  # [N,S]
        helper.make_node("ReduceMax", ["cols", "ax1"], ["present"], keepdims=1),  # [N,1]
    ]
    inits += [const("ax1", np.array([1], dtype=np.int64)), const("ax2", np.array([2], dtype=np.int64))]
    for name, src, last in (("x1", "cols", 0), ("x2", "cols", 1), ("y1", "rows", 0), ("y2", "rows", 1)):
        nodes.append(helper.make_node("ArgMax", [src], [name + "_i"], axis=1, keepdims=1, select_last_index=last))
        nodes.append(helper.make_node("Cast", [name + "_i"], [name], to=TensorProto.FLOAT))
    return nodes, inits


def box_nodes(shift, prefix):
    """cx, cy, w, h ([1,1] each) of the blob box, shifted by `shift` pixels."""
    p = prefix
    inits = [const(p + "shift", np.float32(shift)), const(p + "half", np.float32(0.5))]
    nodes = [
        helper.make_node("Sub", ["x2", "x1"], [p + "wm1"]),
        helper.make_node("Add", [p + "wm1", "one"], [p + "w"]),
        helper.make_node("Sub", ["y2", "y1"], [p + "hm1"]),
        helper.make_node("Add", [p + "hm1", "one"], [p + "h"]),
        helper.make_node("Add", ["x1", "x2"], [p + "xs"]),
        helper.make_node("Add", [p + "xs", "one"], [p + "xs1"]),
        helper.make_node("Mul", [p + "xs1", p + "half"], [p + "cx0"]),
        helper.make_node("Add", [p + "cx0", p + "shift"], [p + "cx"]),
        helper.make_node("Add", ["y1", "y2"], [p + "ys"]),
        helper.make_node("Add", [p + "ys", "one"], [p + "ys1"]),
        helper.make_node("Mul", [p + "ys1", p + "half"], [p + "cy0"]),
        helper.make_node("Add", [p + "cy0", p + "shift"], [p + "cy"]),
    ]
    return nodes, inits


def scaled(name, value, out):
    return [helper.make_node("Mul", ["present", name], [out])], [const(name, np.float32(value))]


def build(kind, int8=False):
    nodes, inits = [], []
    for n, i in (grey_nodes(int8), blob_nodes(), box_nodes(0.0, "a_"), box_nodes(1.0, "b_")):
        nodes += n
        inits += i
    outputs = []
    # Per-item [N,1] ones and zeros (broadcast-free constants for any batch size N).
    inits += [const("minus_one", np.float32(-1.0))]
    nodes += [
        helper.make_node("Greater", ["present", "minus_one"], ["ones_b"]),
        helper.make_node("Cast", ["ones_b"], ["ones"], to=TensorProto.FLOAT),
        helper.make_node("Sub", ["ones", "ones"], ["zeros"]),
    ]
    if kind == "yolov8":
        for name, value in (("a_p", 0.9), ("a_o", 0.05), ("b_p", 0.8), ("b_o", 0.05)):
            n, i = scaled(name + "_c", value, name)
            nodes += n
            inits += i
        # per anchor: [N, 6] -> [N, 6, 1]; anchors side by side -> [N, 6, 2]
        for p in ("a_", "b_"):
            nodes.append(helper.make_node("Concat", [p + "cx", p + "cy", p + "w", p + "h", p + "p", p + "o"], [p + "col2"], axis=1))
            nodes.append(helper.make_node("Unsqueeze", [p + "col2", "ax2"], [p + "col"]))
        nodes.append(helper.make_node("Concat", ["a_col", "b_col"], ["output0"], axis=2))
        outputs.append(helper.make_tensor_value_info("output0", TensorProto.FLOAT, ["N", 6, 2]))
    elif kind == "yolov5":
        for name, value in (("a_obj", 0.9), ("b_obj", 0.8)):
            n, i = scaled(name + "_c", value, name)
            nodes += n
            inits += i
        # per anchor: [N, 7] -> [N, 1, 7]; anchors stacked -> [N, 2, 7]
        for p in ("a_", "b_"):
            nodes.append(helper.make_node("Concat", [p + "cx", p + "cy", p + "w", p + "h", p + "obj", "ones", "zeros"], [p + "row2"], axis=1))
            nodes.append(helper.make_node("Unsqueeze", [p + "row2", "ax1"], [p + "row"]))
        nodes.append(helper.make_node("Concat", ["a_row", "b_row"], ["output0"], axis=1))
        outputs.append(helper.make_tensor_value_info("output0", TensorProto.FLOAT, ["N", 2, 7]))
    elif kind == "ssd":
        inits += [const("inv", np.float32(1.0 / SIZE)), const("one_px", np.float32(1.0))]
        for p, shift in (("a_", 0.0), ("b_", 1.0)):
            for coord, src in (("ymin", "y1"), ("xmin", "x1"), ("ymax", "y2"), ("xmax", "x2")):
                end = coord.endswith("max")
                nodes.append(helper.make_node("Add", [src, p + "shift"], [p + coord + "_s"]))
                base = p + coord + "_s"
                if end:
                    nodes.append(helper.make_node("Add", [base, "one_px"], [p + coord + "_e"]))
                    base = p + coord + "_e"
                nodes.append(helper.make_node("Mul", [base, "inv"], [p + coord]))
            nodes.append(helper.make_node("Concat", [p + "ymin", p + "xmin", p + "ymax", p + "xmax"], [p + "box2"], axis=1))
            nodes.append(helper.make_node("Unsqueeze", [p + "box2", "ax1"], [p + "box"]))
        nodes.append(helper.make_node("Concat", ["a_box", "b_box"], ["boxes"], axis=1))  # [N,2,4]
        nodes.append(helper.make_node("Concat", ["zeros", "zeros"], ["classes"], axis=1))  # [N,2]
        for name, value in (("a_s", 0.9), ("b_s", 0.8)):
            n, i = scaled(name + "_c", value, name)
            nodes += n
            inits += i
        nodes.append(helper.make_node("Concat", ["a_s", "b_s"], ["scores"], axis=1))
        outputs += [
            helper.make_tensor_value_info("boxes", TensorProto.FLOAT, ["N", 2, 4]),
            helper.make_tensor_value_info("classes", TensorProto.FLOAT, ["N", 2]),
            helper.make_tensor_value_info("scores", TensorProto.FLOAT, ["N", 2]),
        ]
    inp = helper.make_tensor_value_info("images", TensorProto.FLOAT, ["N", 3, SIZE, SIZE])
    graph = helper.make_graph(nodes, f"blob_{kind}", [inp], outputs, inits)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 18)], producer_name="cascade-make-test-models")
    model.ir_version = 8
    onnx.checker.check_model(model)
    return model


def main():
    os.makedirs(OUT_DIR, exist_ok=True)
    for name, kind, int8 in (
        ("blob-yolov8-fp32", "yolov8", False),
        ("blob-yolov8-int8", "yolov8", True),
        ("blob-yolov5-fp32", "yolov5", False),
        ("blob-ssd-fp32", "ssd", False),
    ):
        path = os.path.join(OUT_DIR, name + ".onnx")
        onnx.save(build(kind, int8), path)
        print("wrote", os.path.relpath(path))


if __name__ == "__main__":
    sys.exit(main())
