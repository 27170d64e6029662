//! Opens an ONNX Runtime session on the first execution provider of the chain that works
//! (`providers::chain`: TensorRT, CUDA, then the CPU). A provider that cannot be registered
//! (an ONNX Runtime build without it, its libraries missing) or whose session cannot be made is
//! skipped with a warning naming what it needs, and recorded as a [`Fallback`].
//!
//! Each provider is registered by hand rather than through `with_execution_providers`, which
//! only logs a failure through `ort`'s `tracing` feature (off here) and so would fall back
//! silently.

use std::path::Path;
use std::sync::mpsc;
use std::time::{Duration, Instant};

use ort::environment::Environment;
use ort::ep::{self, ExecutionProvider};
use ort::session::builder::{GraphOptimizationLevel, SessionBuilder};
use ort::session::{Session, SessionInputValue};
use ort::value::{Tensor, TensorElementType};

use super::providers::{Fallback, Provider, ProviderKind};

/// How often a TensorRT engine build says it is still going.
const PROGRESS_EVERY: Duration = Duration::from_secs(30);

/// A session and the provider it runs on.
pub(super) struct Opened {
    pub session: Session,
    pub provider: ProviderKind,
    pub fallbacks: Vec<Fallback>,
}

/// Session settings that do not depend on the provider.
pub(super) struct Settings {
    pub threads: usize,
    pub spin: bool,
}

/// Opens `model` on the first provider of `chain` that registers and makes a session; the CPU
/// (always last in a chain) has no fallback, so its error is the error.
pub(super) fn open(
    env: &Environment,
    model: &Path,
    settings: &Settings,
    chain: &[Provider],
) -> Result<Opened, String> {
    let mut fallbacks: Vec<Fallback> = Vec::new();
    loop {
        let mut builder = base_builder(env, settings)?;
        let mut registered = Vec::new();
        for provider in chain {
            if fallbacks.iter().any(|f| f.provider == provider.kind()) {
                continue;
            }
            match register(provider, &mut builder) {
                Ok(()) => registered.push(provider),
                Err(reason) => fallbacks.push(fall_back(provider.kind(), &reason, model)),
            }
        }
        let first = registered.first().copied().unwrap_or(&Provider::Cpu);
        match commit(builder, model, first) {
            Ok(session) => {
                return Ok(Opened {
                    session,
                    provider: first.kind(),
                    fallbacks,
                });
            }
            Err(reason) if first.kind() != ProviderKind::Cpu => {
                fallbacks.push(fall_back(first.kind(), &reason, model));
            }
            Err(reason) => return Err(reason),
        }
    }
}

fn base_builder(env: &Environment, s: &Settings) -> Result<SessionBuilder, String> {
    Session::builder(env)
        .and_then(|b| Ok(b.with_optimization_level(GraphOptimizationLevel::Level3)?))
        .and_then(|b| Ok(b.with_intra_threads(s.threads)?))
        .and_then(|b| Ok(b.with_intra_op_spinning(s.spin)?))
        .map_err(|e| e.to_string())
}

/// Appends one provider to the session's options (the CPU needs nothing).
fn register(provider: &Provider, builder: &mut SessionBuilder) -> Result<(), String> {
    match provider {
        Provider::TensorRt {
            fp16,
            int8,
            engine_cache,
        } => {
            std::fs::create_dir_all(engine_cache).map_err(|e| {
                format!(
                    "engine cache {}: cannot create: {e}",
                    engine_cache.display()
                )
            })?;
            let cache = engine_cache.display();
            ep::TensorRT::default()
                .with_fp16(*fp16)
                .with_int8(*int8)
                .with_engine_cache(true)
                .with_engine_cache_path(&cache)
                .with_timing_cache(true)
                .with_timing_cache_path(&cache)
                .register(builder)
        }
        Provider::Cuda => ep::CUDA::default().register(builder),
        Provider::Cpu => Ok(()),
    }
    .map_err(|e| e.to_string())
}

/// Records and logs that `provider` is skipped.
fn fall_back(provider: ProviderKind, reason: &str, model: &Path) -> Fallback {
    let reason = reason.trim_end().trim_end_matches('.');
    tracing::warn!(
        provider = provider.label(),
        model = %model.display(),
        reason,
        needs = provider.needs(),
        "execution provider unavailable: trying the next one (the CPU last)"
    );
    Fallback {
        provider,
        reason: format!("{reason}; it needs {}", provider.needs()),
    }
}

