#!/usr/bin/env python3
"""Static INT8 (QDQ) quantisation of a YOLOv8 / YOLO11 ONNX export, calibrated on your own footage.

    python3.11 -m venv .venv-quant
    .venv-quant/bin/pip install -r scripts/requirements-quantize.txt
    .venv-quant/bin/python scripts/quantize.py --model models/downloads/yolov8n_fp32_dequant.onnx \
        --frames ../shared/samples/one-by-one-person-detection.mp4 --size 320 --out quant-out/

Steps (design/quantisation.md explains why):
 1. frames: a video clip (decoded with ffmpeg when installed, else PyAV) or a directory of PNG/JPEG
    images; split into calibration frames and held-out evaluation frames (never the same frame);
 2. --size S (square) different from the export's: re-sizes the graph (input dims, the head's anchor
    count in the Reshape shape constants, the anchor points and the strides) and checks the FP32
    re-sized model against the original on an evaluation frame;
 3. quant_pre_process (no symbolic shape inference), then quantize_static: QDQ, activations QUInt8,
    weights QInt8 per channel, MinMax calibration on letterboxed frames (114 fill, RGB, /255, NCHW),
    with the head's post-processing (every node after the last Conv of each output branch) in float;
 4. writes <name>.onnx, <name>.toml (the project's manifest format, with sha256) and
    <name>.report.json / .md: person detections of INT8 against FP32 on the held-out frames (IoU >= 0.5
    matching: recall, precision, mean score difference) and the latency of both (ORT CPU, 1 thread).
"""
import argparse
import datetime
import hashlib
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
import tomllib

import numpy as np
import onnx
import onnxruntime as ort
from onnx import numpy_helper
from onnxruntime.quantization import (CalibrationDataReader, CalibrationMethod, QuantFormat,
                                      QuantType, quantize_static)
from onnxruntime.quantization.shape_inference import quant_pre_process
from PIL import Image

STRIDES = (8, 16, 32)
PAD = 114
IMAGE_EXT = (".png", ".jpg", ".jpeg")
COCO = ["person", "bicycle", "car", "motorcycle", "airplane", "bus", "train", "truck", "boat", "traffic light", "fire hydrant", "stop sign", "parking meter", "bench", "bird", "cat", "dog", "horse", "sheep", "cow", "elephant", "bear", "zebra", "giraffe", "backpack", "umbrella", "handbag", "tie", "suitcase", "frisbee", "skis", "snowboard", "sports ball", "kite", "baseball bat", "baseball glove", "skateboard", "surfboard", "tennis racket", "bottle", "wine glass", "cup", "fork", "knife", "spoon", "bowl", "banana", "apple", "sandwich", "orange", "broccoli", "carrot", "hot dog", "pizza", "donut", "cake", "chair", "couch", "potted plant", "bed", "dining table", "toilet", "tv", "laptop", "mouse", "remote", "keyboard", "cell phone", "microwave", "oven", "toaster", "sink", "refrigerator", "book", "clock", "vase", "scissors", "teddy bear", "hair drier", "toothbrush"]  # noqa: E501


def log(msg):
    print(f"[quantize] {msg}", file=sys.stderr, flush=True)


# ---------------------------------------------------------------------------------------- frames

def pick(n_total, n_cal, n_eval):
    """Calibration and evaluation indices, spread over the whole clip, disjoint."""
    if n_total < 2:
        raise SystemExit("need at least 2 frames (one to calibrate, one to evaluate)")
    n_cal = min(n_cal, n_total - 1)
    cal = sorted(set(np.linspace(0, n_total - 1, n_cal).round().astype(int).tolist()))
    rest = [i for i in range(n_total) if i not in set(cal)]
    n_eval = min(n_eval, len(rest))
    ev = [rest[i] for i in sorted(set(np.linspace(0, len(rest) - 1, n_eval).round().astype(int).tolist()))]
    return cal, ev


def frames_from_dir(path):
    names = sorted(f for f in os.listdir(path) if f.lower().endswith(IMAGE_EXT))
    if not names:
        raise SystemExit(f"no PNG/JPEG images in {path}")
    return [os.path.join(path, n) for n in names]


