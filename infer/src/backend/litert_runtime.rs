//! Loads `libLiteRt.so` (LiteRT 2.1.4, from the PyPI wheel `ai-edge-litert`, see
//! `scripts/setup.sh`) once per process at run time and binds the few functions of its C API the
//! backend uses. Like `ort`'s `load-dynamic`: nothing links against the library at build time, and
//! a binary without it still runs every other backend.
//!
//! The declarations follow LiteRT 2.1.4's C headers (`litert/c/litert_*.h`, the same ones the
//! `litert-sys` 0.2.1 crate vendors); the struct layouts are checked against the headers'
//! `static_assert`s below.
#![allow(unsafe_code)]

use std::ffi::{c_char, c_int, c_uint, c_void};
use std::path::{Path, PathBuf};
use std::sync::OnceLock;

use libloading::Library;

use super::library::RuntimeLibrary;

/// Every LiteRT handle (`LiteRtEnvironment`, `LiteRtModel`, ...) is an opaque pointer.
pub type Handle = *mut c_void;
pub type Status = c_uint;

pub const STATUS_OK: Status = 0;
pub const HW_ACCELERATOR_CPU: c_int = 1;
pub const LOCK_READ: c_uint = 0;
pub const LOCK_WRITE: c_uint = 1;
pub const RANKED_TENSOR: c_uint = 0;
pub const QUANT_NONE: c_uint = 0;
pub const QUANT_PER_TENSOR: c_uint = 1;
pub const ELEMENT_F32: c_uint = 1;
pub const ELEMENT_U8: c_uint = 3;
pub const ELEMENT_I8: c_uint = 9;
/// `LrtGetCpuOptionsIdentifier()`: the CPU (XNNPACK) accelerator's opaque options, whose payload
/// is a TOML string (`num_threads = 2`).
pub const CPU_OPTIONS_ID: &std::ffi::CStr = c"xnnpack";

/// `LiteRtLayout`: `unsigned rank : 7; bool has_strides : 1;` then dimensions and strides.
#[repr(C)]
#[derive(Debug, Clone, Copy, Default)]
pub struct Layout {
    pub rank_bits: u8,
    pub dimensions: [i32; 8],
    pub strides: [u32; 8],
}

impl Layout {
    pub fn dims(&self) -> &[i32] {
        let rank = usize::from(self.rank_bits & 0x7f).min(self.dimensions.len());
        &self.dimensions[..rank]
    }
}

/// `LiteRtRankedTensorType`.
#[repr(C)]
#[derive(Debug, Clone, Copy, Default)]
pub struct RankedTensorType {
    pub element_type: c_uint,
    pub layout: Layout,
}

/// `LiteRtQuantizationPerTensor`.
#[repr(C)]
#[derive(Debug, Clone, Copy, Default)]
pub struct PerTensorQuantization {
    pub scale: f32,
    pub zero_point: i64,
}

// The headers' static_asserts (litert_layout.h, litert_model_types.h).
const _: () = assert!(std::mem::size_of::<Layout>() == 68);
const _: () = assert!(std::mem::offset_of!(Layout, dimensions) == 4);
const _: () = assert!(std::mem::offset_of!(Layout, strides) == 36);
const _: () = assert!(std::mem::size_of::<RankedTensorType>() == 72);
const _: () = assert!(std::mem::size_of::<PerTensorQuantization>() == 16);

pub type Deleter = Option<unsafe extern "C" fn(*mut c_void)>;

/// `LiteRtApiVersion`.
#[repr(C)]
#[derive(Debug, Clone, Copy, Default)]
pub struct ApiVersion {
    pub major: c_int,
    pub minor: c_int,
    pub patch: c_int,
}

/// `kLiteRtHwAcceleratorNpu`, a bit of `LiteRtHwAcceleratorSet` (an `int`).
pub const HW_ACCELERATOR_NPU: c_int = 4;

// An accelerator's callbacks (litert/c/internal/litert_accelerator_registration.h, 2.1.4): the
// accelerator handle is passed back; the runtime context is opaque here.
pub type GetNameFn = unsafe extern "C" fn(Handle, *mut *const c_char) -> Status;
pub type GetVersionFn = unsafe extern "C" fn(Handle, *mut ApiVersion) -> Status;
pub type GetHardwareFn = unsafe extern "C" fn(Handle, *mut c_int) -> Status;
/// `(runtime_context, environment, accelerator, options, *delegate_wrapper)`.
pub type CreateDelegateFn =
    unsafe extern "C" fn(*mut c_void, Handle, Handle, Handle, *mut Handle) -> Status;
