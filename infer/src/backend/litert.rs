//! The LiteRT backend (TFLite models) over LiteRT's C API, loaded at run time
//! (`litert_runtime`): the CPU accelerator (XNNPACK) with the configured threads. Quantised
//! (int8/uint8) inputs are reported with their scale and zero point so the detector quantises in
//! its lookup table; quantised outputs are de-quantised here.
#![allow(unsafe_code)]

use std::ffi::{CStr, CString, c_char, c_uint, c_void};
use std::path::Path;

use super::litert_runtime::{self as rt, Api, Handle, PerTensorQuantization, RankedTensorType};
use super::{
    Backend, BackendError, BackendInfo, DType, EdgeTpuOptions, InputData, InputTensor,
    OutputTensor, Quantization,
};

const NAME: &str = "litert";

fn err(reason: impl std::fmt::Display) -> BackendError {
    BackendError {
        backend: NAME,
        reason: reason.to_string(),
    }
}

/// Runs a C call, turning a failed status into an error naming `what`.
fn check(what: &str, status: rt::Status) -> Result<(), BackendError> {
    if status == rt::STATUS_OK {
        Ok(())
    } else {
        Err(err(format!("{what}: {}", rt::status_name(status))))
    }
}

/// One input or output of the model.
#[derive(Debug, Clone)]
struct TensorMeta {
    name: String,
    ty: RankedTensorType,
    quant: Option<Quantization>,
}

impl TensorMeta {
    fn elements(&self) -> usize {
        self.ty
            .layout
            .dims()
            .iter()
            .map(|d| usize::try_from(*d).unwrap_or(0))
            .product()
    }

    fn shape(&self) -> Vec<i64> {
        self.ty
            .layout
            .dims()
            .iter()
            .map(|d| i64::from(*d))
            .collect()
    }
}

/// Every handle the backend owns; destroyed in reverse order of creation, also when loading
/// fails half-way.
struct Handles {
    api: &'static Api,
    env: Handle,
    model: Handle,
    options: Handle,
    compiled: Handle,
    inputs: Vec<Handle>,
    outputs: Vec<Handle>,
}

impl Drop for Handles {
    fn drop(&mut self) {
        let a = self.api;
        // SAFETY: each handle was created by the matching LiteRT call and is destroyed once;
        // buffers and the compiled model go before the model, options and environment they use.
        unsafe {
            for b in self.inputs.drain(..).chain(self.outputs.drain(..)) {
                (a.destroy_buffer)(b);
            }
            for (h, f) in [
                (self.compiled, a.destroy_compiled_model),
                (self.model, a.destroy_model),
                (self.options, a.destroy_options),
                (self.env, a.destroy_environment),
            ] {
                if !h.is_null() {
                    f(h);
                }
            }
        }
    }
}

pub struct LiteRtBackend {
    h: Handles,
    inputs: Vec<TensorMeta>,
    outputs: Vec<TensorMeta>,
    info: BackendInfo,
}

// SAFETY: LiteRT handles have no thread affinity; the backend is used by one thread at a time
// (`run` takes `&mut self`) and owns every handle it holds.
unsafe impl Send for LiteRtBackend {}

