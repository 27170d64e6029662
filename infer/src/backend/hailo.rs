//! The Hailo backend (HEF models on a Hailo-8/8L) over HailoRT's C API, loaded at run time
//! (`hailo_runtime`). A virtual device with HailoRT's defaults (its model scheduler on, so no
//! network group is activated by hand), the HEF configured with its defaults, one uint8 NHWC input
//! vstream and one float32 output vstream carrying the NMS on chip's boxes
//! (`HAILO_FORMAT_ORDER_HAILO_NMS_BY_CLASS`, decoded by `postprocess::hailo_nms`). The network
//! normalises on chip: the detector feeds raw 0-255 RGB bytes.
#![allow(unsafe_code)]

use std::ffi::CString;
use std::path::Path;

use super::hailo_runtime::{self as rt, Api, Format, Handle, VStreamInfo, VStreamParamsByName};
use super::{Backend, BackendError, BackendInfo, DType, InputData, InputTensor, OutputTensor};

const NAME: &str = "hailo";

fn err(reason: impl std::fmt::Display) -> BackendError {
    BackendError {
        backend: NAME,
        reason: reason.to_string(),
    }
}

/// Runs a C call's status through HailoRT's name for it, naming `what` on failure.
fn check(api: &Api, what: &str, status: rt::Status) -> Result<(), BackendError> {
    if status == rt::SUCCESS {
        Ok(())
    } else {
        Err(err(format!("{what}: {}", rt::status_text(api, status))))
    }
}

/// Every handle the backend owns, released in reverse order of creation (also when loading
/// fails half-way). The configured network group belongs to the virtual device.
struct Handles {
    api: &'static Api,
    vdevice: Handle,
    hef: Handle,
    input: Handle,
    output: Handle,
}

impl Drop for Handles {
    fn drop(&mut self) {
        let a = self.api;
        // SAFETY: each handle was created by the matching HailoRT call and is released once;
        // the vstreams go before the virtual device they run on.
        unsafe {
            if !self.output.is_null() {
                (a.release_outputs)(&self.output, 1);
            }
            if !self.input.is_null() {
                (a.release_inputs)(&self.input, 1);
            }
            if !self.vdevice.is_null() {
                (a.release_vdevice)(self.vdevice);
            }
            if !self.hef.is_null() {
                (a.release_hef)(self.hef);
            }
        }
    }
}

/// The sizes a loaded HEF reads and writes.
#[derive(Debug, Clone, PartialEq)]
struct Shapes {
    /// `[1, height, width, 3]`, uint8.
    input: [usize; 4],
    /// `[1, classes, 1 + 5 * max_boxes]`, float32.
    output: [i64; 3],
    output_name: String,
}

impl Shapes {
    fn output_floats(&self) -> usize {
        self.output.iter().map(|d| *d as usize).product()
    }
}

pub struct HailoBackend {
    h: Handles,
    shapes: Shapes,
    info: BackendInfo,
}

// SAFETY: HailoRT's handles have no thread affinity; the backend is used by one thread at a time
// (`run` takes `&mut self`) and owns every handle it holds.
unsafe impl Send for HailoBackend {}

impl HailoBackend {
    /// Loads the HEF at `model` onto the first Hailo device.
    pub fn load(model: &Path, library: Option<&Path>) -> Result<Self, BackendError> {
        let runtime = rt::runtime(library).map_err(err)?;
        let api = &runtime.api;
        let at = |what: &str| format!("{}: {what}", model.display());
        let mut h = Handles {
            api,
            vdevice: std::ptr::null_mut(),
            hef: std::ptr::null_mut(),
            input: std::ptr::null_mut(),
            output: std::ptr::null_mut(),
        };
        let path = c_path(model)?;
        // SAFETY: NULL params take HailoRT's defaults (the header allows it); out-pointers are
        // valid locals; the path is NUL-terminated and outlives the call.
        unsafe {
            check(
                api,
                "opening the Hailo device",
                (api.create_vdevice)(std::ptr::null_mut(), &mut h.vdevice),
            )?;
            check(
                api,
                &at("reading the HEF"),
                (api.create_hef_file)(&mut h.hef, path.as_ptr()),
            )?;
        }
        let group = configure(api, &h).map_err(|e| err(at(&e.reason)))?;
        (h.input, h.output) = vstreams(api, group).map_err(|e| err(at(&e.reason)))?;
        let shapes = shapes(api, &h).map_err(|e| err(at(&e.reason)))?;
        let v = runtime.version;
        let info = BackendInfo {
            name: format!(
                "{NAME} (hailort {}.{}.{}, nms on chip)",
                v.major, v.minor, v.revision
            ),
            dtype: DType::U8,
            input_size: Some((shapes.input[2] as u32, shapes.input[1] as u32)),
            input_quant: None,
            dynamic_batch: false,
            outputs: vec![shapes.output_name.clone()],
            provider: super::ProviderKind::Cpu,
            fallbacks: Vec::new(),
        };
        tracing::debug!(model = %model.display(), library = %runtime.path.display(), ?shapes, "HEF configured");
        Ok(Self { h, shapes, info })
    }
}

