//! The Edge TPU (Coral USB Accelerator, Dev Board, M.2/PCIe cards) under the LiteRT backend:
//! `libedgetpu.so.1` is loaded at run time, its devices listed, and its TFLite delegate registered
//! with the LiteRT environment as an accelerator, so the `edgetpu-custom-op` of a model compiled
//! by `edgetpu_compiler` (`*_edgetpu.tflite`) runs on the TPU and the rest on the CPU (XNNPACK).
//!
//! The C API is Coral's `edgetpu_c.h` (libedgetpu 16.0): `edgetpu_list_devices`,
//! `edgetpu_free_devices`, `edgetpu_create_delegate`, `edgetpu_free_delegate`, `edgetpu_version`.
//! The delegate is wrapped into LiteRT with `LiteRtWrapDelegate` from the accelerator's
//! `CreateDelegate` callback (LiteRT 2.1.4's `litert_accelerator_registration.h`).
#![allow(unsafe_code)]

use std::ffi::{CStr, CString, c_char, c_int, c_void};
use std::path::{Path, PathBuf};
use std::sync::Mutex;

use cascade_shared::config::edge::EdgeTpuDevice;
use libloading::Library;

use super::litert_runtime::{self as rt, Api, ApiVersion, Handle, Status};
use super::{BackendError, EdgeTpuOptions};

const NAME: &str = "edgetpu";
const LIB_NAME: &str = "libedgetpu.so.1";
const ENV: &str = "EDGETPU_LIB_PATH";
/// `enum edgetpu_device_type`.
const TYPE_PCI: c_int = 0;
const TYPE_USB: c_int = 1;
/// LiteRT's `kLiteRtStatusErrorRuntimeFailure`.
const STATUS_RUNTIME_FAILURE: Status = 3;

/// What to do when no Edge TPU is found.
pub const NO_DEVICE: &str = "no Edge TPU found: a USB Accelerator shows in `lsusb` as 1a6e:089a \
    (Global Unichip) before its first use and 18d1:9302 (Google) after, and needs the udev rule of \
    libedgetpu1-std; an M.2/PCIe card or a Dev Board shows as /dev/apex_0 (the gasket-dkms driver, \
    and the user in the apex group); see design/edge-tpu.md";

fn err(reason: impl std::fmt::Display) -> BackendError {
    BackendError {
        backend: NAME,
        reason: reason.to_string(),
    }
}

/// `struct edgetpu_device`.
#[repr(C)]
struct RawDevice {
    kind: c_int,
    path: *const c_char,
}

/// The loaded library and its functions (never unloaded: LiteRT may call into a delegate until
/// the process ends).
struct Lib {
    path: PathBuf,
    list_devices: unsafe extern "C" fn(*mut usize) -> *mut RawDevice,
    free_devices: unsafe extern "C" fn(*mut RawDevice),
    create_delegate:
        unsafe extern "C" fn(c_int, *const c_char, *const c_void, usize) -> *mut c_void,
    free_delegate: unsafe extern "C" fn(*mut c_void),
    version: unsafe extern "C" fn() -> *const c_char,
    _lib: Library,
}

/// Every library loaded so far, by path (tests load fakes from several places).
static LIBS: Mutex<Vec<&'static Lib>> = Mutex::new(Vec::new());

/// The device the delegate is made for, with its library: one Edge TPU per process.
struct Selected {
    lib: &'static Lib,
    kind: c_int,
    path: CString,
}

static SELECTED: Mutex<Option<Selected>> = Mutex::new(None);
/// Why the last delegate could not be made, for the load error.
static LAST_FAILURE: Mutex<Option<String>> = Mutex::new(None);

/// One Edge TPU as the runtime lists it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Device {
    pub usb: bool,
    pub path: String,
}

impl std::fmt::Display for Device {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let kind = if self.usb { "usb" } else { "pci" };
        write!(f, "{kind} {}", self.path)
    }
}

