//! Compile-once cache: components are compiled to native code once and kept on disk, keyed by
//! the hash of their bytes and the engine's compatibility hash.

use std::hash::Hasher;
use std::path::{Path, PathBuf};

use sha2::{Digest, Sha256};
use wasmtime::Engine;
use wasmtime::component::Component;

use crate::error::HostError;

/// Where a component came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CacheOutcome {
    /// Compiled now (and stored, when the cache has a directory).
    Compiled,
    /// Loaded precompiled from disk.
    Loaded,
}

/// The on-disk cache of precompiled components.
#[derive(Debug, Clone)]
pub struct ComponentCache {
    dir: Option<PathBuf>,
}

/// `Hasher` over SHA-256, so the engine's compatibility hash is stable across Rust releases.
struct Sha256Hasher(Sha256);

impl Hasher for Sha256Hasher {
    fn finish(&self) -> u64 {
        let digest = self.0.clone().finalize();
        let mut first = [0u8; 8];
        first.copy_from_slice(&digest[..8]);
        u64::from_le_bytes(first)
    }
    fn write(&mut self, bytes: &[u8]) {
        self.0.update(bytes);
    }
}

impl ComponentCache {
    /// A cache in `dir`, or none (compile every time) when `dir` is `None`.
    pub fn new(dir: Option<PathBuf>) -> Self {
        ComponentCache { dir }
    }

    /// The default cache directory: `$XDG_CACHE_HOME/accessgov-harness` or `~/.cache/accessgov-harness`.
    pub fn default_dir() -> Option<PathBuf> {
        std::env::var_os("XDG_CACHE_HOME")
            .map(PathBuf::from)
            .or_else(|| std::env::var_os("HOME").map(|home| Path::new(&home).join(".cache")))
            .map(|base| base.join("accessgov-harness"))
    }

    /// The cache key of `bytes` for `engine`.
    pub fn key(engine: &Engine, bytes: &[u8]) -> String {
        let content = Sha256::digest(bytes);
        let mut compat = Sha256Hasher(Sha256::new());
        std::hash::Hash::hash(&engine.precompile_compatibility_hash(), &mut compat);
        let compat = compat.0.finalize();
        format!("{}-{}", hex(&content[..16]), hex(&compat[..8]))
    }

    /// Loads the precompiled component for `bytes`, compiling and storing it on a miss.
    pub fn load(
        &self,
        engine: &Engine,
        name: &str,
        bytes: &[u8],
    ) -> Result<(Component, CacheOutcome), HostError> {
        let compile = || {
            Component::new(engine, bytes).map_err(|e| HostError::InvalidComponent {
                connector: name.to_string(),
                message: format!("{e:#}"),
            })
        };
        let Some(dir) = &self.dir else {
            return Ok((compile()?, CacheOutcome::Compiled));
        };
        let path = dir.join(format!("{}.cwasm", Self::key(engine, bytes)));
        if path.is_file() {
            // SAFETY: the file sits in the host's private cache directory and was written by
            // `store` below from `Component::serialize` of the same engine configuration (the key
            // includes the engine's compatibility hash); wasmtime also checks its header.
            #[allow(unsafe_code)]
            let loaded = unsafe { Component::deserialize_file(engine, &path) };
            if let Ok(component) = loaded {
                return Ok((component, CacheOutcome::Loaded));
            }
            tracing::warn!(path = %path.display(), "unreadable cache entry; recompiling");
        }
        let component = compile()?;
        self.store(dir, &path, &component)?;
        Ok((component, CacheOutcome::Compiled))
    }

    fn store(&self, dir: &Path, path: &Path, component: &Component) -> Result<(), HostError> {
        let fail = |message: String| HostError::Cache { path: path.to_path_buf(), message };
        let serialized = component.serialize().map_err(|e| fail(format!("{e:#}")))?;
        std::fs::create_dir_all(dir).map_err(|e| fail(format!("creating the directory: {e}")))?;
        // Write then rename, so a concurrent reader never sees a partial file.
        let tmp = path.with_extension(format!("tmp{}", std::process::id()));
        std::fs::write(&tmp, serialized).map_err(|e| fail(format!("writing: {e}")))?;
        std::fs::rename(&tmp, path).map_err(|e| fail(format!("renaming into place: {e}")))
    }
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}
