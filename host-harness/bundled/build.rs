//! Builds the connector components the harness bundles, and writes each one's SHA-256
//! (`<artifact>.sha256`, as Rust array syntax) for the host's compile cache.

use sha2::{Digest, Sha256};

fn main() {
    let workspace = guest_build::workspace_root(2);
    let out_dir = guest_build::out_dir();
    for (package, artifact, source) in [
        ("chatgpt-connector", "chatgpt_connector", "connector/chatgpt"),
        ("openai-platform-connector", "openai_platform_connector", "connector/openai-platform"),
    ] {
        let wasm = guest_build::build_component(
            &workspace,
            package,
            artifact,
            &[source, "connector/sdk"],
            &out_dir,
        );
        let bytes = std::fs::read(&wasm)
            .unwrap_or_else(|e| panic!("reading {} to hash it: {e}", wasm.display()));
        let digest: Vec<String> =
            Sha256::digest(&bytes).iter().map(|b| format!("{b:#04x}")).collect();
        let path = out_dir.join(format!("{artifact}.sha256"));
        std::fs::write(&path, format!("[{}]", digest.join(", ")))
            .unwrap_or_else(|e| panic!("writing {}: {e}", path.display()));
    }
}