/// The paths tried for the library, in order.
pub fn candidates(configured: Option<&Path>) -> Vec<PathBuf> {
    if let Some(p) = configured {
        return vec![p.to_path_buf()];
    }
    let mut out: Vec<PathBuf> = std::env::var_os(ENV)
        .map(PathBuf::from)
        .into_iter()
        .collect();
    for dir in [
        "/usr/lib/aarch64-linux-gnu",
        "/usr/lib/x86_64-linux-gnu",
        "/usr/lib/arm-linux-gnueabihf",
        "/usr/lib",
        "/usr/local/lib",
    ] {
        out.push(Path::new(dir).join(LIB_NAME));
    }
    out
}

/// The first candidate that exists.
pub fn locate(configured: Option<&Path>) -> Result<PathBuf, String> {
    let tried = candidates(configured);
    tried.iter().find(|p| p.is_file()).cloned().ok_or_else(|| {
        let list: Vec<String> = tried.iter().map(|p| p.display().to_string()).collect();
        format!(
            "{LIB_NAME} not found (tried {}): install Coral's Edge TPU runtime \
             (`sudo apt install libedgetpu1-std` from Coral's apt repository, design/edge-tpu.md) \
             or set detector.edgetpu.library",
            list.join(", ")
        )
    })
}

fn load(configured: Option<&Path>) -> Result<&'static Lib, String> {
    let path = locate(configured)?;
    let mut libs = LIBS.lock().map_err(|_| "edgetpu: poisoned".to_string())?;
    if let Some(lib) = libs.iter().find(|l| l.path == path) {
        return Ok(lib);
    }
    let at = |e: libloading::Error| format!("{}: {e}", path.display());
    // SAFETY: loading libedgetpu runs its initialisers, which have no preconditions; the symbols
    // are bound with the signatures of edgetpu_c.h.
    let lib: &'static Lib = unsafe {
        let l = Library::new(&path).map_err(at)?;
        Box::leak(Box::new(Lib {
            list_devices: *l.get(b"edgetpu_list_devices\0").map_err(at)?,
            free_devices: *l.get(b"edgetpu_free_devices\0").map_err(at)?,
            create_delegate: *l.get(b"edgetpu_create_delegate\0").map_err(at)?,
            free_delegate: *l.get(b"edgetpu_free_delegate\0").map_err(at)?,
            version: *l.get(b"edgetpu_version\0").map_err(at)?,
            path: path.clone(),
            _lib: l,
        }))
    };
    libs.push(lib);
    Ok(lib)
}

fn version(lib: &Lib) -> String {
    // SAFETY: edgetpu_version returns a static NUL-terminated string (or null).
    let v = unsafe { (lib.version)() };
    if v.is_null() {
        return "unknown version".into();
    }
    // SAFETY: non-null and NUL-terminated, per the header.
    unsafe { CStr::from_ptr(v) }.to_string_lossy().into_owned()
}

fn devices(lib: &Lib) -> Vec<Device> {
    let mut n = 0usize;
    // SAFETY: `n` is a valid out-pointer; the list holds `n` entries until freed below.
    unsafe {
        let list = (lib.list_devices)(&mut n);
        if list.is_null() {
            return Vec::new();
        }
        let out = std::slice::from_raw_parts(list, n)
            .iter()
            .map(|d| Device {
                usb: d.kind == TYPE_USB,
                path: if d.path.is_null() {
                    String::new()
                } else {
                    CStr::from_ptr(d.path).to_string_lossy().into_owned()
                },
            })
            .collect();
        (lib.free_devices)(list);
        out
    }
}

/// The device `want` names among `found` (the first when `want` is `None`).
pub fn choose(found: &[Device], want: Option<&EdgeTpuDevice>) -> Result<Device, String> {
    if found.is_empty() {
        return Err(NO_DEVICE.to_string());
    }
    let pick = match want {
        None => found.first(),
        Some(EdgeTpuDevice::Path(p)) => found.iter().find(|d| &d.path == p),
        Some(EdgeTpuDevice::Kind { usb, index }) => {
            found.iter().filter(|d| d.usb == *usb).nth(*index)
        }
    };
    pick.cloned().ok_or_else(|| {
        let list: Vec<String> = found.iter().map(ToString::to_string).collect();
        format!(
            "detector.edgetpu.device {want:?} is not among the Edge TPUs found: {}",
            list.join(", ")
        )
    })
}

