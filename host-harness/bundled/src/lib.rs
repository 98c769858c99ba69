//! The connector components shipped inside the `harness` binary. Building them is this crate's
//! only job, so nothing that embeds the host compiles a guest or needs the `wasm32-wasip2` target.

use std::collections::BTreeMap;

use bytes::Bytes;

/// The ChatGPT connector component, built from `connector/chatgpt` by this crate's build script.
pub const CHATGPT: &[u8] = include_bytes!(concat!(env!("OUT_DIR"), "/chatgpt_connector.wasm"));

/// The OpenAI API Platform organization connector, built from `connector/openai-platform`.
pub const OPENAI_PLATFORM: &[u8] =
    include_bytes!(concat!(env!("OUT_DIR"), "/openai_platform_connector.wasm"));

/// Every bundled connector by the name tenants give it, for a host's `named_connectors`.
/// The components are static, so this copies none of them.
pub fn named() -> BTreeMap<String, Bytes> {
    BTreeMap::from([
        ("chatgpt".to_string(), Bytes::from_static(CHATGPT)),
        ("openai-platform".to_string(), Bytes::from_static(OPENAI_PLATFORM)),
    ])
}
