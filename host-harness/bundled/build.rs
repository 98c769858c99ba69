//! Builds the ChatGPT connector component so the harness can bundle it.

fn main() {
    let workspace = guest_build::workspace_root(2);
    guest_build::build_component(
        &workspace,
        "chatgpt-connector",
        "chatgpt_connector",
        &["connector/chatgpt", "connector/sdk"],
        &guest_build::out_dir(),
    );
}
