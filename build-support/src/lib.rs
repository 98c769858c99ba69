//! Build-script helpers for guests: compiling a workspace crate to a `wasm32-wasip2` component
//! (for the host crates that embed or test one), and sizing a component's initial linear memory
//! (for the guest crates themselves, see [`declare_initial_memory`]).
//!
//! The nested cargo uses its own target directory: sharing the outer one would deadlock on
//! cargo's build lock. The outer build's flags and wrappers (clippy, coverage, `target-cpu`)
//! are for the host and are not passed on.

use std::path::{Path, PathBuf};
use std::process::Command;

/// LLVM's inlining threshold for guests (its default is 225). Every call the host's JIT leaves in
/// the guest's code pays a prologue, a stack-limit check and an epoch check; fewer calls is the
/// point. Judged by callgrind's instructions for a 10,000-member sync (timings on these machines
/// moved more than the change): 3,000 takes 4% fewer than 1,000, and both 2,000 and 10,000 take
/// more than 3,000. The component is about 2.2 MiB at 3,000, 1.2 at 1,000 and 3.2 at 10,000.
pub const GUEST_INLINE_THRESHOLD: u32 = 3000;

/// Bytes in a wasm page: a linear memory's size is a whole number of them.
pub const WASM_PAGE_BYTES: u32 = 64 << 10;

/// The initial linear memory a connector declares unless its calls need more: what the host
/// keeps resident of each pooled memory between calls (its `MEMORY_KEEP_RESIDENT`), so a call
/// that fits runs without a single `memory.grow`.
pub const CONNECTOR_INITIAL_MEMORY_BYTES: u32 = 2 << 20;

/// Declares `bytes` of initial linear memory for the component the calling crate builds into:
/// call it from a guest crate's build script. The linker's default is just the stack and the
/// statics, so a component's first allocation of every call grows its memory; in the host's
/// pooled slots each growth is an `mprotect` on the way up and another when the slot is reset,
/// and the grown pages are faulted in again by the next call. Pages declared and never touched
/// cost nothing. Applies only when building for wasm32; ends the build script with a clear
/// message when `bytes` is not a positive whole number of wasm pages.
pub fn declare_initial_memory(bytes: u32) {
    let arg = initial_memory_arg(bytes).unwrap_or_else(|why| fail(&why));
    println!("cargo:rerun-if-changed=build.rs");
    if std::env::var("CARGO_CFG_TARGET_ARCH").as_deref() == Ok("wasm32") {
        println!("cargo:rustc-link-arg-cdylib={arg}");
    }
}

/// The linker's argument declaring `bytes` of initial memory, or why `bytes` cannot be.
fn initial_memory_arg(bytes: u32) -> Result<String, String> {
    if bytes == 0 || !bytes.is_multiple_of(WASM_PAGE_BYTES) {
        return Err(format!(
            "the initial memory must be a positive multiple of {WASM_PAGE_BYTES} bytes (a wasm \
             page); {bytes} is not"
        ));
    }
    Ok(format!("--initial-memory={bytes}"))
}

/// Builds `package` of the workspace at `workspace` in release mode for `wasm32-wasip2`, copies
/// `<artifact>.wasm` into `out_dir` and returns its path. Tells cargo to rerun when any of
/// `watched` (relative to the workspace) changes. Ends the build script with a clear message on
/// failure.
pub fn build_component(
    workspace: &Path,
    package: &str,
    artifact: &str,
    watched: &[&str],
    out_dir: &Path,
) -> PathBuf {
    build_component_with(workspace, package, artifact, &[], artifact, watched, out_dir)
}