impl LiteRtBackend {
    /// Loads the `.tflite` file at `model` on the CPU accelerator (XNNPACK) with `threads` threads,
    /// its Edge TPU ops on the Edge TPU `edge_tpu` names.
    pub fn load(
        model: &Path,
        library: Option<&Path>,
        threads: usize,
        edge_tpu: Option<&EdgeTpuOptions>,
    ) -> Result<Self, BackendError> {
        let runtime = rt::runtime(library).map_err(err)?;
        let api = &runtime.api;
        let at = |what: &str| format!("{}: {what}", model.display());
        let mut h = Handles {
            api,
            env: std::ptr::null_mut(),
            model: std::ptr::null_mut(),
            options: std::ptr::null_mut(),
            compiled: std::ptr::null_mut(),
            inputs: Vec::new(),
            outputs: Vec::new(),
        };
        let path = c_path(model)?;
        // SAFETY: out-pointers are valid locals; the path is a NUL-terminated string that
        // outlives the call; handles passed in are live (owned by `h`).
        unsafe {
            check(
                "creating the environment",
                (api.create_environment)(0, std::ptr::null(), &mut h.env),
            )?;
            check(
                &at("reading the model"),
                (api.create_model_from_file)(path.as_ptr(), &mut h.model),
            )?;
        }
        let (inputs, outputs) = signature(api, h.model).map_err(|e| err(at(&e.reason)))?;
        h.options = cpu_options(api, threads)?;
        let tpu = edge_tpu
            .map(|o| super::edgetpu::attach(api, h.env, o))
            .transpose()?;
        if tpu.is_some() && !is_edgetpu_file(model) {
            tracing::warn!(model = %model.display(), "not compiled for the Edge TPU (edgetpu_compiler writes *_edgetpu.tflite): it runs on the CPU");
        }
        // SAFETY: as above.
        let status =
            unsafe { (api.create_compiled_model)(h.env, h.model, h.options, &mut h.compiled) };
        let what = match &tpu {
            Some(d) => format!("compiling for the Edge TPU ({d}) and the CPU (XNNPACK)"),
            None => "compiling for the CPU (XNNPACK)".to_string(),
        };
        if let (true, Some(why)) = (status != rt::STATUS_OK, super::edgetpu::take_failure()) {
            return Err(err(at(&format!("{what}: {why}"))));
        }
        check(&at(&what), status)?;
        h.inputs = buffers(api, &h, &inputs, api.input_requirements)?;
        h.outputs = buffers(api, &h, &outputs, api.output_requirements)?;
        let mut info = describe(&inputs, &outputs, threads).map_err(|r| err(at(&r)))?;
        if let Some(d) = &tpu {
            info.name = format!("{NAME} (edge tpu {d}, cpu {threads} threads)");
        }
        let mut full = false;
        // SAFETY: `compiled` is live; `full` is a valid out-pointer.
        let status = unsafe { (api.fully_accelerated)(h.compiled, &mut full) };
        tracing::debug!(model = %model.display(), status, fully_accelerated = full, library = %runtime.path.display(), "LiteRT model compiled");
        Ok(Self {
            h,
            inputs,
            outputs,
            info,
        })
    }
}

/// `edgetpu_compiler` names what it writes `<name>_edgetpu.tflite`.
fn is_edgetpu_file(p: &Path) -> bool {
    p.file_stem()
        .and_then(|s| s.to_str())
        .is_some_and(|s| s.ends_with("_edgetpu"))
}

fn c_path(p: &Path) -> Result<CString, BackendError> {
    use std::os::unix::ffi::OsStrExt;
    CString::new(p.as_os_str().as_bytes())
        .map_err(|_| err(format!("{}: a path with a NUL byte", p.display())))
}

/// The inputs and outputs of the model's main signature.
fn signature(api: &Api, model: Handle) -> Result<(Vec<TensorMeta>, Vec<TensorMeta>), BackendError> {
    let mut sig: Handle = std::ptr::null_mut();
    let (mut n_in, mut n_out) = (0usize, 0usize);
    // SAFETY: `model` is live; out-pointers are valid locals.
    unsafe {
        check("signature", (api.get_model_signature)(model, 0, &mut sig))?;
        check(
            "signature inputs",
            (api.num_signature_inputs)(sig, &mut n_in),
        )?;
        check(
            "signature outputs",
            (api.num_signature_outputs)(sig, &mut n_out),
        )?;
    }
    let get = |i: usize, f: unsafe extern "C" fn(Handle, usize, *mut Handle) -> rt::Status| {
        let mut t: Handle = std::ptr::null_mut();
        // SAFETY: `sig` is live and `i` is below its count.
        check("signature tensor", unsafe { f(sig, i, &mut t) })?;
        tensor_meta(api, t)
    };
    let inputs = (0..n_in)
        .map(|i| get(i, api.signature_input))
        .collect::<Result<_, _>>()?;
    let outputs = (0..n_out)
        .map(|i| get(i, api.signature_output))
        .collect::<Result<_, _>>()?;
    Ok((inputs, outputs))
}

fn tensor_meta(api: &Api, t: Handle) -> Result<TensorMeta, BackendError> {
    let mut name: *const c_char = std::ptr::null();
    let (mut type_id, mut q_id): (c_uint, c_uint) = (0, 0);
    let mut ty = RankedTensorType::default();
    let mut q = PerTensorQuantization::default();
    // SAFETY: `t` is a live tensor of a live model; out-pointers are valid locals. The name
    // pointer is owned by the model and copied at once.
    unsafe {
        check("tensor name", (api.tensor_name)(t, &mut name))?;
        check("tensor type", (api.tensor_type_id)(t, &mut type_id))?;
        if type_id != rt::RANKED_TENSOR {
            return Err(err("a tensor of unknown rank is not supported"));
        }
        check("tensor shape", (api.ranked_tensor_type)(t, &mut ty))?;
        check(
            "tensor quantisation",
            (api.quantization_type_id)(t, &mut q_id),
        )?;
        if q_id == rt::QUANT_PER_TENSOR {
            check(
                "tensor quantisation",
                (api.per_tensor_quantization)(t, &mut q),
            )?;
        }
    }
    let name = if name.is_null() {
        String::new()
    } else {
        // SAFETY: LiteRT returns a NUL-terminated name that lives as long as the model.
        unsafe { CStr::from_ptr(name) }
            .to_string_lossy()
            .into_owned()
    };
    let quant = match q_id {
        rt::QUANT_NONE => None,
        rt::QUANT_PER_TENSOR => Some(Quantization {
            scale: q.scale,
            zero_point: i32::try_from(q.zero_point)
                .map_err(|_| err(format!("{name}: zero point {} out of range", q.zero_point)))?,
        }),
        other => {
            return Err(err(format!(
                "{name}: quantisation kind {other} (per-channel?) is not supported on a model input or output"
            )));
        }
    };
    Ok(TensorMeta { name, ty, quant })
}

