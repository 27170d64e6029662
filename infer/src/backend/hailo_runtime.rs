//! Loads `libhailort.so` (HailoRT 4.20, what Raspberry Pi OS's `hailo-all` installs; see
//! `design/hailo.md`) once per process at run time and binds the few functions of its C API the
//! backend uses. Nothing links against it at build time: a binary built with the `hailo` feature
//! still runs every other backend on a machine without HailoRT.
//!
//! The declarations follow HailoRT 4.20's `hailo/hailort.h` (hailo-ai/hailort, `v4.20.0`). The
//! header has no `static_assert`s for these structs; they are plain C structs of 4-byte fields
//! and `char` arrays, whose sizes and offsets are asserted below as the C rules give them.
#![allow(unsafe_code)]

use std::ffi::{c_char, c_void};
use std::path::{Path, PathBuf};
use std::sync::OnceLock;

use libloading::Library;

/// Every HailoRT handle (`hailo_vdevice`, `hailo_hef`, ...) is an opaque pointer.
pub type Handle = *mut c_void;
/// `hailo_status`.
pub type Status = u32;

pub const SUCCESS: Status = 0;
/// `HAILO_MAX_STREAM_NAME_SIZE`.
pub const NAME_SIZE: usize = 128;
/// `HAILO_MAX_NETWORK_NAME_SIZE`: a network group's name, '/', a network's name.
pub const NETWORK_NAME_SIZE: usize = NAME_SIZE + 1 + NAME_SIZE;
/// `HAILO_MAX_STREAMS_COUNT`: the most vstreams a network group has.
pub const MAX_STREAMS: usize = 40;
pub const FORMAT_TYPE_UINT8: u32 = 1;
pub const FORMAT_TYPE_FLOAT32: u32 = 3;
pub const ORDER_NHWC: u32 = 1;
/// `HAILO_FORMAT_ORDER_HAILO_NMS`: deprecated in 4.20 (removed in 4.21), same layout as by-class.
pub const ORDER_HAILO_NMS: u32 = 9;
/// `HAILO_FORMAT_ORDER_HAILO_NMS_BY_CLASS`: 4.20's default for a network with NMS.
pub const ORDER_NMS_BY_CLASS: u32 = 22;

/// The device node the `hailo_pci` driver creates for the first Hailo chip.
pub const DEVICE: &str = "/dev/hailo0";

/// `hailo_version_t`.
#[repr(C)]
#[derive(Debug, Clone, Copy, Default)]
pub struct Version {
    pub major: u32,
    pub minor: u32,
    pub revision: u32,
}

/// `hailo_format_t`: `hailo_format_type_t`, `hailo_format_order_t`, `hailo_format_flags_t`.
#[repr(C)]
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Format {
    pub kind: u32,
    pub order: u32,
    pub flags: u32,
}

/// `hailo_vstream_params_t`.
#[repr(C)]
#[derive(Debug, Clone, Copy, Default)]
pub struct VStreamParams {
    pub user_buffer_format: Format,
    pub timeout_ms: u32,
    pub queue_size: u32,
    pub vstream_stats_flags: u32,
    pub pipeline_elements_stats_flags: u32,
}

/// `hailo_input_vstream_params_by_name_t` and `hailo_output_vstream_params_by_name_t` (the same).
#[repr(C)]
#[derive(Debug, Clone, Copy)]
pub struct VStreamParamsByName {
    pub name: [c_char; NAME_SIZE],
    pub params: VStreamParams,
}

impl Default for VStreamParamsByName {
    fn default() -> Self {
        Self {
            name: [0; NAME_SIZE],
            params: VStreamParams::default(),
        }
    }
}

