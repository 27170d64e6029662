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

  tiny-yolov8-fp32.onnx         [1, 4+2, 336]  a YOLOv8-shaped FP32 detector (input [1,3,128,128] only):
                                strided convs to three levels (strides 8/16/32), per level the
                                /model.22/cv2.i box and cv3.i class conv branches, and the export's
                                head post-processing (Reshapes with the anchor count, DFL, anchor
                                points and strides, Sigmoid, the final Concat of pixel boxes and
                                probabilities). Scores the blob's person class about 0.9 at the
                                stride-8 anchors inside it, below 0.01 elsewhere. The input for
                                scripts/quantize.py's test (tests/tests/quantize.rs), which re-sizes
                                and quantises it like a real export (build_tiny_yolov8 says how).

"Bright" means the mean of R,G,B (input scaled /255) is above 0.6; letterbox fill 114 is below it.
The INT8 variant quantises the input and the 1x1 grey Conv weights with QuantizeLinear /
DequantizeLinear pairs (QDQ), which ONNX Runtime runs as an integer QLinearConv.
Requires: pip install onnx numpy
"""
import hashlib
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


# ------------------------------------------------------------------------------- tiny YOLOv8

TINY_SIZE = 128  # square input; scripts/quantize.py re-sizes it (any multiple of 32)
TINY_STRIDES = (8, 16, 32)
TINY_BINS = 8  # DFL bins per box side (YOLOv8 has 16; 8 keeps the quantised bin logits fine)
TINY_REACH = 64  # pixels each side of an anchor that the distance convs see (8 cells at stride 8)
TINY_ALPHA = 1.0  # DFL bin logits -ALPHA * (k - d)^2: a softmax whose expectation is the distance d


def tiny_anchors(size):
    pts, strides = [], []
    for s in TINY_STRIDES:
        g = size // s
        ys, xs = np.meshgrid(np.arange(g, dtype=np.float32) + 0.5, np.arange(g, dtype=np.float32) + 0.5,
                             indexing="ij")
        pts.append(np.stack([xs.ravel(), ys.ravel()]))
        strides.append(np.full(g * g, s, dtype=np.float32))
    return np.concatenate(pts, 1)[None], np.concatenate(strides)[None]


def build_tiny_yolov8(size=TINY_SIZE):
    """A YOLOv8-shaped FP32 detector of the bright blob, with the graph layout of an Ultralytics export.

    Backbone (convs, quantised by scripts/quantize.py):
      /model.0  1x1 Conv + Clip: mask = clip(10 * (green - 0.6), 0, 1) (the blob 1, the room and the
                letterbox fill 0);
      /model.1  stride-8 Conv, kernel 8 x 2*REACH: on the anchor's row, the mask pixels left and right
                of the anchor, in cells (inside a blob: the distances to its left and right edges);
      /model.2  the same vertically (top, bottom); /model.3 the 8x8 mean of the mask (coverage,
                over a checkerboard of its pixels);
      /model.4  Concat -> P3 [1,5,S/8,S/8] (l, t, r, b, coverage);
      /model.5, /model.6  2x2 mean pooling convs -> P4 (stride 16), P5 (stride 32): distances halve
                in cells and stay exact at the coarser anchors.
    Head /model.22 (YOLOv8 names): per level i a box branch cv2.i (1x1 Conv + ReLU, then a 1x1 Conv
    to 4 x BINS DFL logits -ALPHA*(k-d)^2, expanded as a linear function of d) and a class branch
    cv3.i (1x1 Conv + ReLU, then a 1x1 Conv to 2 class logits: person = 10 * coverage - 7.8 at
    stride 8, far below 0 at 16 and 32; "other" about -6); then the export's post-processing: per
    level Reshape [1,4*BINS,-1] / [1,2,-1], two Concats, DFL (Reshape [1,4,BINS,N], Transpose,
    Softmax, 1x1 Conv with weights 0..BINS-1, Reshape [1,4,N]), Slice lt/rb, anchor points -/+ ,
    centre and size, times the strides, Sigmoid on the classes, final Concat -> output0 [1,6,N].
    An anchor inside the blob scores person about 0.9 (a cell wholly covered) and gives its box
    exactly; anchors elsewhere score below 0.01."""
    g3 = size // 8
    n = sum((size // s) ** 2 for s in TINY_STRIDES)
    r, reach, c = TINY_BINS, TINY_REACH, 2
    nodes, inits = [], []

    def init(name, arr, dtype=np.float32):
        inits.append(const(name, np.asarray(arr, dtype=dtype)))
        return name

    def conv(name, x, w, b, **attrs):
        out = f"{name}_output_0"
        nodes.append(helper.make_node("Conv", [x, init(name + ".weight", w), init(name + ".bias", b)], [out],
                                      name=name, **attrs))
        return out

    def relu(prefix, x):
        nodes.append(helper.make_node("Relu", [x], [prefix + "/Relu_output_0"], name=prefix + "/Relu"))
        return prefix + "/Relu_output_0"

    def op(kind, name, inputs, **attrs):
        out = f"{name}_output_0"
        nodes.append(helper.make_node(kind, inputs, [out], name=name, **attrs))
        return out

    # Backbone.
    # Weights are laid out so that no two neighbours along a kernel row are both non-zero: x86 CPUs
    # without VNNI run ONNX Runtime's u8 x s8 QLinearConv with vpmaddubsw, which adds neighbouring
    # products into int16 with saturation (255 * 127 * 2 > 32767), so a row of equal weights over a
    # bright area would come out too small once quantised. Hence green alone for brightness (the
    # blob is white, the room grey) and a checkerboard in the kernels that count mask pixels.
    k = 10.0
    m0 = conv("/model.0/conv/Conv", "images", np.array([0.0, k, 0.0]).reshape(1, 3, 1, 1), [-k * 0.6])
    mask = op("Clip", "/model.0/act/Clip", [m0, init("/model.0/act/min", np.float32(0)),
                                            init("/model.0/act/max", np.float32(1))])
    half = reach  # kernel 2*reach wide; output j sees pixels 8j+4-reach .. 8j+3+reach
    wh = np.zeros((2, 1, 8, 2 * half), np.float32)
    # The two pixel rows around the anchor, one for even and one for odd columns, in cells.
    wh[0, 0, 3, 0:half:2], wh[0, 0, 4, 1:half:2] = 1 / 8, 1 / 8  # left
    wh[1, 0, 3, half::2], wh[1, 0, 4, half + 1::2] = 1 / 8, 1 / 8  # right
    lr = conv("/model.1/conv/Conv", mask, wh, [0, 0], kernel_shape=[8, 2 * half], strides=[8, 8],
              pads=[0, half - 4, 0, half - 4])
    wv = np.transpose(wh, (0, 1, 3, 2)).copy()
    tb = conv("/model.2/conv/Conv", mask, wv, [0, 0], kernel_shape=[2 * half, 8], strides=[8, 8],
              pads=[half - 4, 0, half - 4, 0])
    wc = (np.indices((8, 8)).sum(0) % 2 == 0).astype(np.float32).reshape(1, 1, 8, 8) / 32
    cov = conv("/model.3/conv/Conv", mask, wc, [0], kernel_shape=[8, 8], strides=[8, 8])
    p3 = op("Concat", "/model.4/Concat", [lr, tb, cov], axis=1)  # P3 channels: l, r, t, b (cells), coverage
    pool = np.full((5, 1, 2, 2), 0.25, np.float32)
    p4 = conv("/model.5/conv/Conv", p3, pool, np.zeros(5), kernel_shape=[2, 2], strides=[2, 2], group=5)
    p5 = conv("/model.6/conv/Conv", p4, pool, np.zeros(5), kernel_shape=[2, 2], strides=[2, 2], group=5)

    # Head branches. Distances in P(i) are in stride-8 cells: 1/2^i of them in the level's cells.
    kk = np.arange(r, dtype=np.float32)
    boxes, classes = [], []
    for i, feat in enumerate((p3, p4, p5)):
        b0 = f"/model.22/cv2.{i}/cv2.{i}.0"
        w = np.zeros((4, 5, 1, 1), np.float32)
        for side, ch in enumerate((0, 2, 1, 3)):  # l, t, r, b from P's l, r, t, b
            w[side, ch] = 1.0 / 2 ** i
        h = relu(b0 + "/act", conv(b0 + "/conv/Conv", feat, w, np.zeros(4)))
        wd = np.zeros((4 * r, 4, 1, 1), np.float32)
        bd = np.zeros(4 * r, np.float32)
        for side in range(4):
            wd[side * r:(side + 1) * r, side, 0, 0] = 2 * TINY_ALPHA * kk
            bd[side * r:(side + 1) * r] = -TINY_ALPHA * kk ** 2
        boxes.append(conv(f"/model.22/cv2.{i}/cv2.{i}.1/Conv", h, wd, bd))
        c0 = f"/model.22/cv3.{i}/cv3.{i}.0"
        w = np.zeros((1, 5, 1, 1), np.float32)
        w[0, 4] = 1.0
        h = relu(c0 + "/act", conv(c0 + "/conv/Conv", feat, w, [0.0]))
        bias = -7.8 if i == 0 else -14.0
        classes.append(conv(f"/model.22/cv3.{i}/cv3.{i}.1/Conv", h, np.array([10.0, -2.0]).reshape(2, 1, 1, 1),
                            [bias, -6.0]))

    # The export's post-processing.
    sb = init("/model.22/Constant_output_0", [1, 4 * r, -1], np.int64)
    sc = init("/model.22/Constant_3_output_0", [1, c, -1], np.int64)
    rb = [op("Reshape", f"/model.22/Reshape{'' if i == 0 else '_' + str(i)}", [x, sb]) for i, x in enumerate(boxes)]
    rc = [op("Reshape", f"/model.22/Reshape_{i + 3}", [x, sc]) for i, x in enumerate(classes)]
    box = op("Concat", "/model.22/Concat", rb, axis=-1)
    cls = op("Concat", "/model.22/Concat_1", rc, axis=-1)
    d = op("Reshape", "/model.22/dfl/Reshape", [box, init("/model.22/dfl/Constant_output_0", [1, 4, r, n], np.int64)])
    d = op("Transpose", "/model.22/dfl/Transpose", [d], perm=[0, 2, 1, 3])
    d = op("Softmax", "/model.22/dfl/Softmax", [d], axis=1)
    d = op("Conv", "/model.22/dfl/conv/Conv", [d, init("model.22.dfl.conv.weight", kk.reshape(1, r, 1, 1))])
    d = op("Reshape", "/model.22/dfl/Reshape_1", [d, init("/model.22/dfl/Constant_1_output_0", [1, 4, n], np.int64)])
    one = init("/model.22/Constant_6_output_0", [1], np.int64)
    lt = op("Slice", "/model.22/Slice", [d, init("/model.22/Constant_7_output_0", [0], np.int64),
                                         init("/model.22/Mul_output_0", [2], np.int64), one])
    rbx = op("Slice", "/model.22/Slice_1", [d, "/model.22/Mul_output_0",
                                            init("/model.22/Mul_1_output_0", [4], np.int64), one])
    pts, strides = tiny_anchors(size)
    x1y1 = op("Sub", "/model.22/Sub", [init("/model.22/Constant_12_output_0", pts), lt])
    x2y2 = op("Add", "/model.22/Add_1", [init("/model.22/Constant_13_output_0", pts), rbx])
    csum = op("Add", "/model.22/Add_2", [x1y1, x2y2])
    wh_ = op("Sub", "/model.22/Sub_1", [x2y2, x1y1])
    cxy = op("Div", "/model.22/Div_1", [csum, init("/model.22/Constant_14_output_0", np.float32(2))])
    dbox = op("Concat", "/model.22/Concat_2", [cxy, wh_], axis=1)
    dbox = op("Mul", "/model.22/Mul_2", [dbox, init("/model.22/Constant_15_output_0", strides)])
    prob = op("Sigmoid", "/model.22/Sigmoid", [cls])
    nodes.append(helper.make_node("Concat", [dbox, prob], ["output0"], name="/model.22/Concat_3", axis=1))

    inp = helper.make_tensor_value_info("images", TensorProto.FLOAT, [1, 3, size, size])
    out = helper.make_tensor_value_info("output0", TensorProto.FLOAT, [1, 4 + c, n])
    graph = helper.make_graph(nodes, "tiny_yolov8", [inp], [out], inits)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)], producer_name="cascade-make-test-models")
    model.ir_version = 8
    assert g3 * 8 == size and size % 32 == 0
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
    path = os.path.join(OUT_DIR, "tiny-yolov8-fp32.onnx")
    onnx.save(build_tiny_yolov8(), path)
    with open(path, "rb") as f:
        digest = hashlib.sha256(f.read()).hexdigest()
    print("wrote", os.path.relpath(path), "sha256", digest, "(models/tiny-yolov8-fp32.toml pins it)")


if __name__ == "__main__":
    sys.exit(main())