fn c_path(p: &Path) -> Result<CString, BackendError> {
    use std::os::unix::ffi::OsStrExt;
    CString::new(p.as_os_str().as_bytes())
        .map_err(|_| err(format!("{}: a path with a NUL byte", p.display())))
}

/// Configures the HEF's one network group on the device, with HailoRT's defaults.
fn configure(api: &Api, h: &Handles) -> Result<Handle, BackendError> {
    let mut groups: [Handle; 8] = [std::ptr::null_mut(); 8];
    let mut n = groups.len();
    // SAFETY: live handles; `groups` holds `n` slots.
    check(api, "configuring the device", unsafe {
        (api.configure_vdevice)(
            h.vdevice,
            h.hef,
            std::ptr::null_mut(),
            groups.as_mut_ptr(),
            &mut n,
        )
    })?;
    match (n, groups[0]) {
        (1, g) if !g.is_null() => Ok(g),
        _ => Err(err(format!("{n} network groups; a detector HEF has one"))),
    }
}

/// The network group's one input vstream (uint8) and one output vstream (float32).
fn vstreams(api: &Api, group: Handle) -> Result<(Handle, Handle), BackendError> {
    let params = |make: MakeParams, kind: u32, what: &str| {
        let mut p = [VStreamParamsByName::default(); rt::MAX_STREAMS];
        let mut n = p.len();
        // SAFETY: a live network group; `p` holds `n` entries.
        check(api, what, unsafe {
            make(group, false, kind, p.as_mut_ptr(), &mut n)
        })?;
        if n != 1 {
            return Err(err(format!(
                "{n} {what}; a detector HEF has one (NMS on chip)"
            )));
        }
        Ok(p[0])
    };
    let input = params(
        api.make_input_params,
        rt::FORMAT_TYPE_UINT8,
        "input vstreams",
    )?;
    let output = params(
        api.make_output_params,
        rt::FORMAT_TYPE_FLOAT32,
        "output vstreams",
    )?;
    let (mut i, mut o): (Handle, Handle) = (std::ptr::null_mut(), std::ptr::null_mut());
    // SAFETY: the params come from HailoRT for this group; one handle slot each.
    unsafe {
        check(
            api,
            "creating the input vstream",
            (api.create_inputs)(group, &input, 1, &mut i),
        )?;
        let s = (api.create_outputs)(group, &output, 1, &mut o);
        if let Err(e) = check(api, "creating the output vstream", s) {
            (api.release_inputs)(&i, 1);
            return Err(e);
        }
    }
    Ok((i, o))
}

type MakeParams =
    unsafe extern "C" fn(Handle, bool, u32, *mut VStreamParamsByName, *mut usize) -> rt::Status;

/// What the vstreams read and write, checked against what the backend can feed and decode.
fn shapes(api: &Api, h: &Handles) -> Result<Shapes, BackendError> {
    let (mut input, mut output) = (VStreamInfo::default(), VStreamInfo::default());
    let (mut in_frame, mut out_frame) = (0usize, 0usize);
    let mut format = Format::default();
    // SAFETY: live vstreams; out-pointers are valid locals of the header's types.
    unsafe {
        check(
            api,
            "input vstream info",
            (api.input_info)(h.input, &mut input),
        )?;
        check(
            api,
            "input frame size",
            (api.input_frame_size)(h.input, &mut in_frame),
        )?;
        check(
            api,
            "output vstream info",
            (api.output_info)(h.output, &mut output),
        )?;
        check(
            api,
            "output format",
            (api.output_user_format)(h.output, &mut format),
        )?;
        check(
            api,
            "output frame size",
            (api.output_frame_size)(h.output, &mut out_frame),
        )?;
    }
    describe((&input, in_frame), (&output, format, out_frame)).map_err(err)
}

/// The shapes of an input (NHWC, 3 channels, `frame` bytes) and an NMS-by-class float32 output.
fn describe(
    (input, in_frame): (&VStreamInfo, usize),
    (output, format, out_frame): (&VStreamInfo, Format, usize),
) -> Result<Shapes, String> {
    let [height, width, features, _] = input.shape.map(|d| d as usize);
    let bytes = height.checked_mul(width).and_then(|n| n.checked_mul(3));
    if features != 3 || bytes != Some(in_frame) {
        return Err(format!(
            "input {} is {height}x{width}x{features} in {in_frame} bytes; an RGB image (uint8, NHWC) is supported",
            input.name()
        ));
    }
    let nms = [rt::ORDER_NMS_BY_CLASS, rt::ORDER_HAILO_NMS].contains(&format.order);
    if !nms || format.kind != rt::FORMAT_TYPE_FLOAT32 {
        return Err(format!(
            "output {} has format order {} type {}; only NMS on chip (HAILO_NMS_BY_CLASS, float32) is supported: \
             use a HEF compiled with its NMS post-process (the Model Zoo's yolov8n)",
            output.name(),
            format.order,
            format.kind
        ));
    }
    let [classes, max_boxes, ..] = output.shape.map(|d| d as usize);
    // The device says these: checked arithmetic, so a garbled info is an error, not an overflow.
    let per_class = max_boxes.checked_mul(5).and_then(|n| n.checked_add(1));
    let frame = per_class.and_then(|p| p.checked_mul(classes)?.checked_mul(4));
    let (Some(per_class), true) = (per_class, classes > 0 && frame == Some(out_frame)) else {
        return Err(format!(
            "output {}: {classes} classes of at most {max_boxes} boxes do not make its {out_frame}-byte frame",
            output.name()
        ));
    };
    Ok(Shapes {
        input: [1, height, width, 3],
        output: [1, classes as i64, per_class as i64],
        output_name: output.name(),
    })
}