/// `hailo_vstream_info_t`. Its union of `hailo_3d_image_shape_t` (height, width, features) and
/// `hailo_nms_shape_t` (number_of_classes, max_bboxes_per_class, max_bboxes_total,
/// max_accumulated_mask_size) is read as four `u32`s: the same size and alignment, no union read.
#[repr(C)]
#[derive(Debug, Clone, Copy)]
pub struct VStreamInfo {
    pub name: [c_char; NAME_SIZE],
    pub network_name: [c_char; NETWORK_NAME_SIZE],
    pub direction: u32,
    pub format: Format,
    pub shape: [u32; 4],
    /// `hailo_quant_info_t`: qp_zp, qp_scale, limvals_min, limvals_max.
    pub quant_info: [f32; 4],
}

impl Default for VStreamInfo {
    fn default() -> Self {
        Self {
            name: [0; NAME_SIZE],
            network_name: [0; NETWORK_NAME_SIZE],
            direction: 0,
            format: Format::default(),
            shape: [0; 4],
            quant_info: [0.0; 4],
        }
    }
}

impl VStreamInfo {
    pub fn name(&self) -> String {
        c_name(&self.name)
    }
}

/// A NUL-terminated (or full) `char` array as text.
pub fn c_name(chars: &[c_char]) -> String {
    let bytes: Vec<u8> = chars
        .iter()
        .take_while(|c| **c != 0)
        .map(|c| c.to_ne_bytes()[0])
        .collect();
    String::from_utf8_lossy(&bytes).into_owned()
}

const _: () = assert!(std::mem::size_of::<Format>() == 12);
const _: () = assert!(std::mem::size_of::<VStreamParams>() == 28);
const _: () = assert!(std::mem::size_of::<VStreamParamsByName>() == 156);
const _: () = assert!(std::mem::offset_of!(VStreamInfo, direction) == 388);
const _: () = assert!(std::mem::offset_of!(VStreamInfo, format) == 392);
const _: () = assert!(std::mem::offset_of!(VStreamInfo, shape) == 404);
const _: () = assert!(std::mem::size_of::<VStreamInfo>() == 436);

macro_rules! api {
    ($($field:ident = $sym:literal: fn($($arg:ty),*) $(-> $ret:ty)?;)*) => {
        /// The bound C functions.
        pub struct Api {
            $(pub $field: unsafe extern "C" fn($($arg),*) $(-> $ret)?,)*
        }

        impl Api {
            /// # Safety
            /// `lib` must be HailoRT 4.x, whose functions have these signatures.
            unsafe fn bind(lib: &Library) -> Result<Self, String> {
                Ok(Self {
                    $($field: *unsafe { lib.get(concat!($sym, "\0").as_bytes()) }
                        .map_err(|e| format!("symbol {}: {e}", $sym))?,)*
                })
            }
        }
    };
}

api! {
    library_version = "hailo_get_library_version": fn(*mut Version) -> Status;
    status_message = "hailo_get_status_message": fn(Status) -> *const c_char;
    create_vdevice = "hailo_create_vdevice": fn(*mut c_void, *mut Handle) -> Status;
    release_vdevice = "hailo_release_vdevice": fn(Handle) -> Status;
    create_hef_file = "hailo_create_hef_file": fn(*mut Handle, *const c_char) -> Status;
    release_hef = "hailo_release_hef": fn(Handle) -> Status;
    configure_vdevice = "hailo_configure_vdevice": fn(Handle, Handle, *mut c_void, *mut Handle, *mut usize) -> Status;
    make_input_params = "hailo_make_input_vstream_params": fn(Handle, bool, u32, *mut VStreamParamsByName, *mut usize) -> Status;
    make_output_params = "hailo_make_output_vstream_params": fn(Handle, bool, u32, *mut VStreamParamsByName, *mut usize) -> Status;
    create_inputs = "hailo_create_input_vstreams": fn(Handle, *const VStreamParamsByName, usize, *mut Handle) -> Status;
    create_outputs = "hailo_create_output_vstreams": fn(Handle, *const VStreamParamsByName, usize, *mut Handle) -> Status;
    release_inputs = "hailo_release_input_vstreams": fn(*const Handle, usize) -> Status;
    release_outputs = "hailo_release_output_vstreams": fn(*const Handle, usize) -> Status;
    input_frame_size = "hailo_get_input_vstream_frame_size": fn(Handle, *mut usize) -> Status;
    output_frame_size = "hailo_get_output_vstream_frame_size": fn(Handle, *mut usize) -> Status;
    input_info = "hailo_get_input_vstream_info": fn(Handle, *mut VStreamInfo) -> Status;
    output_info = "hailo_get_output_vstream_info": fn(Handle, *mut VStreamInfo) -> Status;
    output_user_format = "hailo_get_output_vstream_user_format": fn(Handle, *mut Format) -> Status;
    write = "hailo_vstream_write_raw_buffer": fn(Handle, *const c_void, usize) -> Status;
    read = "hailo_vstream_read_raw_buffer": fn(Handle, *mut c_void, usize) -> Status;
}