/// `(runtime_context, delegate_wrapper)`.
pub type DestroyDelegateFn = unsafe extern "C" fn(*mut c_void, Handle);

macro_rules! api {
    ($($field:ident = $sym:literal: fn($($arg:ty),*) $(-> $ret:ty)?;)*) => {
        /// The bound C functions.
        pub struct Api {
            $(pub $field: unsafe extern "C" fn($($arg),*) $(-> $ret)?,)*
        }

        impl Api {
            /// # Safety
            /// `lib` must be LiteRT 2.1.x, whose functions have these signatures.
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
    create_environment = "LiteRtCreateEnvironment": fn(c_int, *const c_void, *mut Handle) -> Status;
    destroy_environment = "LiteRtDestroyEnvironment": fn(Handle);
    create_model_from_file = "LiteRtCreateModelFromFile": fn(*const c_char, *mut Handle) -> Status;
    destroy_model = "LiteRtDestroyModel": fn(Handle);
    get_model_signature = "LiteRtGetModelSignature": fn(Handle, usize, *mut Handle) -> Status;
    num_signature_inputs = "LiteRtGetNumSignatureInputs": fn(Handle, *mut usize) -> Status;
    num_signature_outputs = "LiteRtGetNumSignatureOutputs": fn(Handle, *mut usize) -> Status;
    signature_input = "LiteRtGetSignatureInputTensorByIndex": fn(Handle, usize, *mut Handle) -> Status;
    signature_output = "LiteRtGetSignatureOutputTensorByIndex": fn(Handle, usize, *mut Handle) -> Status;
    tensor_name = "LiteRtGetTensorName": fn(Handle, *mut *const c_char) -> Status;
    tensor_type_id = "LiteRtGetTensorTypeId": fn(Handle, *mut c_uint) -> Status;
    ranked_tensor_type = "LiteRtGetRankedTensorType": fn(Handle, *mut RankedTensorType) -> Status;
    quantization_type_id = "LiteRtGetQuantizationTypeId": fn(Handle, *mut c_uint) -> Status;
    per_tensor_quantization = "LiteRtGetPerTensorQuantization": fn(Handle, *mut PerTensorQuantization) -> Status;
    create_options = "LiteRtCreateOptions": fn(*mut Handle) -> Status;
    destroy_options = "LiteRtDestroyOptions": fn(Handle);
    set_accelerators = "LiteRtSetOptionsHardwareAccelerators": fn(Handle, c_int) -> Status;
    create_opaque_options = "LiteRtCreateOpaqueOptions": fn(*const c_char, *mut c_void, Deleter, *mut Handle) -> Status;
    add_opaque_options = "LiteRtAddOpaqueOptions": fn(Handle, Handle) -> Status;
    create_compiled_model = "LiteRtCreateCompiledModel": fn(Handle, Handle, Handle, *mut Handle) -> Status;
    destroy_compiled_model = "LiteRtDestroyCompiledModel": fn(Handle);
    fully_accelerated = "LiteRtCompiledModelIsFullyAccelerated": fn(Handle, *mut bool) -> Status;
    run_compiled_model = "LiteRtRunCompiledModel": fn(Handle, usize, usize, *mut Handle, usize, *mut Handle) -> Status;
    input_requirements = "LiteRtGetCompiledModelInputBufferRequirements": fn(Handle, usize, usize, *mut Handle) -> Status;
    output_requirements = "LiteRtGetCompiledModelOutputBufferRequirements": fn(Handle, usize, usize, *mut Handle) -> Status;
    create_buffer = "LiteRtCreateManagedTensorBufferFromRequirements": fn(Handle, *const RankedTensorType, Handle, *mut Handle) -> Status;
    destroy_buffer = "LiteRtDestroyTensorBuffer": fn(Handle);
    buffer_size = "LiteRtGetTensorBufferSize": fn(Handle, *mut usize) -> Status;
    lock_buffer = "LiteRtLockTensorBuffer": fn(Handle, *mut *mut c_void, c_uint) -> Status;
    unlock_buffer = "LiteRtUnlockTensorBuffer": fn(Handle) -> Status;
    create_accelerator = "LiteRtCreateAccelerator": fn(*mut Handle) -> Status;
    destroy_accelerator = "LiteRtDestroyAccelerator": fn(Handle) -> Status;
    register_accelerator = "LiteRtRegisterAccelerator": fn(Handle, Handle, *mut c_void, Deleter) -> Status;
    set_accelerator_name = "LiteRtSetAcceleratorGetName": fn(Handle, GetNameFn) -> Status;
    set_accelerator_version = "LiteRtSetAcceleratorGetVersion": fn(Handle, GetVersionFn) -> Status;
    set_accelerator_hardware = "LiteRtSetAcceleratorGetHardwareSupport": fn(Handle, GetHardwareFn) -> Status;
    set_delegate_function = "LiteRtSetDelegateFunction": fn(Handle, CreateDelegateFn, DestroyDelegateFn) -> Status;
    wrap_delegate = "LiteRtWrapDelegate": fn(*mut c_void, *mut Handle) -> Status;
    unwrap_delegate = "LiteRtUnwrapDelegate": fn(Handle, *mut *mut c_void) -> Status;
}

/// The loaded library and its functions (never unloaded).
pub struct Runtime {
    pub api: Api,
    pub path: PathBuf,
    _lib: Library,
}

static RUNTIME: OnceLock<Result<Runtime, String>> = OnceLock::new();

/// Where the library is looked for when the config names none: `$LITERT_LIB_PATH`, then the project's
/// `.cache/litert/` next to (or above) the executable and the working directory.
const LIBRARY: RuntimeLibrary = RuntimeLibrary {
    name: "libLiteRt.so",
    env: "LITERT_LIB_PATH",
    rel: ".cache/litert/libLiteRt.so",
    hint: "set LITERT_LIB_PATH",
};

/// The paths tried for the library, in order.
pub fn candidates(configured: Option<&Path>) -> Vec<PathBuf> {
    LIBRARY.candidates(configured)
}

/// The first candidate that exists.
pub fn locate(configured: Option<&Path>) -> Result<PathBuf, String> {
    LIBRARY.locate(configured)
}

/// The process-wide runtime, loading the library on first use (later calls get the same one).
pub fn runtime(configured: Option<&Path>) -> Result<&'static Runtime, String> {
    RUNTIME
        .get_or_init(|| {
            let path = locate(configured)?;
            // SAFETY: loading LiteRT runs its initialisers, which have no preconditions; the
            // symbols are bound with the signatures of LiteRT 2.1.4's headers.
            let lib =
                unsafe { Library::new(&path) }.map_err(|e| format!("{}: {e}", path.display()))?;
            let api = unsafe { Api::bind(&lib) }.map_err(|e| {
                format!(
                    "{}: {e} (LiteRT 2.1.4 from the ai-edge-litert wheel is expected)",
                    path.display()
                )
            })?;
            Ok(Runtime {
                api,
                path,
                _lib: lib,
            })
        })
        .as_ref()
        .map_err(Clone::clone)
}

/// The runtime, when already loaded (for callbacks LiteRT makes into this crate).
pub fn loaded() -> Option<&'static Runtime> {
    RUNTIME.get().and_then(|r| r.as_ref().ok())
}

