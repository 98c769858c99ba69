//! Host-side bindings of the `accessgov:connector` contract (generated from `wit/`).

#![allow(missing_docs)]

wasmtime::component::bindgen!({
    path: "../../wit",
    world: "accessgov:connector/app-connector",
    imports: { default: async | trappable },
    exports: { default: async },
    additional_derives: [serde::Serialize, serde::Deserialize, PartialEq],
});

/// The contract's types (accounts, entitlements, errors, ...), as the host sees them.
pub use accessgov::connector::types;