/// The loaded library and its functions (never unloaded).
pub struct Runtime {
    pub api: Api,
    pub path: PathBuf,
    pub version: Version,
    _lib: Library,
}

static RUNTIME: OnceLock<Result<Runtime, String>> = OnceLock::new();

/// Where the packages put the library: Raspberry Pi OS's `hailort` (from `hailo-all`) and Hailo's
/// own `.deb` install `/usr/lib/libhailort.so` (a link to `libhailort.so.4.20.0`).
const SYSTEM: [&str; 4] = [
    "/usr/lib/libhailort.so",
    "/usr/lib/libhailort.so.4.20.0",
    "/usr/lib/aarch64-linux-gnu/libhailort.so",
    "/usr/local/lib/libhailort.so",
];

/// What to install when the library or the device is missing.
pub const INSTALL: &str = "on a Raspberry Pi 5 with the AI Kit: `sudo apt install hailo-all` and \
     reboot (Raspberry Pi OS bookworm); elsewhere HailoRT 4.20 and its PCIe driver from Hailo's \
     developer zone; see design/hailo.md";

/// The paths tried for the library, in order: the configured one alone, else `$HAILORT_LIB_PATH`
/// then the system's places.
pub fn candidates(configured: Option<&Path>) -> Vec<PathBuf> {
    if let Some(p) = configured {
        return vec![p.to_path_buf()];
    }
    let env = std::env::var_os("HAILORT_LIB_PATH").map(PathBuf::from);
    env.into_iter().chain(SYSTEM.map(PathBuf::from)).collect()
}

/// The library (the first candidate that exists) once the device node `device` exists too.
pub fn locate_with(configured: Option<&Path>, device: &Path) -> Result<PathBuf, String> {
    let tried = candidates(configured);
    let Some(lib) = tried.iter().find(|p| p.is_file()).cloned() else {
        let list: Vec<String> = tried.iter().map(|p| p.display().to_string()).collect();
        return Err(format!(
            "libhailort.so not found (tried {}); set HAILORT_LIB_PATH, or install HailoRT: {INSTALL}",
            list.join(", ")
        ));
    };
    if !device.exists() {
        return Err(format!(
            "no Hailo device: {} does not exist (is the AI Kit seated and the hailo_pci driver \
             loaded? `hailortcli fw-control identify` should name it); {INSTALL}",
            device.display()
        ));
    }
    Ok(lib)
}

/// [`locate_with`] the first Hailo device, `/dev/hailo0`.
pub fn locate(configured: Option<&Path>) -> Result<PathBuf, String> {
    locate_with(configured, Path::new(DEVICE))
}

/// The process-wide runtime, loading the library on first use (later calls get the same one).
pub fn runtime(configured: Option<&Path>) -> Result<&'static Runtime, String> {
    RUNTIME
        .get_or_init(|| load(configured))
        .as_ref()
        .map_err(Clone::clone)
}

