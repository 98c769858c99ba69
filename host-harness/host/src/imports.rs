//! Load-time checks: a connector may import only what the sandbox provides and must export the
//! contract.

use wasmtime::Engine;
use wasmtime::component::Component;

use crate::error::HostError;

/// The contract interface every connector exports (a version the host runs: see
/// [`crate::contract::ContractVersion`]).
pub const CONTRACT_EXPORT: &str = "accessgov:connector/connector@0.";

/// Import families the sandbox provides. Everything else (sockets, filesystem, ...) is refused.
pub const ALLOWED_IMPORTS: &[&str] = &[
    "wasi:http/types@0.2",
    "wasi:http/outgoing-handler@0.2",
    "wasi:config/store@0.2",
    "wasi:io/",
    "wasi:clocks/",
    "wasi:random/",
    "wasi:cli/stdin@0.2",
    "wasi:cli/stdout@0.2",
    "wasi:cli/stderr@0.2",
    "wasi:cli/exit@0.2",
    "wasi:cli/environment@0.2",
    // Rust's std asks whether stdio is a terminal; the sandbox always answers no.
    "wasi:cli/terminal-",
    "accessgov:connector/types@0.",
];

/// What a component imports and exports, by interface name.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ComponentInterfaces {
    /// Imported interfaces, e.g. `wasi:http/types@0.2.2`.
    pub imports: Vec<String>,
    /// Exported interfaces.
    pub exports: Vec<String>,
}

/// Lists the component's imports and exports.
pub fn interfaces(engine: &Engine, component: &Component) -> ComponentInterfaces {
    let ty = component.component_type();
    ComponentInterfaces {
        imports: ty.imports(engine).map(|(name, _)| name.to_string()).collect(),
        exports: ty.exports(engine).map(|(name, _)| name.to_string()).collect(),
    }
}

/// Whether `import` belongs to an allowed family.
pub fn is_allowed_import(import: &str) -> bool {
    ALLOWED_IMPORTS.iter().any(|prefix| import.starts_with(prefix))
}

/// Refuses a component that imports anything outside [`ALLOWED_IMPORTS`] or does not export the
/// contract, naming the offending import.
pub fn check(engine: &Engine, name: &str, component: &Component) -> Result<(), HostError> {
    let found = interfaces(engine, component);
    if let Some(import) = found.imports.iter().find(|i| !is_allowed_import(i)) {
        return Err(HostError::ForbiddenImport {
            connector: name.to_string(),
            import: import.clone(),
            allowed: "wasi:http, wasi:config, wasi:io, wasi:clocks, wasi:random, wasi:cli stdio/terminal/exit/environment"
                .to_string(),
        });
    }
    if !found.exports.iter().any(|e| e.starts_with(CONTRACT_EXPORT)) {
        return Err(HostError::MissingExport {
            connector: name.to_string(),
            expected: CONTRACT_EXPORT.to_string(),
            found: if found.exports.is_empty() {
                "nothing".to_string()
            } else {
                found.exports.join(", ")
            },
        });
    }
    Ok(())
}
