//! Compile-once cache: components are compiled to native code once and kept on disk, keyed by
//! the hash of their bytes and the engine's compatibility hash.
//!
//! Every new build of a connector, and every host upgrade that changes the engine, adds an entry
//! of a few MiB that nothing would ever read again, so the directory is bounded: storing an entry
//! evicts the least recently used others (a load marks its entry used) until the total fits.

use std::hash::Hasher;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::SystemTime;

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

/// Bytes of compiled components a cache directory keeps by default: about a hundred builds of
/// the bundled connector (about 2.5 MiB each).
pub const DEFAULT_MAX_BYTES: u64 = 256 << 20;

/// The file name ending of compiled components; eviction counts and removes only these.
const ENTRY_EXTENSION: &str = "cwasm";

/// How a writer's temporary file's name ending begins (`tmp-<pid>-<n>`).
const TEMPORARY_EXTENSION: &str = "tmp-";

/// Age past which a temporary file is a crashed writer's leftover: writing one takes seconds.
const ABANDONED_AFTER: std::time::Duration = std::time::Duration::from_secs(3600);

/// The on-disk cache of precompiled components.
#[derive(Debug, Clone)]
pub struct ComponentCache {
    dir: Option<PathBuf>,
    max_bytes: u64,
    /// Whether a hit runs from a mapping of its entry (see [`load_entry`]) rather than from a
    /// copy on the heap.
    maps_entries: bool,
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
    /// A cache in `dir` keeping at most `max_bytes` of compiled components (the entry stored
    /// last is kept even when larger), or none (compile every time) when `dir` is `None`.
    pub fn new(dir: Option<PathBuf>, max_bytes: u64) -> Self {
        ComponentCache { dir, max_bytes, maps_entries: true }
    }

    /// The same cache, its hits read onto the heap instead of mapped: for an engine writing a
    /// perf map, as `perf` names code from wasmtime's perf map only in anonymous memory, and
    /// looks code mapped from a file up in that file, whose name the host has removed.
    pub fn reading_entries(self) -> Self {
        ComponentCache { maps_entries: false, ..self }
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
        Self::key_of_digest(engine, &Sha256::digest(bytes).into())
    }

    /// The cache key of a component whose bytes' SHA-256 is `content`, for `engine` and for the
    /// transform the host compiles components with ([`crate::post_return`]).
    pub fn key_of_digest(engine: &Engine, content: &[u8; 32]) -> String {
        let mut compat = Sha256Hasher(Sha256::new());
        std::hash::Hash::hash(&engine.precompile_compatibility_hash(), &mut compat);
        std::hash::Hash::hash(crate::post_return::TRANSFORM, &mut compat);
        let compat = compat.0.finalize();
        format!("{}-{}", hex(&content[..16]), hex(&compat[..8]))
    }

    /// Loads the precompiled component for `bytes`, compiling and storing it on a miss.
    /// `sha256`, when given, must be the SHA-256 of `bytes` (computed when they were built): a
    /// cache hit then never reads them, so a component embedded in a binary is never paged in.
    pub fn load(
        &self,
        engine: &Engine,
        name: &str,
        bytes: &[u8],
        sha256: Option<&[u8; 32]>,
    ) -> Result<(Component, CacheOutcome), HostError> {
        let compile = || {
            let runnable = crate::post_return::without_post_return(bytes);
            Component::new(engine, &runnable).map_err(|e| HostError::InvalidComponent {
                connector: name.to_string(),
                message: crate::error::component_message(&e),
            })
        };
        let Some(dir) = &self.dir else {
            return Ok((compile()?, CacheOutcome::Compiled));
        };
        let key = match sha256 {
            Some(digest) => Self::key_of_digest(engine, digest),
            None => Self::key(engine, bytes),
        };
        let path = dir.join(format!("{key}.{ENTRY_EXTENSION}"));
        if path.is_file() {
            match load_entry(engine, &path, self.maps_entries) {
                Ok(component) => {
                    mark_used(&path);
                    return Ok((component, CacheOutcome::Loaded));
                }
                Err(e) => {
                    tracing::warn!(path = %path.display(), error = %e, "unreadable cache entry; recompiling")
                }
            }
        }
        let component = compile()?;
        // The cache only saves time: a failure to store is reported, not fatal.
        match store(dir, &path, &component) {
            Ok(()) => match evict(dir, self.max_bytes, &path) {
                Ok(evicted) => {
                    for old in evicted {
                        tracing::info!(path = %old.display(), "evicted from the compile cache");
                    }
                }
                Err(e) => {
                    tracing::warn!(dir = %dir.display(), error = %e, "could not bound the compile cache")
                }
            },
            Err(message) => {
                tracing::warn!(path = %path.display(), %message, "could not store the compiled component")
            }
        }
        Ok((component, CacheOutcome::Compiled))
    }
}

