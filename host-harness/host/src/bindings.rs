//! Host-side bindings of the `accessgov:connector` contract: the current version (generated from
//! `wit/`), and each earlier version the host still runs (from `wit/legacy/`).

#![allow(missing_docs)]

wasmtime::component::bindgen!({
    path: "../../wit",
    world: "accessgov:connector/app-connector@0.2.0",
    imports: { default: async | trappable },
    exports: { default: async },
    additional_derives: [serde::Serialize, serde::Deserialize, PartialEq],
});

/// The contract's types (accounts, entitlements, errors, ...), as the host sees them: those of
/// the current version, whatever version a component was built against.
pub use accessgov::connector::types;

/// Contract 0.1.0, for components built before 0.2.0 (see [`crate::contract`]).
pub mod v0_1 {
    wasmtime::component::bindgen!({
        path: "../../wit/legacy/0.1.0",
        world: "accessgov:connector/app-connector@0.1.0",
        imports: { default: async | trappable },
        exports: { default: async },
    });

    /// The 0.1.0 contract's types.
    pub use accessgov::connector::types;
}