/// Makes the session. On TensorRT this builds (or loads) the engine, and one run on zeros makes
/// sure it is built now rather than at the first frame: logged before and after, with progress.
fn commit(mut builder: SessionBuilder, model: &Path, first: &Provider) -> Result<Session, String> {
    let Provider::TensorRt { engine_cache, .. } = first else {
        return builder
            .commit_from_file(model)
            .map_err(|e| format!("{}: {e}", model.display()));
    };
    let cached = engines_in(engine_cache);
    tracing::info!(
        model = %model.display(),
        engine_cache = %engine_cache.display(),
        cached_engines = cached,
        "TensorRT: building or loading the engine; the first start with a model takes minutes \
         (the engine is then cached for the next starts)"
    );
    let started = Instant::now();
    let session = with_progress(started, || {
        let mut session = builder
            .commit_from_file(model)
            .map_err(|e| format!("{}: {e}", model.display()))?;
        warm_up(&mut session).map_err(|e| format!("{}: first run: {e}", model.display()))?;
        Ok::<_, String>(session)
    })?;
    tracing::info!(
        model = %model.display(),
        engine_cache = %engine_cache.display(),
        built = engines_in(engine_cache) > cached,
        elapsed_s = started.elapsed().as_secs_f32(),
        "TensorRT engine ready"
    );
    Ok(session)
}

/// Runs `work`, logging every [`PROGRESS_EVERY`] that it is still going.
fn with_progress<T>(started: Instant, work: impl FnOnce() -> T) -> T {
    let (done, wait) = mpsc::channel::<()>();
    std::thread::scope(|s| {
        s.spawn(move || {
            while let Err(mpsc::RecvTimeoutError::Timeout) = wait.recv_timeout(PROGRESS_EVERY) {
                tracing::info!(
                    elapsed_s = started.elapsed().as_secs(),
                    "TensorRT: still building the engine"
                );
            }
        });
        let out = work();
        drop(done);
        out
    })
}

/// TensorRT engines in the cache folder (`*.engine`).
fn engines_in(dir: &Path) -> usize {
    std::fs::read_dir(dir).map_or(0, |entries| {
        entries
            .flatten()
            .filter(|e| e.path().extension().is_some_and(|x| x == "engine"))
            .count()
    })
}

/// One run on zeros of the first input (a batch of one), when its other dimensions are fixed.
fn warm_up(session: &mut Session) -> Result<(), String> {
    let Some(input) = session.inputs().first() else {
        return Ok(());
    };
    let name = input.name().to_string();
    let dtype = input.dtype().tensor_type();
    let dims: Vec<i64> = (input.dtype().tensor_shape())
        .map(|s| s.iter().copied().collect())
        .unwrap_or_default();
    let Some(shape) = batch_of_one(&dims) else {
        return Ok(());
    };
    let n = shape.iter().product();
    let value: SessionInputValue<'_> = match dtype {
        Some(TensorElementType::Float32) => {
            Tensor::from_array((shape, vec![0f32; n])).map(Into::into)
        }
        Some(TensorElementType::Uint8) => Tensor::from_array((shape, vec![0u8; n])).map(Into::into),
        Some(TensorElementType::Int8) => Tensor::from_array((shape, vec![0i8; n])).map(Into::into),
        _ => return Ok(()),
    }
    .map_err(|e| e.to_string())?;
    session
        .run(ort::inputs![name.as_str() => value])
        .map(drop)
        .map_err(|e| e.to_string())
}

/// The input's shape with a dynamic batch of one; None when another dimension is dynamic.
fn batch_of_one(dims: &[i64]) -> Option<Vec<usize>> {
    let (first, rest) = dims.split_first()?;
    let batch = if *first < 0 {
        1
    } else {
        usize::try_from(*first).ok()?
    };
    std::iter::once(Some(batch))
        .chain(
            rest.iter()
                .map(|d| usize::try_from(*d).ok().filter(|d| *d > 0)),
        )
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_dynamic_batch_becomes_one_and_other_dynamic_sizes_skip_the_warm_up() {
        assert_eq!(batch_of_one(&[-1, 3, 64, 64]), Some(vec![1, 3, 64, 64]));
        assert_eq!(batch_of_one(&[1, 640, 640, 3]), Some(vec![1, 640, 640, 3]));
        assert_eq!(batch_of_one(&[1, 3, -1, -1]), None);
        assert_eq!(batch_of_one(&[]), None);
    }
}
