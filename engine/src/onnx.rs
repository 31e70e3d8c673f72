//! The one place that finds the ONNX Runtime library and builds sessions.
//!
//! ort is used with `load-dynamic`: the shared library comes from the PyPI wheel
//! `onnxruntime==1.31.1` (see `models/manifest.toml`), fetched into the project's cache
//! dir by `models/fetch.py`. `ort::init()` panics when the library is missing, so the
//! path is resolved here and a missing library is an ordinary error.

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, OnceLock};

use ort::session::{Session, builder::GraphOptimizationLevel};

use crate::error::{EngineError, Result};

/// File name of the ONNX Runtime library inside the cache dir.
pub const ORT_LIBRARY: &str = "libonnxruntime.so.1.31.1";

/// The environment, or why it could not be created (text and ONNX Runtime's error, shared by
/// every later call).
static ENV: OnceLock<std::result::Result<ort::environment::Environment, (String, Option<SharedSource>)>> =
    OnceLock::new();

type SharedSource = Arc<dyn std::error::Error + Send + Sync + 'static>;

/// Directories searched for models and the runtime, in order: `$EPATROL_MODELS_DIR`,
/// `./.cache/models`, and `.cache/models` next to the workspace the binary was built in.
pub fn search_dirs() -> Vec<PathBuf> {
    let mut dirs = Vec::new();
    if let Some(d) = std::env::var_os("EPATROL_MODELS_DIR") {
        dirs.push(PathBuf::from(d));
    }
    dirs.push(PathBuf::from(".cache/models"));
    if let Ok(exe) = std::env::current_exe() {
        // target/{debug,release}/[deps/]epatrol → workspace root
        for anc in exe.ancestors().skip(1).take(4) {
            dirs.push(anc.join(".cache/models"));
        }
    }
    dirs.push(PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../.cache/models"));
    dirs
}

/// Finds `file` in the search dirs.
pub fn locate(file: &str) -> Option<PathBuf> {
    search_dirs().into_iter().map(|d| d.join(file)).find(|p| p.is_file())
}

/// Path of the ONNX Runtime library: `$ORT_DYLIB_PATH` if set, else the cache dir.
pub fn runtime_path() -> Result<PathBuf> {
    if let Some(p) = std::env::var_os("ORT_DYLIB_PATH") {
        let p = PathBuf::from(p);
        return if p.is_file() {
            Ok(p)
        } else {
            Err(EngineError::RuntimeMissing {
                reason: format!("ORT_DYLIB_PATH={} does not exist", p.display()),
                source: None,
            })
        };
    }
    locate(ORT_LIBRARY).ok_or_else(|| EngineError::RuntimeMissing {
        reason: format!(
            "{ORT_LIBRARY} not found in {:?}; run `python3 models/fetch.py` or set ORT_DYLIB_PATH",
            search_dirs()
        ),
        source: None,
    })
}

/// The process-wide ONNX Runtime environment (ort wants exactly one), created on first use.
pub fn environment() -> Result<&'static ort::environment::Environment> {
    ENV.get_or_init(|| {
        let lib = runtime_path().map_err(|e| (e.to_string(), None))?;
        ort::init_from(&lib)
            .map_err(|e| (format!("loading {}: {e}", lib.display()), Some(Arc::new(e) as SharedSource)))?
            .with_name("epatrol")
            .build()
            .map_err(|e| (e.to_string(), Some(Arc::new(e) as SharedSource)))
    })
    .as_ref()
    .map_err(|(reason, source)| EngineError::RuntimeMissing { reason: reason.clone(), source: source.clone() })
}

/// Opens a model with `threads` intra-op threads (not spinning) and full graph
/// optimisation.
pub fn session(model: &Path, threads: usize) -> Result<Session> {
    builder(threads)?.commit_from_file(model).map_err(|e| EngineError::Model {
        name: model.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default(),
        path: model.to_path_buf(),
        reason: e.to_string(),
        source: Some(e.into()),
    })
}

/// [`session`] for a model held in memory (one embedded in another model's metadata);
/// `name` and `origin` say where it came from in errors.
pub fn session_from_memory(bytes: &[u8], name: &str, origin: &Path, threads: usize) -> Result<Session> {
    builder(threads)?.commit_from_memory(bytes).map_err(|e| EngineError::Model {
        name: name.to_string(),
        path: origin.to_path_buf(),
        reason: e.to_string(),
        source: Some(e.into()),
    })
}

/// The session settings every model shares.
fn builder(threads: usize) -> Result<ort::session::builder::SessionBuilder> {
    let env = environment()?;
    Ok(Session::builder(env)?
        .with_optimization_level(GraphOptimizationLevel::Level3)
        .map_err(ort::Error::from)?
        .with_intra_threads(threads)
        .map_err(ort::Error::from)?
        .with_inter_threads(1)
        .map_err(ort::Error::from)?
        // Idle intra-op threads sleep instead of spinning: on these shared 2-core boxes a
        // spinning worker steals the core its sibling needs (LEADER under load: 4.2 s →
        // 3.2 s per 640x480 image with 2 threads, ORT 1.31 in Python, same run).
        .with_intra_op_spinning(false)
        .map_err(ort::Error::from)?)
}

/// The f32 output `name` of a run as a flat slice, checked to have `shape`.
pub fn output_f32<'a>(outputs: &'a ort::session::SessionOutputs, name: &str, shape: &[usize]) -> Result<&'a [f32]> {
    let value = outputs.get(name).ok_or_else(|| EngineError::Inference(format!("model has no output {name:?}")))?;
    let (s, data) = value.try_extract_tensor::<f32>()?;
    if s.len() != shape.len() || s.iter().zip(shape).any(|(&a, &b)| a != b as i64) {
        return Err(EngineError::Inference(format!("model output {name} shape {s:?}, expected {shape:?}")));
    }
    Ok(data)
}

/// A small pool of sessions over one model, so several threads can run inference at once
/// (`Session::run` needs `&mut`). Each session uses one intra-op thread: on these 2-core
/// machines one thread per session and one session per core is faster than sharing.
pub struct SessionPool {
    sessions: Vec<Mutex<Session>>,
}

impl SessionPool {
    /// Opens `size` sessions of `model` (at least one).
    pub fn open(model: &Path, size: usize) -> Result<Self> {
        let sessions = (0..size.max(1)).map(|_| session(model, 1).map(Mutex::new)).collect::<Result<Vec<_>>>()?;
        Ok(Self { sessions })
    }

    /// Runs `f` with a free session, waiting for one if all are busy.
    pub fn with<T>(&self, f: impl FnOnce(&mut Session) -> Result<T>) -> Result<T> {
        for s in &self.sessions {
            if let Ok(mut guard) = s.try_lock() {
                return f(&mut guard);
            }
        }
        // All busy: queue on the first one (poisoning only happens after a panic, which
        // leaves the session itself intact).
        let mut guard = self.sessions[0].lock().unwrap_or_else(|p| p.into_inner());
        f(&mut guard)
    }

    /// Number of sessions.
    pub fn len(&self) -> usize {
        self.sessions.len()
    }

    /// Never true: a pool holds at least one session.
    pub fn is_empty(&self) -> bool {
        self.sessions.is_empty()
    }
}
