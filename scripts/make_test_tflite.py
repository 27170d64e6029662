#!/usr/bin/env python3
"""Writes models/test/tiny-yolov8-int8.tflite: a tiny full-integer TFLite model with known outputs,
for the LiteRT backend's tests (infer/tests/litert.rs). Made once and committed; run it again only
to change the model (then update the sha256 in models/tiny-yolov8-int8.toml).

    python3.11 -m venv .venv-tflite && .venv-tflite/bin/pip install -r scripts/requirements-tflite.txt
    .venv-tflite/bin/python scripts/make_test_tflite.py

The model has the layout of the real YOLOv8 full_integer_quant TFLite exports
(../shared/models/README.md): input int8 [1, 32, 32, 3] NHWC (RGB / 255, scale 1/255, zero point
-128), output int8 [1, 5, 2] = rows cx, cy, w, h (0-1 of the input), one class score; two anchors:
  anchor 0: box (0.5, 0.5, 0.5, 0.75), score = mean red of the image (0-1);
  anchor 1: box (0.25, 0.25, 0.1, 0.1), score = 1 - mean red.
The output quantisation is what the converter calibrates (scale about 1/255), so every output is
known to within one step.
"""
import hashlib
import pathlib

import numpy as np
import tensorflow as tf

OUT = pathlib.Path(__file__).resolve().parent.parent / "models/test/tiny-yolov8-int8.tflite"
SIDE = 32


@tf.function(input_signature=[tf.TensorSpec([1, SIDE, SIDE, 3], tf.float32, name="images")])
def model(x):
    red = tf.reduce_mean(x[:, :, :, 0:1], axis=[1, 2, 3])  # [1]
    red = tf.reshape(red, [1, 1, 1])
    boxes = tf.constant([[[0.5, 0.25], [0.5, 0.25], [0.5, 0.1], [0.75, 0.1]]], tf.float32)
    scores = tf.concat([red, 1.0 - red], axis=2)  # [1, 1, 2]
    return tf.concat([boxes, scores], axis=1)  # [1, 5, 2]


def representative():
    # Uniform images of every brightness, and noise: fixed, so the model is reproducible.
    rng = np.random.default_rng(0)
    for v in range(0, 256, 15):
        yield [np.full((1, SIDE, SIDE, 3), v / 255.0, np.float32)]
    for _ in range(8):
        yield [rng.integers(0, 256, (1, SIDE, SIDE, 3)).astype(np.float32) / 255.0]


def main():
    conv = tf.lite.TFLiteConverter.from_concrete_functions([model.get_concrete_function()], model)
    conv.optimizations = [tf.lite.Optimize.DEFAULT]
    conv.representative_dataset = representative
    conv.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS_INT8]
    conv.inference_input_type = tf.int8
    conv.inference_output_type = tf.int8
    data = conv.convert()
    OUT.write_bytes(data)
    interp = tf.lite.Interpreter(model_content=data)
    inp, out = interp.get_input_details()[0], interp.get_output_details()[0]
    print(f"wrote {OUT} ({len(data)} bytes), sha256 {hashlib.sha256(data).hexdigest()}")
    print(f"input {inp['shape']} {inp['dtype'].__name__} quant {inp['quantization']}")
    print(f"output {out['shape']} {out['dtype'].__name__} quant {out['quantization']}")


if __name__ == "__main__":
    main()