/// CPU accelerator options: XNNPACK with `threads` threads.
fn cpu_options(api: &Api, threads: usize) -> Result<Handle, BackendError> {
    unsafe extern "C" fn free_payload(p: *mut c_void) {
        // SAFETY: the payload is the `CString` leaked below, freed once by LiteRT.
        drop(unsafe { CString::from_raw(p.cast()) });
    }
    let toml = CString::new(format!("num_threads = {}\n", threads.max(1)))
        .map_err(|e| err(e.to_string()))?;
    let mut options: Handle = std::ptr::null_mut();
    let mut opaque: Handle = std::ptr::null_mut();
    // SAFETY: out-pointers are valid; the payload's ownership passes to the opaque options
    // (freed by `free_payload`) and the opaque options' to `options`.
    unsafe {
        check("options", (api.create_options)(&mut options))?;
        let done = (|| {
            check(
                "options",
                (api.set_accelerators)(options, rt::HW_ACCELERATOR_CPU),
            )?;
            let payload = toml.into_raw().cast::<c_void>();
            let s = (api.create_opaque_options)(
                rt::CPU_OPTIONS_ID.as_ptr(),
                payload,
                Some(free_payload),
                &mut opaque,
            );
            if s != rt::STATUS_OK {
                drop(CString::from_raw(payload.cast()));
            }
            check("CPU options", s)?;
            check("CPU options", (api.add_opaque_options)(options, opaque))
        })();
        if let Err(e) = done {
            (api.destroy_options)(options);
            return Err(e);
        }
    }
    Ok(options)
}

type Requirements = unsafe extern "C" fn(Handle, usize, usize, *mut Handle) -> rt::Status;

/// One host-memory buffer per tensor, as the compiled model requires.
fn buffers(
    api: &Api,
    h: &Handles,
    metas: &[TensorMeta],
    req: Requirements,
) -> Result<Vec<Handle>, BackendError> {
    let mut out = Vec::with_capacity(metas.len());
    for (i, m) in metas.iter().enumerate() {
        let mut r: Handle = std::ptr::null_mut();
        let mut b: Handle = std::ptr::null_mut();
        // SAFETY: `compiled` and `env` are live; the requirements belong to the compiled model.
        let made = unsafe {
            check("buffer requirements", req(h.compiled, 0, i, &mut r)).and_then(|()| {
                check(
                    "tensor buffer",
                    (api.create_buffer)(h.env, &m.ty, r, &mut b),
                )
            })
        };
        if let Err(e) = made {
            // SAFETY: buffers made so far are live and not yet owned by `h`.
            out.iter().for_each(|b| unsafe { (api.destroy_buffer)(*b) });
            return Err(e);
        }
        out.push(b);
    }
    Ok(out)
}

/// The backend's description of one model: one image input, its dtype and size.
fn describe(
    inputs: &[TensorMeta],
    outputs: &[TensorMeta],
    threads: usize,
) -> Result<BackendInfo, String> {
    let [input] = inputs else {
        return Err(format!("{} inputs; a detector has one", inputs.len()));
    };
    let dtype = match input.ty.element_type {
        rt::ELEMENT_F32 => DType::F32,
        rt::ELEMENT_U8 => DType::U8,
        rt::ELEMENT_I8 => DType::I8,
        other => {
            return Err(format!(
                "input {} has element type {other}; float32, uint8 or int8 is supported",
                input.name
            ));
        }
    };
    for o in outputs {
        if ![rt::ELEMENT_F32, rt::ELEMENT_U8, rt::ELEMENT_I8].contains(&o.ty.element_type) {
            return Err(format!(
                "output {} has element type {}; float32, uint8 or int8 is supported",
                o.name, o.ty.element_type
            ));
        }
    }
    Ok(BackendInfo {
        name: format!("{NAME} (cpu, xnnpack, {threads} threads)"),
        dtype,
        input_size: super::spatial_size(&input.shape()),
        input_quant: input.quant,
        dynamic_batch: false,
        outputs: outputs.iter().map(|o| o.name.clone()).collect(),
        provider: super::ProviderKind::Cpu,
        fallbacks: Vec::new(),
    })
}

