#!/usr/bin/env python3
"""The anchor for the motion benchmark: Frigate 0.18's motion detector (ImprovedMotionDetector,
frigate/motion/improved_motion.py), re-implemented with OpenCV and NumPy at Frigate's defaults.

    python3 -m venv .venv-bench && .venv-bench/bin/pip install -r scripts/requirements-bench.txt

`cargo bench -p edge-agent --bench edge` runs it (with .venv-bench/bin/python when present, else
python3) on the same decoded frames as the project's detector, alternating with it:

    frigate_motion.py FRAMES WIDTH HEIGHT COUNT

FRAMES holds COUNT luma planes of WIDTH x HEIGHT bytes, back to back. The script answers "ready"
and the OpenCV and NumPy versions, then for each line "run" on stdin runs the detector over all
frames in order (its state carries over from run to run, as a camera's would) and answers
"<ms per frame> <frames with motion>".

Per frame, as Frigate does it (defaults: frame_height 100, improve_contrast, threshold 30,
contour_area 10, lightning_threshold 0.8, frame_alpha 0.01):
 1. resize the luma plane to 100 px high, nearest neighbour;
 2. contrast: 4th and 96th percentiles, averaged over the last 50 frames, stretch to 0-255;
 3. masked pixels to 0 (no mask here: an empty index, as Frigate has without masks);
 4. 3x3 Gaussian blur, sigma 1, reflected borders (Frigate uses scipy's gaussian_filter with
    radius 1; OpenCV's GaussianBlur computes the same kernel and is not slower);
 5. absdiff against the running average (converted to u8), threshold, one 3x3 dilation, external
    contours; contours larger than contour_area are motion boxes;
 6. calibration: on while over 5 % of the frame moves or more than 4 boxes, and turned on when the
    contours cover over lightning_threshold of the frame;
 7. accumulateWeighted into the average (alpha 0.2 while calibrating, else frame_alpha), but under
    motion only once it has lasted 10 frames.
"""
import sys
import time

import cv2
import numpy as np

FRAME_HEIGHT = 100
THRESHOLD = 30
CONTOUR_AREA = 10
LIGHTNING_THRESHOLD = 0.8
FRAME_ALPHA = 0.01
CONTRAST_HISTORY = 50


class FrigateMotion:
    """Frigate's ImprovedMotionDetector without PTZ and config updates (neither applies here)."""

    def __init__(self, height, width):
        self.resize_factor = height / FRAME_HEIGHT
        self.size = (FRAME_HEIGHT, FRAME_HEIGHT * width // height)
        self.avg_frame = np.zeros(self.size, np.float32)
        self.motion_frame_count = 0
        mask = np.full(self.size, 255, np.uint8)
        self.mask = np.where(mask == [0])
        self.calibrating = True
        self.contrast_values = np.zeros((CONTRAST_HISTORY, 2), np.uint8)
        self.contrast_values[:, 1:2] = 255
        self.contrast_index = 0

    def contrast(self, small):
        lo = np.percentile(small, 4).astype(np.uint8)
        hi = np.percentile(small, 96).astype(np.uint8)
        if lo >= hi:
            return small
        self.contrast_values[self.contrast_index] = [lo, hi]
        self.contrast_index = (self.contrast_index + 1) % len(self.contrast_values)
        avg_lo, avg_hi = np.mean(self.contrast_values, axis=0)
        small = np.clip(small, avg_lo, avg_hi)
        return (((small - avg_lo) / (avg_hi - avg_lo)) * 255).astype(np.uint8)

    def boxes(self, small):
        delta = cv2.absdiff(small, cv2.convertScaleAbs(self.avg_frame))
        thresh = cv2.threshold(delta, THRESHOLD, 255, cv2.THRESH_BINARY)[1]
        dilated = cv2.dilate(thresh, None, iterations=1)
        contours, _ = cv2.findContours(dilated, cv2.RETR_EXTERNAL, cv2.CHAIN_APPROX_SIMPLE)
        boxes, total_area = [], 0.0
        f = self.resize_factor
        for c in contours:
            area = cv2.contourArea(c)
            total_area += area
            if area > CONTOUR_AREA:
                x, y, w, h = cv2.boundingRect(c)
                boxes.append((int(x * f), int(y * f), int((x + w) * f), int((y + h) * f)))
        return boxes, total_area / (self.size[0] * self.size[1])

    def detect(self, luma):
        small = cv2.resize(luma, (self.size[1], self.size[0]), interpolation=cv2.INTER_NEAREST)
        small = self.contrast(small)
        small[self.mask] = [0]
        small = cv2.GaussianBlur(small, (3, 3), 1, borderType=cv2.BORDER_REFLECT)
        boxes, pct = self.boxes(small)
        if pct < 0.05 and len(boxes) <= 4:
            self.calibrating = False
        if self.calibrating or pct > LIGHTNING_THRESHOLD:
            self.calibrating = True
        alpha = 0.2 if self.calibrating else FRAME_ALPHA
        if boxes:
            self.motion_frame_count += 1
            if self.motion_frame_count >= 10:
                cv2.accumulateWeighted(small, self.avg_frame, alpha)
        else:
            cv2.accumulateWeighted(small, self.avg_frame, alpha)
            self.motion_frame_count = 0
        return boxes


def main():
    if len(sys.argv) != 5:
        sys.exit("usage: frigate_motion.py FRAMES WIDTH HEIGHT COUNT")
    path, width, height, count = sys.argv[1], *map(int, sys.argv[2:])
    frames = np.fromfile(path, np.uint8, count * width * height).reshape(count, height, width)
    cv2.setNumThreads(1)
    det = FrigateMotion(height, width)
    print(f"ready OpenCV {cv2.__version__}, NumPy {np.__version__}", flush=True)
    for line in sys.stdin:
        if line.strip() != "run":
            continue
        moving = 0
        t = time.perf_counter()
        for f in frames:
            moving += bool(det.detect(f))
        ms = (time.perf_counter() - t) * 1e3 / count
        print(f"{ms:.4f} {moving}", flush=True)


if __name__ == "__main__":
    main()
