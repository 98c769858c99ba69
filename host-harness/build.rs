//! Builds the ChatGPT connector component so the harness can bundle it.

fn main() {
    let workspace = guest_build::workspace_root(1);
    guest_build::build_component(
        &workspace,
        "chatgpt-connector",
        "chatgpt_connector",
        &["connector/src", "connector/build.rs", "connector/Cargo.toml"],
        &guest_build::out_dir(),
    );
}
