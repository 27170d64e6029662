//! Untrusted camera buffers (YUYV, NV12 and MJPEG as a V4L2 driver hands them over, with the size
//! and stride it reported): a frame or an error, never a panic, never an allocation beyond the
//! size the camera was set to.
#![no_main]
use edge_agent::source::v4l2::convert::{Layout, mjpeg, nv12, yuyv};

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    let [kind, w0, w1, h0, h1, s0, s1, rest @ ..] = data else {
        return;
    };
    let layout = Layout {
        width: usize::from(u16::from_le_bytes([*w0, *w1])),
        height: usize::from(u16::from_le_bytes([*h0, *h1])),
        stride: usize::from(u16::from_le_bytes([*s0, *s1])),
    };
    let _ = match kind % 3 {
        0 => yuyv(rest, layout, 0),
        1 => nv12(rest, layout, 0),
        _ => mjpeg(rest, layout.width, layout.height, 0),
    };
});