/// The library, its version and the device that would be used (for `check`), or what is missing.
pub fn probe(opts: &EdgeTpuOptions) -> Result<String, String> {
    let lib = load(opts.library.as_deref())?;
    let device = choose(&devices(lib), opts.device.as_ref())?;
    Ok(format!(
        "{} ({}), {device}",
        lib.path.display(),
        version(lib)
    ))
}

/// Registers the Edge TPU delegate with the LiteRT environment `env`: the model compiled there
/// afterwards runs its Edge TPU ops on the device. Returns a description for logs.
pub(super) fn attach(
    api: &Api,
    env: Handle,
    opts: &EdgeTpuOptions,
) -> Result<String, BackendError> {
    let lib = load(opts.library.as_deref()).map_err(err)?;
    let device = choose(&devices(lib), opts.device.as_ref()).map_err(err)?;
    let path = CString::new(device.path.clone()).map_err(|_| err("a device path with a NUL"))?;
    let kind = if device.usb { TYPE_USB } else { TYPE_PCI };
    *SELECTED.lock().map_err(|_| err("poisoned"))? = Some(Selected { lib, kind, path });
    let mut acc: Handle = std::ptr::null_mut();
    let ok = |what: &str, s: Status| {
        if s == rt::STATUS_OK {
            Ok(())
        } else {
            Err(err(format!("{what}: {}", rt::status_name(s))))
        }
    };
    // SAFETY: `acc` is a valid out-pointer and, once created, a live accelerator handle; the
    // callbacks have the signatures of LiteRT 2.1.4's registration header and live forever.
    unsafe {
        ok(
            "creating the accelerator",
            (api.create_accelerator)(&mut acc),
        )?;
        let set = ok(
            "naming the accelerator",
            (api.set_accelerator_name)(acc, get_name),
        )
        .and_then(|()| {
            ok(
                "accelerator version",
                (api.set_accelerator_version)(acc, get_version),
            )
        })
        .and_then(|()| {
            ok(
                "accelerator hardware",
                (api.set_accelerator_hardware)(acc, get_hardware),
            )
        })
        .and_then(|()| {
            ok(
                "accelerator delegate",
                (api.set_delegate_function)(acc, create_delegate, destroy_delegate),
            )
        });
        if let Err(e) = set {
            (api.destroy_accelerator)(acc);
            return Err(e);
        }
        // On failure LiteRT releases the accelerator itself.
        ok(
            "registering the Edge TPU accelerator",
            (api.register_accelerator)(env, acc, std::ptr::null_mut(), None),
        )?;
    }
    Ok(format!("{device}, {} {}", lib.path.display(), version(lib)))
}

/// Why the delegate could not be made on the last try, if it could not.
pub fn take_failure() -> Option<String> {
    LAST_FAILURE.lock().ok().and_then(|mut f| f.take())
}

fn fail(why: String) -> Status {
    if let Ok(mut f) = LAST_FAILURE.lock() {
        *f = Some(why);
    }
    STATUS_RUNTIME_FAILURE
}

unsafe extern "C" fn get_name(_: Handle, name: *mut *const c_char) -> Status {
    if !name.is_null() {
        // SAFETY: LiteRT passes a valid out-pointer; the string is static.
        unsafe { *name = c"edgetpu".as_ptr() };
    }
    rt::STATUS_OK
}

unsafe extern "C" fn get_version(_: Handle, v: *mut ApiVersion) -> Status {
    if !v.is_null() {
        // SAFETY: LiteRT passes a valid out-pointer.
        unsafe {
            *v = ApiVersion {
                major: 16,
                minor: 0,
                patch: 0,
            }
        };
    }
    rt::STATUS_OK
}

