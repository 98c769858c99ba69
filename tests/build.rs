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
    let watched = ["tests/guests/hostile"];
    let hostile =
        guest_build::build_component(&workspace, "hostile-guest", "hostile_guest", &watched, &out);
    println!("cargo:rustc-env=HOSTILE_GUEST_WASM={}", hostile.display());
    let fs = guest_build::build_component_with(
        &workspace,
        "hostile-guest",
        "hostile_guest",
        &["fs-and-sockets"],
        "hostile_guest_fs",
        &watched,
        &out,
    );
    println!("cargo:rustc-env=HOSTILE_FS_GUEST_WASM={}", fs.display());
}
