//! Builds the connector components the harness bundles.

fn main() {
    let workspace = guest_build::workspace_root(2);
    for (package, artifact, source) in [
        ("chatgpt-connector", "chatgpt_connector", "connector/chatgpt"),
        ("openai-platform-connector", "openai_platform_connector", "connector/openai-platform"),
    ] {
        guest_build::build_component(
            &workspace,
            package,
            artifact,
            &[source, "connector/sdk"],
            &guest_build::out_dir(),
        );
    }
}