/// A status as text: LiteRT's name for it where known.
pub fn status_name(s: Status) -> String {
    let name = match s {
        1 => "invalid argument",
        2 => "memory allocation failure",
        3 => "runtime failure",
        4 => "missing input tensor",
        5 => "unsupported",
        6 => "not found",
        8 => "wrong version",
        500 => "file I/O",
        501 => "invalid flatbuffer",
        502 => "dynamic loading",
        504 => "compilation",
        _ => "error",
    };
    format!("{name} (LiteRtStatus {s})")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_configured_path_is_the_only_candidate_and_a_missing_one_is_named() {
        let p = Path::new("/nonexistent/libLiteRt.so");
        assert_eq!(candidates(Some(p)), vec![p.to_path_buf()]);
        let e = locate(Some(p)).expect_err("missing");
        assert!(e.contains("/nonexistent/libLiteRt.so") && e.contains("scripts/setup.sh"));
    }

    #[test]
    fn layout_rank_is_the_low_seven_bits() {
        let mut l = Layout {
            rank_bits: 0x80 | 3,
            ..Layout::default()
        };
        l.dimensions[..3].copy_from_slice(&[1, 84, 8400]);
        assert_eq!(l.dims(), &[1, 84, 8400]);
        assert_eq!(status_name(501), "invalid flatbuffer (LiteRtStatus 501)");
    }
}