fn load(configured: Option<&Path>) -> Result<Runtime, String> {
    let path = locate(configured)?;
    let at = |e: String| format!("{}: {e}", path.display());
    // SAFETY: loading HailoRT runs its initialisers (its logger), which have no preconditions;
    // the symbols are bound with the signatures of HailoRT 4.20's header.
    let lib = unsafe { Library::new(&path) }.map_err(|e| at(e.to_string()))?;
    let api = unsafe { Api::bind(&lib) }
        .map_err(|e| at(format!("{e} (HailoRT 4.20 is expected; {INSTALL})")))?;
    let mut version = Version::default();
    // SAFETY: a valid out-pointer.
    let s = unsafe { (api.library_version)(&mut version) };
    if s != SUCCESS || version.major != 4 {
        return Err(at(format!(
            "HailoRT {}.{}.{} (status {s}); this backend is written against 4.20 ({INSTALL})",
            version.major, version.minor, version.revision
        )));
    }
    if version.minor != 20 {
        tracing::warn!(library = %path.display(), version = %format!("{}.{}.{}", version.major, version.minor, version.revision), "HailoRT other than 4.20: the backend was written against 4.20's C API");
    }
    Ok(Runtime {
        api,
        path,
        version,
        _lib: lib,
    })
}

/// A status as text, with what to do about the common ones.
pub fn status_text(api: &Api, s: Status) -> String {
    // SAFETY: HailoRT returns a static string for a known status, NULL for an unknown one.
    let name = unsafe { (api.status_message)(s) };
    let name = if name.is_null() {
        format!("hailo_status {s}")
    } else {
        // SAFETY: non-NULL: a NUL-terminated static string.
        let n = unsafe { std::ffi::CStr::from_ptr(name) }.to_string_lossy();
        format!("{n} ({s})")
    };
    match hint(s) {
        Some(h) => format!("{name}: {h}"),
        None => name,
    }
}

fn hint(s: Status) -> Option<&'static str> {
    Some(match s {
        26 => "not a HEF this HailoRT can read (compiled by another Dataflow Compiler version?)",
        64 => "the hailo_pci driver is not installed (`sudo apt install hailo-all`, reboot)",
        73 | 74 => {
            "the device is in use by another process (one process per device without HailoRT's service)"
        }
        75 => "the HEF was compiled for another chip: a Hailo-8L needs a hailo8l HEF",
        76 => {
            "the driver and the library differ in version (`sudo apt install hailo-all` installs matching ones)"
        }
        _ => return None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_missing_library_names_itself_the_places_tried_and_what_to_install() {
        let p = Path::new("/nonexistent/libhailort.so");
        assert_eq!(candidates(Some(p)), vec![p.to_path_buf()]);
        let e = locate(Some(p)).expect_err("missing");
        for want in [
            "libhailort.so not found",
            "/nonexistent/libhailort.so",
            "sudo apt install hailo-all",
            "HAILORT_LIB_PATH",
        ] {
            assert!(e.contains(want), "{want:?} not in {e}");
        }
        let default = candidates(None);
        assert!(default.ends_with(&SYSTEM.map(PathBuf::from)), "{default:?}");
    }

    #[test]
    fn a_missing_device_is_named_once_the_library_is_there() {
        let dir = tempfile::tempdir().expect("tempdir");
        let lib = dir.path().join("libhailort.so");
        std::fs::write(&lib, b"").expect("write");
        let e = locate_with(Some(&lib), &dir.path().join("hailo0")).expect_err("no device");
        assert!(
            e.contains("no Hailo device") && e.contains("hailo0 does not exist"),
            "{e}"
        );
        assert!(e.contains("hailortcli fw-control identify"), "{e}");
        assert_eq!(
            locate_with(Some(&lib), dir.path()).expect("both there"),
            lib
        );
    }

    #[test]
    fn names_stop_at_the_nul() {
        let mut info = VStreamInfo::default();
        for (i, b) in b"yolov8n/yolov8_nms_postprocess".iter().enumerate() {
            info.name[i] = *b as c_char;
        }
        assert_eq!(info.name(), "yolov8n/yolov8_nms_postprocess");
        assert_eq!(
            c_name(&[b'a' as c_char; 3]),
            "aaa",
            "a full array has no NUL"
        );
    }
}