/// Like [`build_component`], with cargo `features` enabled, copied to `<out_name>.wasm`.
pub fn build_component_with(
    workspace: &Path,
    package: &str,
    artifact: &str,
    features: &[&str],
    out_name: &str,
    watched: &[&str],
    out_dir: &Path,
) -> PathBuf {
    for path in watched.iter().chain(["wit", "Cargo.lock"].iter()) {
        println!("cargo:rerun-if-changed={}", workspace.join(path).display());
    }
    // Builds with features go to a directory of their own: their artifact has the default build's
    // file name, and a build script copying the default one must never pick up a variant. The
    // variants share it (and its compiled dependencies); callers build them one after another.
    let target_dir = match features {
        [] => workspace.join("target").join("wasm-guests"),
        _ => workspace.join("target").join("wasm-guests-variants"),
    };
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".to_string());
    let mut command = Command::new(cargo);
    command
        .current_dir(workspace)
        .args(["build", "--release", "--target", "wasm32-wasip2", "-p", package])
        // A guest is small, and its code is compiled again by the host's JIT, which cannot
        // inline across the codegen units or crates rustc left apart: one unit, whole-program LTO.
        // In the JIT's code every call also pays a prologue, a stack-limit check and an epoch
        // check, and LLVM's cost model for wasm leaves out of line small functions (serde_json's
        // per-key and per-string helpers) that it inlines on x86-64: a higher inlining threshold
        // (`GUEST_INLINE_THRESHOLD`) brings the guest's build closer to the native one.
        .args([
            "--config",
            "profile.release.codegen-units=1",
            "--config",
            "profile.release.lto=\"fat\"",
            "--config",
            &format!(
                "build.rustflags=[\"-Cllvm-args=-inline-threshold={GUEST_INLINE_THRESHOLD}\"]"
            ),
        ])
        .arg("--target-dir")
        .arg(&target_dir);
    if !features.is_empty() {
        command.arg("--features").arg(features.join(","));
    }
    for var in [
        "RUSTFLAGS",
        "CARGO_ENCODED_RUSTFLAGS",
        "RUSTC_WORKSPACE_WRAPPER",
        "RUSTC_WRAPPER",
        "CARGO_TARGET_DIR",
        "CARGO_BUILD_TARGET",
        "CARGO_PRIMARY_PACKAGE",
    ] {
        command.env_remove(var);
    }
    let output = match command.output() {
        Ok(output) => output,
        Err(e) => fail(&format!("could not run cargo to build `{package}`: {e}")),
    };
    if !output.status.success() {
        let stderr = String::from_utf8_lossy(&output.stderr);
        let hint = if stderr.contains("wasm32-wasip2") && stderr.contains("may not be installed") {
            "\n\nThe wasm32-wasip2 target is missing: run `rustup target add wasm32-wasip2`."
        } else {
            ""
        };
        fail(&format!("building the `{package}` component failed:\n{stderr}{hint}"));
    }
    let built = target_dir.join("wasm32-wasip2/release").join(format!("{artifact}.wasm"));
    let copied = out_dir.join(format!("{out_name}.wasm"));
    if let Err(e) = std::fs::copy(&built, &copied) {
        fail(&format!("could not copy {}: {e}", built.display()));
    }
    copied
}

/// The workspace root: the parent of the calling crate's manifest directory, or `levels` up.
pub fn workspace_root(levels: usize) -> PathBuf {
    let mut dir = PathBuf::from(std::env::var("CARGO_MANIFEST_DIR").unwrap_or_default());
    for _ in 0..levels {
        dir.pop();
    }
    dir
}

/// The build script's `OUT_DIR`.
pub fn out_dir() -> PathBuf {
    PathBuf::from(std::env::var("OUT_DIR").unwrap_or_default())
}

fn fail(message: &str) -> ! {
    for line in message.lines() {
        println!("cargo:warning={line}");
    }
    eprintln!("{message}");
    std::process::exit(1);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_initial_memory_is_a_positive_whole_number_of_wasm_pages() {
        assert_eq!(
            initial_memory_arg(CONNECTOR_INITIAL_MEMORY_BYTES).as_deref(),
            Ok("--initial-memory=2097152")
        );
        assert_eq!(initial_memory_arg(WASM_PAGE_BYTES).as_deref(), Ok("--initial-memory=65536"));
        for refused in [0, 1, WASM_PAGE_BYTES - 1, 3 * WASM_PAGE_BYTES / 2] {
            let why = initial_memory_arg(refused).unwrap_err();
            assert!(
                why.contains(&format!("multiple of 65536 bytes (a wasm page); {refused} is not"))
            );
        }
    }
}
