//! Connectors built with the harness and shipped inside it.

/// The ChatGPT connector component, built from `connector/` by this crate's build script.
pub const CHATGPT: &[u8] = include_bytes!(concat!(env!("OUT_DIR"), "/chatgpt_connector.wasm"));

/// The bytes of the bundled connector called `name`.
pub fn bytes(name: &str) -> Option<&'static [u8]> {
    match name {
        "chatgpt" => Some(CHATGPT),
        _ => None,
    }
}
