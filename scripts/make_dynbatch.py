#!/usr/bin/env python3
"""Makes a dynamic-batch copy of a fixed-batch YOLOv8/YOLO11 ONNX export, and checks it.

Usage: .venv-quant/bin/python scripts/make_dynbatch.py IN.onnx OUT.onnx [--check-batch 4]

An export at batch 1 hard-codes the batch in its head: each Reshape of an activation gets a
constant shape such as [1, 64, -1]. Here every such shape's leading 1 becomes 0 (ONNX: "copy this
dimension from the input"), the graph's input and outputs get a symbolic batch `N`, and the
intermediate shapes are dropped so that they are inferred again. Reshapes of constants (weights,
per-channel scales: [1, -1, 1, 1]) are left alone.

The result is checked with ONNX Runtime before it is written: at batch 1 its outputs equal the
original's, and a batch of different images gives each image's batch-1 outputs (max abs
difference printed; it fails above 1e-3). Prints the output file's sha256 for its manifest.
"""

import argparse
import hashlib
import sys

import numpy as np
import onnx
import onnxruntime as ort
from onnx import numpy_helper


def constant_tensors(graph):
    """Names of the tensors computed from initializers and Constant nodes only."""
    const = {i.name for i in graph.initializer}
    for node in graph.node:  # nodes are topologically sorted in a valid model
        if node.op_type == "Constant" or (node.input and all(i in const or i == "" for i in node.input)):
            const.update(node.output)
    return const


def shape_constant(graph, name):
    """The initializer or Constant node holding a Reshape's shape, if constant."""
    for init in graph.initializer:
        if init.name == name:
            return init
    for node in graph.node:
        if node.op_type == "Constant" and node.output[0] == name:
            return node.attribute[0].t
    return None


def make_dynamic(model):
    graph = model.graph
    const = constant_tensors(graph)
    changed = 0
    for node in graph.node:
        if node.op_type != "Reshape" or node.input[0] in const:
            continue
        holder = shape_constant(graph, node.input[1])
        if holder is None:
            continue  # computed at run time from the input's shape: already batch-agnostic
        shape = numpy_helper.to_array(holder).copy()
        if shape.size and shape[0] == 1:
            shape[0] = 0
            holder.CopyFrom(numpy_helper.from_array(shape, holder.name))
            changed += 1
    for value in list(graph.input) + list(graph.output):
        dims = value.type.tensor_type.shape.dim
        if dims:
            dims[0].ClearField("dim_value")
            dims[0].dim_param = "N"
    del graph.value_info[:]
    return changed


def session(model_bytes):
    opts = ort.SessionOptions()
    opts.intra_op_num_threads = 2
    return ort.InferenceSession(model_bytes, opts, providers=["CPUExecutionProvider"])


def check(original, dynamic, batch):
    fixed, dyn = session(original.SerializeToString()), session(dynamic.SerializeToString())
    inp = fixed.get_inputs()[0]
    _, c, h, w = inp.shape
    rng = np.random.default_rng(7)
    images = rng.random((batch, c, h, w), dtype=np.float32)
    worst = 0.0
    singles = [fixed.run(None, {inp.name: images[i : i + 1]}) for i in range(batch)]
    for i in range(batch):
        one = dyn.run(None, {inp.name: images[i : i + 1]})
        worst = max(worst, *(float(np.abs(a - b).max()) for a, b in zip(one, singles[i])))
    batched = dyn.run(None, {inp.name: images})
    for i in range(batch):
        worst = max(worst, *(float(np.abs(a[i : i + 1] - b).max()) for a, b in zip(batched, singles[i])))
    return worst


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("input")
    ap.add_argument("output")
    ap.add_argument("--check-batch", type=int, default=4)
    args = ap.parse_args()
    original = onnx.load(args.input)
    dynamic = onnx.load(args.input)
    changed = make_dynamic(dynamic)
    if changed == 0:
        sys.exit(f"{args.input}: no Reshape with a hard-coded batch of 1 found")
    onnx.checker.check_model(dynamic)
    worst = check(original, dynamic, args.check_batch)
    print(f"{changed} reshapes made batch-agnostic; batch {args.check_batch} vs batch 1: max abs difference {worst:.2e}")
    if worst > 1e-3:
        sys.exit("outputs differ: not written")
    onnx.save(dynamic, args.output)
    digest = hashlib.sha256(open(args.output, "rb").read()).hexdigest()
    print(f"wrote {args.output}\nsha256 = \"{digest}\"")


if __name__ == "__main__":
    main()