def decode_video(path, every):
    """Decodes every `every`-th frame of a clip to RGB arrays: ffmpeg if installed, else PyAV."""
    if shutil.which("ffmpeg"):
        tmp = tempfile.mkdtemp(prefix="quantize-frames-")
        subprocess.run(["ffmpeg", "-loglevel", "error", "-i", path, "-vf", f"select=not(mod(n\\,{every}))",
                        "-vsync", "vfr", os.path.join(tmp, "f%06d.png")], check=True)
        out = [load_rgb(f) for f in frames_from_dir(tmp)]
        shutil.rmtree(tmp, ignore_errors=True)
        log(f"decoded {path} with ffmpeg: {len(out)} frames (every {every})")
        return out
    try:
        import av  # noqa: PLC0415
    except ImportError:
        raise SystemExit("cannot decode a clip: install ffmpeg or PyAV (pip install av), "
                         "or pass a directory of PNG/JPEG frames")
    out = []
    with av.open(path) as c:
        for i, f in enumerate(c.decode(video=0)):
            if i % every == 0:
                out.append(f.to_ndarray(format="rgb24"))
    log(f"decoded {path} with PyAV: {len(out)} frames (every {every})")
    return out


def load_rgb(item):
    if isinstance(item, np.ndarray):
        return item
    return np.asarray(Image.open(item).convert("RGB"))


def letterbox(rgb, size):
    """Centred letterbox onto a size x size canvas filled with 114; returns NCHW float /255, scale, pad."""
    h, w = rgb.shape[:2]
    scale = min(size / w, size / h)
    nw, nh = max(1, round(w * scale)), max(1, round(h * scale))
    img = np.asarray(Image.fromarray(rgb).resize((nw, nh), Image.BILINEAR))
    canvas = np.full((size, size, 3), PAD, dtype=np.uint8)
    px, py = (size - nw) // 2, (size - nh) // 2
    canvas[py:py + nh, px:px + nw] = img
    x = canvas.astype(np.float32).transpose(2, 0, 1)[None] / 255.0
    return np.ascontiguousarray(x), scale, (px, py)


# ---------------------------------------------------------------------------------------- graph

def input_size(model):
    dims = model.graph.input[0].type.tensor_type.shape.dim
    h, w = dims[2].dim_value, dims[3].dim_value
    if not h or h != w:
        raise SystemExit(f"expected a square static input, got {h}x{w}")
    return h