/// Loads the compiled component in the entry at `path`.
///
/// The component runs from a mapping of a private copy of the entry, not of the entry itself nor
/// from a copy on the heap. Mapped, only the pages the host touches are resident, and the kernel
/// may drop them under pressure; read into memory, the whole entry was resident twice while
/// loading and once for good. Mapping the entry itself would let anyone who rewrites it in place
/// (a `cp` over it, a restore) fault the host with SIGBUS; the copy loses its name once mapped,
/// so nothing else can reach it, and its blocks are freed when the component is dropped. It is
/// made in the kernel (`copy_file_range`, which shares the blocks where the filesystem can).
/// Where no copy can be made (a cache directory the host may only read, a full disk), or `map`
/// is false, the entry is read into memory instead.
fn load_entry(engine: &Engine, path: &Path, map: bool) -> Result<Component, wasmtime::Error> {
    let copy = temporary_path(path);
    if map && std::fs::copy(path, &copy).is_ok() {
        // SAFETY: the copy was made from the host's own cache entry, written by `store` from
        // `Component::serialize` of an engine with the same compatibility hash (part of the
        // key), and no other process has its name; wasmtime also validates the header and the
        // engine's settings.
        #[allow(unsafe_code)]
        let loaded = unsafe { Component::deserialize_file(engine, &copy) };
        // Mapped (or refused): the name is no longer needed, and would only leak the file.
        let _ = std::fs::remove_file(&copy);
        return loaded;
    }
    let serialized = std::fs::read(path)?;
    // SAFETY: as above; the bytes are wasmtime's to copy, so the entry may change afterwards.
    #[allow(unsafe_code)]
    unsafe {
        Component::deserialize(engine, &serialized)
    }
}

/// A name beside `path` that no other writer or reader uses (`<entry>.tmp-<pid>-<n>`), which
/// eviction leaves alone until it is an hour old.
fn temporary_path(path: &Path) -> PathBuf {
    static NEXT_TMP: AtomicU64 = AtomicU64::new(0);
    let unique = NEXT_TMP.fetch_add(1, Ordering::Relaxed);
    path.with_extension(format!("{TEMPORARY_EXTENSION}{}-{unique}", std::process::id()))
}

fn store(dir: &Path, path: &Path, component: &Component) -> Result<(), String> {
    let serialized = component.serialize().map_err(|e| format!("{e:#}"))?;
    std::fs::create_dir_all(dir).map_err(|e| format!("creating the directory: {e}"))?;
    // Write a file of our own, then rename: concurrent writers and readers never see a partial
    // file, and a file a host has mapped is never rewritten in place.
    let tmp = temporary_path(path);
    std::fs::write(&tmp, serialized).map_err(|e| format!("writing: {e}"))?;
    std::fs::rename(&tmp, path).map_err(|e| {
        let _ = std::fs::remove_file(&tmp);
        format!("renaming into place: {e}")
    })
}

/// Marks the entry at `path` as just used (its modification time), so eviction keeps it over
/// entries used longer ago. A cache directory the host may only read is still used as it is.
fn mark_used(path: &Path) {
    if let Err(e) = set_modified(path, SystemTime::now()) {
        tracing::debug!(path = %path.display(), error = %e, "could not mark a cache entry as used");
    }
}

/// Sets the modification time of the file at `path`, which eviction reads as its last use.
fn set_modified(path: &Path, at: SystemTime) -> std::io::Result<()> {
    std::fs::File::options().append(true).open(path)?.set_modified(at)
}

/// Removes the least recently used entries of `dir` other than `keep` until the entries'
/// total size is at most `max_bytes`, and temporary files abandoned by writers that crashed;
/// returns the removed paths. A file another host removed meanwhile is skipped; other files are
/// left alone.
fn evict(dir: &Path, max_bytes: u64, keep: &Path) -> std::io::Result<Vec<PathBuf>> {
    let mut entries = Vec::new();
    let mut total: u64 = 0;
    let mut evicted = Vec::new();
    for entry in std::fs::read_dir(dir)? {
        let entry = entry?;
        let path = entry.path();
        let Some(extension) = path.extension().and_then(|e| e.to_str()) else { continue };
        let Ok(meta) = entry.metadata() else { continue };
        if extension.starts_with(TEMPORARY_EXTENSION) {
            let age = meta.modified()?.elapsed().unwrap_or_default();
            if age > ABANDONED_AFTER && remove(&path)? {
                evicted.push(path);
            }
            continue;
        }
        if extension != ENTRY_EXTENSION {
            continue;
        }
        total = total.saturating_add(meta.len());
        if path != keep {
            entries.push((meta.modified()?, meta.len(), path));
        }
    }
    entries.sort_by_key(|(used, _, _)| *used);
    for (_, len, path) in entries {
        if total <= max_bytes {
            break;
        }
        if remove(&path)? {
            evicted.push(path);
        }
        total = total.saturating_sub(len);
    }
    Ok(evicted)
}

