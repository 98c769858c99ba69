//! The connector components shipped inside the `harness` binary. Building them is this crate's
//! only job, so nothing that embeds the host compiles a guest or needs the `wasm32-wasip2` target.

use std::collections::BTreeMap;

use accessgov_host::NamedComponent;
use bytes::Bytes;

/// The ChatGPT connector component, built from `connector/chatgpt` by this crate's build script.
pub const CHATGPT: &[u8] = include_bytes!(concat!(env!("OUT_DIR"), "/chatgpt_connector.wasm"));

/// The OpenAI API Platform organization connector, built from `connector/openai-platform`.
pub const OPENAI_PLATFORM: &[u8] =
    include_bytes!(concat!(env!("OUT_DIR"), "/openai_platform_connector.wasm"));

/// The SHA-256 of [`CHATGPT`], computed by the build script.
pub const CHATGPT_SHA256: [u8; 32] =
    include!(concat!(env!("OUT_DIR"), "/chatgpt_connector.sha256"));

/// The SHA-256 of [`OPENAI_PLATFORM`], computed by the build script.
pub const OPENAI_PLATFORM_SHA256: [u8; 32] =
    include!(concat!(env!("OUT_DIR"), "/openai_platform_connector.sha256"));

/// Every bundled connector by the name tenants give it, for a host's `named_connectors`.
/// The components are static, so this copies none of them, and each carries its digest, so a
/// host loading one from its compile cache never pages its bytes in.
pub fn named() -> BTreeMap<String, NamedComponent> {
    let named =
        |bytes, sha256| NamedComponent { bytes: Bytes::from_static(bytes), sha256: Some(sha256) };
    BTreeMap::from([
        ("chatgpt".to_string(), named(CHATGPT, CHATGPT_SHA256)),
        ("openai-platform".to_string(), named(OPENAI_PLATFORM, OPENAI_PLATFORM_SHA256)),
    ])
}