impl Backend for HailoBackend {
    fn info(&self) -> &BackendInfo {
        &self.info
    }

    fn run(&mut self, input: InputTensor<'_>) -> Result<Vec<OutputTensor>, BackendError> {
        let want = self.shapes.input;
        let bytes = match input.data {
            InputData::U8(d)
                if input.shape == want && d.len() == want.iter().product::<usize>() =>
            {
                d
            }
            _ => {
                return Err(err(format!(
                    "input {:?}: the HEF takes {want:?} uint8 (NHWC)",
                    input.shape
                )));
            }
        };
        let api = self.h.api;
        let mut data = vec![0f32; self.shapes.output_floats()];
        // SAFETY: live vstreams; the input holds the frame's bytes, the output buffer
        // `data.len() * 4` bytes (the output's frame size, checked at load).
        unsafe {
            check(
                api,
                "writing the input",
                (api.write)(self.h.input, bytes.as_ptr().cast(), bytes.len()),
            )?;
            let out = data.as_mut_ptr().cast();
            check(
                api,
                "reading the output",
                (api.read)(self.h.output, out, data.len() * 4),
            )?;
        }
        Ok(vec![OutputTensor {
            name: self.shapes.output_name.clone(),
            shape: self.shapes.output.to_vec(),
            data,
        }])
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn info(name: &str, shape: [u32; 4]) -> VStreamInfo {
        let mut v = VStreamInfo {
            shape,
            ..VStreamInfo::default()
        };
        for (i, b) in name.bytes().enumerate() {
            v.name[i] = b as std::ffi::c_char;
        }
        v
    }

    const NMS: Format = Format {
        kind: rt::FORMAT_TYPE_FLOAT32,
        order: rt::ORDER_NMS_BY_CLASS,
        flags: 0,
    };

    #[test]
    fn a_yolov8n_hef_reads_as_its_input_and_nms_shapes() {
        // The Model Zoo's yolov8n for hailo8l: 640x640x3 in, 80 classes of up to 100 boxes out.
        let input = info("yolov8n/input_layer1", [640, 640, 3, 0]);
        let output = info("yolov8n/yolov8_nms_postprocess", [80, 100, 8000, 0]);
        let s = describe((&input, 640 * 640 * 3), (&output, NMS, 80 * 501 * 4)).expect("fits");
        assert_eq!(s.input, [1, 640, 640, 3]);
        assert_eq!(s.output, [1, 80, 501]);
        assert_eq!(
            (s.output_floats(), s.output_name.as_str()),
            (80 * 501, "yolov8n/yolov8_nms_postprocess")
        );
        let old = Format {
            order: rt::ORDER_HAILO_NMS,
            ..NMS
        };
        assert!(
            describe((&input, 640 * 640 * 3), (&output, old, 80 * 501 * 4)).is_ok(),
            "4.20's deprecated name"
        );
    }

    #[test]
    fn what_the_backend_cannot_feed_or_decode_is_refused_by_name() {
        let input = info("in", [640, 640, 3, 0]);
        let output = info("out", [80, 100, 8000, 0]);
        let frame = 80 * 501 * 4;
        let raw = Format {
            order: rt::ORDER_NHWC,
            ..NMS
        };
        let e = describe((&input, 640 * 640 * 3), (&output, raw, frame)).expect_err("no NMS");
        assert!(
            e.contains("output out has format order 1") && e.contains("NMS on chip"),
            "{e}"
        );
        let e = describe(
            (&info("gray", [640, 640, 1, 0]), 640 * 640),
            (&output, NMS, frame),
        )
        .expect_err("1 channel");
        assert!(e.contains("input gray is 640x640x1"), "{e}");
        let e = describe((&input, 640 * 640 * 3), (&output, NMS, frame + 4)).expect_err("size");
        assert!(e.contains("80 classes of at most 100 boxes"), "{e}");
        let huge = info("out", [u32::MAX, u32::MAX, 0, 0]);
        assert!(
            describe((&input, 640 * 640 * 3), (&huge, NMS, frame)).is_err(),
            "no overflow"
        );
        let huge = info("in", [u32::MAX, u32::MAX, 3, 0]);
        assert!(
            describe((&huge, 640 * 640 * 3), (&output, NMS, frame)).is_err(),
            "no overflow"
        );
        let uint16 = Format { kind: 2, ..NMS };
        assert!(describe((&input, 640 * 640 * 3), (&output, uint16, frame)).is_err());
    }
}