/// Removes the file at `path`; false when it was already gone.
fn remove(path: &Path) -> std::io::Result<bool> {
    match std::fs::remove_file(path) {
        Ok(()) => Ok(true),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(false),
        Err(e) => Err(e),
    }
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    /// An empty component carrying `tag` in a custom section, so each tag has its own entry.
    fn component(tag: &str) -> Vec<u8> {
        let mut bytes = b"\0asm\x0d\x00\x01\x00".to_vec();
        let name = b"tag";
        let body_len = 1 + name.len() + tag.len();
        bytes.push(0);
        bytes.push(u8::try_from(body_len).unwrap());
        bytes.push(u8::try_from(name.len()).unwrap());
        bytes.extend_from_slice(name);
        bytes.extend_from_slice(tag.as_bytes());
        bytes
    }

    fn entry(dir: &Path, engine: &Engine, tag: &str) -> PathBuf {
        dir.join(format!("{}.{ENTRY_EXTENSION}", ComponentCache::key(engine, &component(tag))))
    }

    /// Sets the modification time of the file at `path` to `seconds_ago`.
    fn age(path: &Path, seconds_ago: u64) {
        set_modified(path, SystemTime::now() - Duration::from_secs(seconds_ago)).unwrap();
    }

    #[cfg(target_os = "linux")]
    #[test]
    fn a_hit_runs_from_a_mapping_unless_the_cache_reads_its_entries() {
        let dir = std::env::temp_dir().join(format!("cache-map-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        let engine = Engine::default();
        let cache = ComponentCache::new(Some(dir.clone()), u64::MAX);
        let load = |cache: &ComponentCache| cache.load(&engine, "m", &component("m"), None);
        assert_eq!(load(&cache).unwrap().1, CacheOutcome::Compiled);
        // Mappings of files in the cache's directory (a mapped copy keeps its path, "deleted").
        let mappings = || {
            let maps = std::fs::read_to_string("/proc/self/maps").unwrap();
            maps.lines().filter(|l| l.contains(dir.to_str().unwrap())).count()
        };
        assert_eq!(mappings(), 0);
        let (mapped, outcome) = load(&cache).unwrap();
        assert_eq!((outcome, mappings()), (CacheOutcome::Loaded, 1));
        let (read, outcome) = load(&cache.clone().reading_entries()).unwrap();
        assert_eq!((outcome, mappings()), (CacheOutcome::Loaded, 1));
        drop(mapped);
        assert_eq!(mappings(), 0);
        drop(read);
        // Nothing is left beside the entry: the mapped copy's name was removed once mapped.
        assert_eq!(std::fs::read_dir(&dir).unwrap().count(), 1);
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn storing_evicts_the_least_recently_used_entries_beyond_the_bound() {
        let dir = std::env::temp_dir().join(format!("cache-evict-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        let engine = Engine::default();
        let load =
            |cache: &ComponentCache, tag: &str| cache.load(&engine, tag, &component(tag), None);
        // Every entry is an empty component, so all are about the same size.
        let unbounded = ComponentCache::new(Some(dir.clone()), u64::MAX);
        assert_eq!(load(&unbounded, "a").unwrap().1, CacheOutcome::Compiled);
        let size = std::fs::metadata(entry(&dir, &engine, "a")).unwrap().len();
        std::fs::write(dir.join("notes.txt"), "not an entry").unwrap();
        // Temporary files: one a writer is still writing, one a crashed writer left a day ago.
        let (writing, abandoned) = (dir.join("x.tmp-1-0"), dir.join("y.tmp-2-0"));
        std::fs::write(&writing, "partial").unwrap();
        std::fs::write(&abandoned, "partial").unwrap();
        age(&abandoned, 86_400);

        let cache = ComponentCache::new(Some(dir.clone()), size * 2 + size / 2);
        assert_eq!(load(&cache, "b").unwrap().1, CacheOutcome::Compiled);
        age(&entry(&dir, &engine, "a"), 300);
        age(&entry(&dir, &engine, "b"), 200);
        // Loading `a` marks it used: `b` is now the one used longest ago.
        assert_eq!(load(&cache, "a").unwrap().1, CacheOutcome::Loaded);
        assert_eq!(load(&cache, "c").unwrap().1, CacheOutcome::Compiled);
        let exists = |tag: &str| entry(&dir, &engine, tag).exists();
        assert_eq!((exists("a"), exists("b"), exists("c")), (true, false, true));
        assert!(dir.join("notes.txt").exists(), "a file that is not an entry is left alone");
        assert_eq!(
            (writing.exists(), abandoned.exists()),
            (true, false),
            "only the abandoned goes"
        );
        assert_eq!(load(&cache, "b").unwrap().1, CacheOutcome::Compiled, "evicted, so compiled");

        // An entry larger than the whole bound is still kept: it was just stored.
        let tiny = ComponentCache::new(Some(dir.clone()), 1);
        assert_eq!(load(&tiny, "d").unwrap().1, CacheOutcome::Compiled);
        assert_eq!(["a", "b", "c", "d"].map(exists), [false, false, false, true]);
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
