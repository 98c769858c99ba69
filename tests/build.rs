//! Builds the test guest components and tells the tests where they are.

fn main() {
    let workspace = guest_build::workspace_root(1);
    let out = guest_build::out_dir();
    let probe = guest_build::build_component(
        &workspace,
        "probe-guest",
        "probe_guest",
        &["tests/guests/probe"],
        &out,
    );
    println!("cargo:rustc-env=PROBE_GUEST_WASM={}", probe.display());
}