impl Backend for LiteRtBackend {
    fn info(&self) -> &BackendInfo {
        &self.info
    }

    fn run(&mut self, input: InputTensor<'_>) -> Result<Vec<OutputTensor>, BackendError> {
        let meta = &self.inputs[0];
        let want = meta.elements();
        let (bytes, dtype): (&[u8], DType) = match input.data {
            InputData::F32(d) => (as_bytes(d), DType::F32),
            InputData::U8(d) => (d, DType::U8),
            InputData::I8(d) => (as_bytes(d), DType::I8),
        };
        let got: usize = input.shape.iter().product();
        if dtype != self.info.dtype || got != want {
            return Err(err(format!(
                "input {:?} {dtype:?}: the model takes {:?} {:?}",
                input.shape,
                meta.shape(),
                self.info.dtype
            )));
        }
        let api = self.h.api;
        write_buffer(api, self.h.inputs[0], bytes)?;
        // SAFETY: the compiled model and every buffer are live and sized by its requirements.
        check("run", unsafe {
            (api.run_compiled_model)(
                self.h.compiled,
                0,
                self.h.inputs.len(),
                self.h.inputs.as_mut_ptr(),
                self.h.outputs.len(),
                self.h.outputs.as_mut_ptr(),
            )
        })?;
        self.outputs
            .iter()
            .zip(&self.h.outputs)
            .map(|(m, b)| read_output(api, *b, m))
            .collect()
    }
}

fn as_bytes<T: Copy>(d: &[T]) -> &[u8] {
    // SAFETY: f32 and i8 have no padding or invalid byte patterns; the length is in bytes.
    unsafe { std::slice::from_raw_parts(d.as_ptr().cast(), std::mem::size_of_val(d)) }
}

/// Locks a buffer and hands its host memory (checked to hold `len` bytes) to `f`.
fn with_locked<R>(
    api: &Api,
    b: Handle,
    mode: c_uint,
    len: usize,
    f: impl FnOnce(*mut u8) -> R,
) -> Result<R, BackendError> {
    let mut size = 0usize;
    let mut ptr: *mut c_void = std::ptr::null_mut();
    // SAFETY: `b` is a live buffer; out-pointers are valid.
    unsafe {
        check("buffer size", (api.buffer_size)(b, &mut size))?;
        if size < len {
            return Err(err(format!("tensor buffer of {size} bytes for {len}")));
        }
        check("lock", (api.lock_buffer)(b, &mut ptr, mode))?;
    }
    let r = (!ptr.is_null()).then(|| f(ptr.cast()));
    // SAFETY: locked above.
    check("unlock", unsafe { (api.unlock_buffer)(b) })?;
    r.ok_or_else(|| err("a locked buffer without host memory"))
}

fn write_buffer(api: &Api, b: Handle, bytes: &[u8]) -> Result<(), BackendError> {
    // SAFETY: the locked memory holds at least `bytes.len()` bytes and does not overlap `bytes`.
    with_locked(api, b, rt::LOCK_WRITE, bytes.len(), |p| unsafe {
        std::ptr::copy_nonoverlapping(bytes.as_ptr(), p, bytes.len());
    })
}

/// An output as `f32`, de-quantised with its scale and zero point.
fn read_output(api: &Api, b: Handle, m: &TensorMeta) -> Result<OutputTensor, BackendError> {
    let n = m.elements();
    let q = m.quant.unwrap_or(Quantization {
        scale: 1.0,
        zero_point: 0,
    });
    let deq = |v: i32| (v - q.zero_point) as f32 * q.scale;
    let ty = m.ty.element_type;
    let size = if ty == rt::ELEMENT_F32 { 4 } else { 1 };
    // SAFETY: the locked memory holds `n` elements of the tensor's element type.
    let data = with_locked(api, b, rt::LOCK_READ, n * size, |p| unsafe {
        match ty {
            rt::ELEMENT_F32 => std::slice::from_raw_parts(p, n * 4)
                .chunks_exact(4)
                .map(|b| f32::from_ne_bytes([b[0], b[1], b[2], b[3]]))
                .collect(),
            rt::ELEMENT_U8 => std::slice::from_raw_parts(p, n)
                .iter()
                .map(|v| deq(i32::from(*v)))
                .collect(),
            _ => std::slice::from_raw_parts(p.cast::<i8>(), n)
                .iter()
                .map(|v| deq(i32::from(*v)))
                .collect(),
        }
    })?;
    Ok(OutputTensor {
        name: m.name.clone(),
        shape: m.shape(),
        data,
    })
}
