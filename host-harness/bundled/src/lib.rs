//! The connector components shipped inside the `harness` binary. Building them is this crate's
//! only job, so nothing that embeds the host compiles a guest or needs the `wasm32-wasip2` target.

use std::collections::BTreeMap;
use std::sync::Arc;

/// The ChatGPT connector component, built from `connector/chatgpt` by this crate's build script.
pub const CHATGPT: &[u8] = include_bytes!(concat!(env!("OUT_DIR"), "/chatgpt_connector.wasm"));

/// The bytes of the bundled connector called `name`.
pub fn bytes(name: &str) -> Option<&'static [u8]> {
    match name {
        "chatgpt" => Some(CHATGPT),
        _ => None,
    }
}

/// Every bundled connector by the name tenants give it, for a host's `named_connectors`.
pub fn named() -> BTreeMap<String, Arc<[u8]>> {
    BTreeMap::from([("chatgpt".to_string(), Arc::from(CHATGPT))])
}
