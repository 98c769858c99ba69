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
    let template_sources = ["connector/template", "connector/sdk"];
    let template = guest_build::build_component(
        &workspace,
        "template-connector",
        "template_connector",
        &template_sources,
        &out,
    );
    println!("cargo:rustc-env=TEMPLATE_WASM={}", template.display());
    // Each deliberately broken build, of each connector and of the template.
    for (package, artifact, sources, prefix) in [
        ("chatgpt-connector", "chatgpt_connector", ["connector/chatgpt", "connector/sdk"], ""),
        (
            "openai-platform-connector",
            "openai_platform_connector",
            ["connector/openai-platform", "connector/sdk"],
            "PLATFORM_",
        ),
        ("template-connector", "template_connector", template_sources, "TEMPLATE_"),
    ] {
        for (feature, name, var) in [
            ("bug-repeat-cursor", "broken_repeat_cursor", "BROKEN_REPEAT_CURSOR_WASM"),
            ("bug-dry-run-writes", "broken_dry_run_writes", "BROKEN_DRY_RUN_WRITES_WASM"),
        ] {
            let path = guest_build::build_component_with(
                &workspace,
                package,
                artifact,
                &[feature],
                &format!("{}{name}", prefix.to_lowercase()),
                &sources,
                &out,
            );
            println!("cargo:rustc-env={prefix}{var}={}", path.display());
        }
    }
}