unsafe extern "C" fn get_hardware(_: Handle, set: *mut c_int) -> Status {
    if !set.is_null() {
        // SAFETY: LiteRT passes a valid out-pointer. Both bits: whichever set the compiled model
        // asks for, this accelerator is applied (its ops that are not Edge TPU ops stay on the CPU).
        unsafe { *set = rt::HW_ACCELERATOR_CPU | rt::HW_ACCELERATOR_NPU };
    }
    rt::STATUS_OK
}

unsafe extern "C" fn create_delegate(
    _ctx: *mut c_void,
    _env: Handle,
    _acc: Handle,
    _opts: Handle,
    out: *mut Handle,
) -> Status {
    let Ok(guard) = SELECTED.lock() else {
        return fail("poisoned".into());
    };
    let (Some(sel), Some(runtime)) = (guard.as_ref(), rt::loaded()) else {
        return fail("no Edge TPU selected".into());
    };
    // SAFETY: the path is a live NUL-terminated string; no options are passed.
    let delegate =
        unsafe { (sel.lib.create_delegate)(sel.kind, sel.path.as_ptr(), std::ptr::null(), 0) };
    if delegate.is_null() {
        return fail(format!(
            "edgetpu_create_delegate gave no delegate for {} (in use by another process, or \
             unplugged?)",
            sel.path.to_string_lossy()
        ));
    }
    // SAFETY: `delegate` is a live TfLiteDelegate; `out` is LiteRT's out-pointer.
    let s = unsafe { (runtime.api.wrap_delegate)(delegate, out) };
    if s != rt::STATUS_OK {
        // SAFETY: made above and not handed to LiteRT.
        unsafe { (sel.lib.free_delegate)(delegate) };
        return fail(format!("wrapping the delegate: {}", rt::status_name(s)));
    }
    rt::STATUS_OK
}

unsafe extern "C" fn destroy_delegate(_ctx: *mut c_void, wrapper: Handle) {
    let (Ok(guard), Some(runtime)) = (SELECTED.lock(), rt::loaded()) else {
        return;
    };
    let Some(sel) = guard.as_ref() else { return };
    let mut delegate: *mut c_void = std::ptr::null_mut();
    // SAFETY: `wrapper` came from `create_delegate`; the delegate it wraps is freed once here.
    unsafe {
        if (runtime.api.unwrap_delegate)(wrapper, &mut delegate) == rt::STATUS_OK
            && !delegate.is_null()
        {
            (sel.lib.free_delegate)(delegate);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn usb(path: &str) -> Device {
        Device {
            usb: true,
            path: path.into(),
        }
    }

    #[test]
    fn a_missing_library_names_what_was_tried_and_what_to_install() {
        let e = locate(Some(Path::new("/nonexistent/libedgetpu.so.1"))).expect_err("missing");
        assert!(e.contains("/nonexistent/libedgetpu.so.1"), "{e}");
        assert!(
            e.contains("libedgetpu1-std") && e.contains("detector.edgetpu.library"),
            "{e}"
        );
    }

    #[test]
    fn devices_are_chosen_by_kind_index_or_path() {
        let pci = Device {
            usb: false,
            path: "/dev/apex_0".into(),
        };
        let found = [
            usb("/sys/bus/usb/devices/2-1"),
            pci.clone(),
            usb("/sys/bus/usb/devices/2-2"),
        ];
        assert_eq!(choose(&found, None), Ok(found[0].clone()));
        let second_usb = EdgeTpuDevice::Kind {
            usb: true,
            index: 1,
        };
        assert_eq!(choose(&found, Some(&second_usb)), Ok(found[2].clone()));
        let apex = EdgeTpuDevice::Path("/dev/apex_0".into());
        assert_eq!(choose(&found, Some(&apex)), Ok(pci));
        let missing = EdgeTpuDevice::Kind {
            usb: false,
            index: 1,
        };
        let e = choose(&found, Some(&missing)).expect_err("one pci only");
        assert!(e.contains("pci /dev/apex_0"), "{e}");
        let e = choose(&[], None).expect_err("none");
        assert!(e.contains("/dev/apex_0") && e.contains("1a6e:089a"), "{e}");
    }
}
