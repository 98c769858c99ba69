//! The contract's bindings, generated once from `wit/` for every connector built on this SDK.
//!
//! [`export!`] (`connector_sdk::bindings::export!`) is wit-bindgen's export macro; connectors call
//! [`export_connector!`](crate::export_connector) instead, which implements the contract over a
//! [`Connector`](crate::Connector).

wit_bindgen::generate!({
    path: "../../wit",
    world: "accessgov:connector/http-connector",
    generate_all,
    pub_export_macro: true,
    default_bindings_module: "connector_sdk::bindings",
    additional_derives: [PartialEq, Eq],
    additional_derives_ignore: ["stream-error"],
});
