//! Builds the test guest components and tells the tests where they are.

fn main() {
    let workspace = guest_build::workspace_root(1);
    let out = guest_build::out_dir();
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
    for (feature, name, var) in [
        ("bug-repeat-cursor", "broken_repeat_cursor", "BROKEN_REPEAT_CURSOR_WASM"),
        ("bug-dry-run-writes", "broken_dry_run_writes", "BROKEN_DRY_RUN_WRITES_WASM"),
    ] {
        let path = guest_build::build_component_with(
            &workspace,
            "chatgpt-connector",
            "chatgpt_connector",
            &[feature],
            name,
            &["connector/chatgpt", "connector/sdk"],
            &out,
        );
        println!("cargo:rustc-env={var}={}", path.display());
    }
}