def n_anchors(size):
    for s in STRIDES:
        if size % s:
            raise SystemExit(f"input size {size} must be a multiple of {max(STRIDES)}")
    return sum((size // s) ** 2 for s in STRIDES)


def anchors_and_strides(size):
    pts, strides = [], []
    for s in STRIDES:
        g = size // s
        ys, xs = np.meshgrid(np.arange(g, dtype=np.float32) + 0.5, np.arange(g, dtype=np.float32) + 0.5,
                             indexing="ij")
        pts.append(np.stack([xs.ravel(), ys.ravel()]))
        strides.append(np.full(g * g, s, dtype=np.float32))
    return np.concatenate(pts, 1)[None], np.concatenate(strides)[None]


def resize_model(model, size):
    """Re-sizes a YOLOv8/YOLO11 export to size x size: input dims, anchor count in the head's integer
    shape constants, anchor points (1,2,N) and strides (1,N). Returns a new model."""
    m = onnx.ModelProto()
    m.CopyFrom(model)
    old = input_size(m)
    n_old, n_new = n_anchors(old), n_anchors(size)
    pts_old, str_old = anchors_and_strides(old)
    pts_new, str_new = anchors_and_strides(size)
    changed = {"shape": 0, "anchors": 0, "strides": 0}

    def fix(t):
        a = numpy_helper.to_array(t)
        if a.dtype == np.int64 and a.ndim == 1 and n_old in a.tolist():
            b = np.where(a == n_old, n_new, a).astype(np.int64)
            changed["shape"] += 1
        elif a.dtype == np.float32 and a.shape == (1, 2, n_old):
            if not np.allclose(a, pts_old):
                raise SystemExit(f"{t.name}: anchor points are not the standard YOLOv8 grid")
            b = pts_new
            changed["anchors"] += 1
        elif a.dtype == np.float32 and a.shape == (1, n_old):
            if not np.allclose(a, str_old):
                raise SystemExit(f"{t.name}: strides are not the standard 8/16/32 layout")
            b = str_new
            changed["strides"] += 1
        else:
            return
        t.CopyFrom(numpy_helper.from_array(b, t.name))

    for t in m.graph.initializer:
        fix(t)
    for n in m.graph.node:
        if n.op_type == "Constant":
            for a in n.attribute:
                if a.name == "value":
                    fix(a.t)
    if changed["anchors"] < 1 or changed["strides"] < 1 or changed["shape"] < 1:
        raise SystemExit(f"head constants not found ({changed}): not a YOLOv8/YOLO11 export?")
    for d in (2, 3):
        m.graph.input[0].type.tensor_type.shape.dim[d].dim_value = size
    for o in m.graph.output:
        for d in o.type.tensor_type.shape.dim:
            if d.dim_value == n_old:
                d.dim_value = n_new
    del m.graph.value_info[:]
    onnx.checker.check_model(m)
    log(f"re-sized {old} -> {size}: {n_old} -> {n_new} anchors, changed {changed}")
    return m


def head_nodes(model):
    """Names of the head's post-processing nodes: a backward walk from the outputs that stops at the
    last Conv of each output branch, i.e. a Conv whose output is a square feature map at stride 8/16/32
    (the DFL's 1x1 Conv after the Softmax is post-processing and is excluded like the rest)."""
    size = input_size(model)
    inferred = onnx.shape_inference.infer_shapes(model)
    shapes = {}
    for vi in list(inferred.graph.value_info) + list(inferred.graph.output):
        shapes[vi.name] = [d.dim_value for d in vi.type.tensor_type.shape.dim]
    maps = {size // s for s in STRIDES}
    producer = {o: n for n in model.graph.node for o in n.output}
    exclude, stops, seen = [], [], set()
    todo = [o.name for o in model.graph.output]
    while todo:
        t = todo.pop()
        n = producer.get(t)
        if n is None or n.name in seen:
            continue
        seen.add(n.name)
        shp = shapes.get(n.output[0], [])
        if n.op_type == "Conv" and len(shp) == 4 and shp[2] == shp[3] and shp[2] in maps:
            stops.append(n.name)
            continue
        exclude.append(n.name)
        todo.extend(n.input)
    if len(stops) < len(STRIDES):
        raise SystemExit(f"found {len(stops)} branch-end Convs, expected at least {len(STRIDES)}")
    return exclude, stops


# ---------------------------------------------------------------------------------------- inference

def session(path, threads=1):
    so = ort.SessionOptions()
    so.intra_op_num_threads = threads
    so.inter_op_num_threads = 1
    so.add_session_config_entry("session.intra_op.allow_spinning", "0")
    return ort.InferenceSession(path, so, providers=["CPUExecutionProvider"])


def nms(boxes, scores, iou_thr):
    order = np.argsort(-scores)
    keep = []
    while order.size:
        i = order[0]
        keep.append(i)
        ious = iou(boxes[i], boxes[order[1:]])
        order = order[1:][ious < iou_thr]
    return keep


def iou(a, b):
    x1, y1 = np.maximum(a[0], b[:, 0]), np.maximum(a[1], b[:, 1])
    x2, y2 = np.minimum(a[2], b[:, 2]), np.minimum(a[3], b[:, 3])
    inter = np.clip(x2 - x1, 0, None) * np.clip(y2 - y1, 0, None)
    area = lambda r: (r[..., 2] - r[..., 0]) * (r[..., 3] - r[..., 1])  # noqa: E731
    return inter / np.maximum(area(a) + area(b) - inter, 1e-9)


def persons(sess, rgb, size, conf, iou_thr=0.45, person=0):
    """Person boxes [x1,y1,x2,y2] in frame pixels and their scores."""
    x, scale, (px, py) = letterbox(rgb, size)
    out = sess.run(None, {sess.get_inputs()[0].name: x})[0][0]  # [4+C, N]
    scores = out[4 + person]
    keep = scores >= conf
    if not keep.any():
        return np.zeros((0, 4), np.float32), np.zeros(0, np.float32)
    cx, cy, w, h = out[:4, keep]
    b = np.stack([cx - w / 2 - px, cy - h / 2 - py, cx + w / 2 - px, cy + h / 2 - py], 1) / scale
    s = scores[keep]
    k = nms(b, s, iou_thr)
    return b[k], s[k]


def match(ref_b, ref_s, b, s, thr=0.5):
    """Greedy IoU matching, highest reference score first; returns matched pairs of scores."""
    pairs, used = [], set()
    for i in np.argsort(-ref_s):
        if not len(b):
            break
        ious = iou(ref_b[i], b)
        for j in used:
            ious[j] = -1
        j = int(np.argmax(ious))
        if ious[j] >= thr:
            used.add(j)
            pairs.append((float(ref_s[i]), float(s[j])))
    return pairs


def latency(sess, size, runs):
    x = np.random.default_rng(0).random((1, 3, size, size), dtype=np.float32)
    name = sess.get_inputs()[0].name
    for _ in range(3):
        sess.run(None, {name: x})
    t = []
    for _ in range(runs):
        t0 = time.perf_counter()
        sess.run(None, {name: x})
        t.append((time.perf_counter() - t0) * 1000)
    return {"median_ms": round(float(np.median(t)), 2), "p90_ms": round(float(np.percentile(t, 90)), 2),
            "runs": runs}


class Reader(CalibrationDataReader):
    def __init__(self, items, size, name):
        self.items, self.size, self.name, self.i = items, size, name, 0

    def get_next(self):
        if self.i >= len(self.items):
            return None
        x = letterbox(load_rgb(self.items[self.i]), self.size)[0]
        self.i += 1
        return {self.name: x}

    def rewind(self):
        self.i = 0


def sha256(path):
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def manifest(path, name, size, digest, source, meta, precision="int8"):
    q = lambda s: json.dumps(s)  # noqa: E731  (TOML basic strings)
    what = ("static INT8 (QDQ: QLinearConv on ONNX Runtime's CPU provider)" if precision == "int8"
            else "the FP32 model the INT8 one was quantised from")
    return f"""# {name}: {what} at {size}x{size}, made by
# scripts/quantize.py from {os.path.basename(source)} with calibration frames from your own footage.
# Not downloadable: re-run the script (design/quantisation.md) to make it again.
name = {q(name)}
version = "{meta['version']}-{precision}-static-{size}"
file = {q(os.path.basename(path))}
sha256 = {q(digest)}
licence = {q(meta['licence'])}
precision = "{precision}"
labels = [{", ".join(q(x) for x in meta['labels'])}]
person_class_id = {meta['person_class_id']}

[input]
width = {size}
height = {size}
layout = "nchw"
channels = "rgb"
letterbox = "center"
pad_value = {PAD}

[output]
format = "yolov8"
"""


def source_meta(model_path, manifest_path, model):
    """Labels, person class, licence and version for the written manifests: from the FP32 model's own
    manifest when given (its sha256 must match the model), else COCO YOLOv8 defaults. The label count
    must match the model's class rows."""
    meta = {"labels": COCO, "person_class_id": 0, "licence": "AGPL-3.0 (Ultralytics weights)", "version": "8.0"}
    if manifest_path:
        with open(manifest_path, "rb") as f:
            m = tomllib.load(f)
        if m["sha256"].lower() != sha256(model_path):
            raise SystemExit(f"{model_path}: sha256 differs from the one {manifest_path} pins")
        meta = {"labels": m["labels"], "person_class_id": m["person_class_id"], "licence": m["licence"],
                "version": m["version"]}
    rows = model.graph.output[0].type.tensor_type.shape.dim[1].dim_value
    if rows and rows - 4 != len(meta["labels"]):
        raise SystemExit(f"the model has {rows - 4} classes, the labels name {len(meta['labels'])}"
                         " (pass the model's manifest with --source-manifest)")
    return meta


# ---------------------------------------------------------------------------------------- main

def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--model", required=True, help="FP32 ONNX YOLOv8/YOLO11 export (output [1,4+C,N])")
    ap.add_argument("--frames", required=True, help="a video clip or a directory of PNG/JPEG images")
    ap.add_argument("--size", type=int, help="square input size (multiple of 32); default: the export's")
    ap.add_argument("--out", default="quant-out", help="output directory (default quant-out/)")
    ap.add_argument("--name", help="model name (default yolov8n-int8-static-<size>)")
    ap.add_argument("--calib-frames", type=int, default=100)
    ap.add_argument("--eval-frames", type=int, default=60)
    ap.add_argument("--every", type=int, default=5, help="clips: keep every n-th decoded frame (default 5)")
    ap.add_argument("--conf", type=float, default=0.25, help="person score threshold for the report")
    ap.add_argument("--latency-runs", type=int, default=30)
    ap.add_argument("--threads", type=int, default=1, help="ORT intra-op threads for quantisation/eval")
    ap.add_argument("--source-manifest", help="the FP32 model's manifest (models/*.toml): labels, person class, "
                    "licence and version come from it, and its sha256 must match --model (default: COCO YOLOv8)")
    ap.add_argument("--keep-fp32", action="store_true",
                    help="also write the FP32 model at --size (<name>-fp32.onnx/.toml), to compare with")
    ap.add_argument("--quantize-head", action="store_true",
                    help="quantise the head's post-processing too (wrong: shows why it is kept in float; for tests)")
    a = ap.parse_args()

    t_start = time.time()
    os.makedirs(a.out, exist_ok=True)
    src = onnx.load(a.model)
    meta = source_meta(a.model, a.source_manifest, src)
    orig = input_size(src)
    size = a.size or orig
    name = a.name or f"yolov8n-int8-static-{size}"
    out_onnx = os.path.join(a.out, f"{name}.onnx")
    work = tempfile.mkdtemp(prefix="quantize-")

    if os.path.isdir(a.frames):
        items = frames_from_dir(a.frames)
    else:
        items = decode_video(a.frames, a.every)
    cal, ev = pick(len(items), a.calib_frames, a.eval_frames)
    log(f"{len(items)} frames: {len(cal)} for calibration, {len(ev)} held out for evaluation")

    # 1. FP32 at the target size (re-sized when needed) and its check against the original.
    fp32 = os.path.join(work, "fp32.onnx")
    resize_check = None
    if size != orig:
        onnx.save(resize_model(src, size), fp32)
        s_orig, s_new = session(a.model, a.threads), session(fp32, a.threads)
        best = None
        for i in ev:
            rgb = load_rgb(items[i])
            b0, sc0 = persons(s_orig, rgb, orig, a.conf, person=meta["person_class_id"])
            b1, sc1 = persons(s_new, rgb, size, a.conf, person=meta["person_class_id"])
            if len(b0) and len(b1):
                j = int(np.argmax(iou(b0[0], b1)))
                best = {"frame": i, "original_box": b0[0].round(1).tolist(), "original_score": round(float(sc0[0]), 3),
                        "resized_box": b1[j].round(1).tolist(), "resized_score": round(float(sc1[j]), 3),
                        "iou": round(float(iou(b0[0], b1[j:j + 1])[0]), 3)}
                break
        resize_check = best or {"note": "no held-out frame with a person found by both models"}
        log(f"re-size check (original at {orig} vs FP32 re-sized at {size}, top person): {resize_check}")
        if best and best["iou"] < 0.5:
            raise SystemExit("re-sized FP32 model disagrees with the original (IoU < 0.5)")
    else:
        shutil.copyfile(a.model, fp32)

    # 2. Pre-processing and static QDQ quantisation, head in float.
    pre = os.path.join(work, "pre.onnx")
    quant_pre_process(fp32, pre, skip_symbolic_shape=True)
    pre_model = onnx.load(pre)
    exclude, stops = head_nodes(pre_model)
    log(f"keeping {len(exclude)} head nodes in float (after the branch-end Convs {stops})")
    if a.quantize_head:
        log("--quantize-head: quantising the head's post-processing too (expect the scores to break)")
        exclude = []
    t0 = time.time()
    quantize_static(pre, out_onnx, Reader([items[i] for i in cal], size, pre_model.graph.input[0].name),
                    quant_format=QuantFormat.QDQ, activation_type=QuantType.QUInt8, weight_type=QuantType.QInt8,
                    per_channel=True, calibrate_method=CalibrationMethod.MinMax, nodes_to_exclude=exclude)
    # (CalibMaxIntermediateOutputs is not used: in ORT 1.31.1 MinMax drops the outputs it collected
    # every N frames without folding them into the ranges, and fails when the count divides by N.)
    log(f"quantised in {time.time() - t0:.1f} s -> {out_onnx}")

    # 3. Manifest.
    digest = sha256(out_onnx)
    out_toml = os.path.join(a.out, f"{name}.toml")
    with open(out_toml, "w") as f:
        f.write(manifest(out_onnx, name, size, digest, a.model, meta))
    if a.keep_fp32:
        kept = os.path.join(a.out, f"{name}-fp32.onnx")
        shutil.copyfile(fp32, kept)
        with open(os.path.join(a.out, f"{name}-fp32.toml"), "w") as f:
            f.write(manifest(kept, f"{name}-fp32", size, sha256(kept), a.model, meta, precision="fp32"))

    # 4. Accuracy and latency report.
    s_fp, s_q = session(fp32, a.threads), session(out_onnx, a.threads)
    n_ref = n_q = n_match = 0
    diffs, frames_ref, frames_q, missed = [], 0, 0, []
    per_frame = []
    for i in ev:
        rgb = load_rgb(items[i])
        rb, rs = persons(s_fp, rgb, size, a.conf, person=meta["person_class_id"])
        qb, qs = persons(s_q, rgb, size, a.conf, person=meta["person_class_id"])
        pairs = match(rb, rs, qb, qs)
        n_ref, n_q, n_match = n_ref + len(rb), n_q + len(qb), n_match + len(pairs)
        diffs += [q - r for r, q in pairs]
        if len(pairs) < len(rb):
            missed.append({"frame": i, "fp32_scores": [round(float(x), 3) for x in rs]})
        frames_ref += bool(len(rb))
        frames_q += bool(len(qb))
        per_frame.append({"frame": i, "fp32": len(rb), "int8": len(qb), "matched": len(pairs),
                          "fp32_top": round(float(rs.max()), 3) if len(rs) else None,
                          "int8_top": round(float(qs.max()), 3) if len(qs) else None})
    lat_fp, lat_q = latency(s_fp, size, a.latency_runs), latency(s_q, size, a.latency_runs)
    report = {
        "model": out_onnx, "sha256": digest, "source": a.model, "size": size, "frames": a.frames,
        "calibration_frames": len(cal), "eval_frames": len(ev), "conf": a.conf, "iou_match": 0.5,
        "fp32_persons": n_ref, "int8_persons": n_q, "matched": n_match,
        "recall_vs_fp32": round(n_match / n_ref, 4) if n_ref else None,
        "precision_vs_fp32": round(n_match / n_q, 4) if n_q else None,
        "frames_with_person_fp32": frames_ref, "frames_with_person_int8": frames_q,
        "mean_score_diff_int8_minus_fp32": round(float(np.mean(diffs)), 4) if diffs else None,
        "mean_abs_score_diff": round(float(np.mean(np.abs(diffs))), 4) if diffs else None,
        "missed": missed, "latency_fp32": lat_fp, "latency_int8": lat_q, "threads": a.threads,
        "resize_check": resize_check, "excluded_head_nodes": len(exclude),
        "onnxruntime": ort.__version__, "onnx": onnx.__version__,
        "command": " ".join(sys.argv), "made": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
        "per_frame": per_frame,
    }
    base = os.path.join(a.out, f"{name}.report")
    with open(base + ".json", "w") as f:
        json.dump(report, f, indent=1)
    with open(base + ".md", "w") as f:
        f.write(f"# {name}: INT8 against FP32 on {len(ev)} held-out frames\n\n"
                f"Command: `{report['command']}`\n\n"
                f"| | FP32 | INT8 |\n|---|---|---|\n"
                f"| persons (score >= {a.conf}) | {n_ref} | {n_q} |\n"
                f"| frames with a person | {frames_ref} | {frames_q} |\n"
                f"| latency median / p90 ms ({a.threads} thread) | {lat_fp['median_ms']} / {lat_fp['p90_ms']} |"
                f" {lat_q['median_ms']} / {lat_q['p90_ms']} |\n\n"
                f"Recall vs FP32 {report['recall_vs_fp32']}, precision vs FP32 {report['precision_vs_fp32']} "
                f"(IoU >= 0.5), mean score difference (INT8 - FP32) {report['mean_score_diff_int8_minus_fp32']}.\n"
                f"FP32 persons missed by INT8: {missed or 'none'}.\n"
                f"Calibration frames: {len(cal)}; sha256 {digest}.\n")
    summary = {k: report[k] for k in ("size", "recall_vs_fp32", "precision_vs_fp32", "fp32_persons",
                                      "int8_persons", "mean_score_diff_int8_minus_fp32", "latency_fp32",
                                      "latency_int8")}
    print(json.dumps(summary))
    log(f"wrote {out_onnx}, {out_toml}, {base}.json/.md in {time.time() - t_start:.0f} s")
    shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
