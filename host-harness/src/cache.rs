//! Compile-once cache: components are compiled to native code once and kept on disk, keyed by
//! the hash of their bytes and the engine's compatibility hash.

use std::hash::Hasher;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};

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
        // Read into memory rather than mmap: a cache file truncated or rewritten in place by
        // someone else must not be able to fault a running host (SIGBUS).
        if let Ok(serialized) = std::fs::read(&path) {
            // SAFETY: the bytes come from the host's own cache directory, written by `store`
            // below from `Component::serialize` of an engine with the same compatibility hash
            // (part of the key); wasmtime also validates the header and engine settings.
            #[allow(unsafe_code)]
            let loaded = unsafe { Component::deserialize(engine, &serialized) };
            match loaded {
                Ok(component) => return Ok((component, CacheOutcome::Loaded)),
                Err(e) => {
                    tracing::warn!(path = %path.display(), error = %e, "unreadable cache entry; recompiling")
                }
            }
        }
        let component = compile()?;
        // The cache only saves time: a failure to store is reported, not fatal.
        if let Err(message) = store(dir, &path, &component) {
            tracing::warn!(path = %path.display(), %message, "could not store the compiled component");
        }
        Ok((component, CacheOutcome::Compiled))
    }
}

fn store(dir: &Path, path: &Path, component: &Component) -> Result<(), String> {
    static NEXT_TMP: AtomicU64 = AtomicU64::new(0);
    let serialized = component.serialize().map_err(|e| format!("{e:#}"))?;
    std::fs::create_dir_all(dir).map_err(|e| format!("creating the directory: {e}"))?;
    // Write a file of our own, then rename: concurrent writers and readers never see a partial file.
    let unique = NEXT_TMP.fetch_add(1, Ordering::Relaxed);
    let tmp = path.with_extension(format!("tmp-{}-{unique}", std::process::id()));
    std::fs::write(&tmp, serialized).map_err(|e| format!("writing: {e}"))?;
    std::fs::rename(&tmp, path).map_err(|e| {
        let _ = std::fs::remove_file(&tmp);
        format!("renaming into place: {e}")
    })
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}
