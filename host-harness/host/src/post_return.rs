//! Components as this host compiles them: without their post-return functions.
//!
//! The canonical ABI lets an export name a post-return function, which the host calls once it
//! has lifted the export's result, so the guest can free that result. This host never enters an
//! instance again after its one call (every call gets a fresh store and instance, dropped when
//! the call returns), so freeing is work whose result nobody sees: a sync's post-return
//! functions freed every string of every page one by one (`docs/benchmarks.md`). The host drops
//! the option from every `canon lift` before compiling; the core modules are copied as they are
//! and nothing else changes. Whatever else a post-return function might do, it could only do it
//! inside an instance nobody uses again.

use std::convert::Infallible;

use wasm_encoder::reencode::{Error, Reencode, ReencodeComponent, component_utils};
use wasm_encoder::{CanonicalFunctionSection, Component, ComponentSectionId, RawSection};

/// Cache keys of components compiled after this transform carry it, so an entry compiled from
/// the untransformed bytes is never taken for one (see [`crate::cache`]).
pub const TRANSFORM: &str = "without-post-return/1";

/// `bytes` (a component) with no post-return function on any export; a core module, or bytes
/// this cannot parse, come back unchanged, for wasmtime to compile or to refuse with its own
/// error.
pub fn without_post_return(bytes: &[u8]) -> Vec<u8> {
    if !wasmparser::Parser::is_component(bytes) {
        return bytes.to_vec();
    }
    let mut component = Component::new();
    match WithoutPostReturn.parse_component(&mut component, wasmparser::Parser::new(0), bytes) {
        Ok(()) => component.finish(),
        Err(_) => bytes.to_vec(),
    }
}

/// How many `canon lift`s of `component` (nested components included) name a post-return
/// function; `None` if it does not parse.
pub fn post_return_options(component: &[u8]) -> Option<usize> {
    let mut count = 0;
    for payload in wasmparser::Parser::new(0).parse_all(component) {
        if let wasmparser::Payload::ComponentCanonicalSection(section) = payload.ok()? {
            for func in section {
                if let wasmparser::CanonicalFunction::Lift { options, .. } = func.ok()? {
                    count += options
                        .iter()
                        .filter(|o| matches!(o, wasmparser::CanonicalOption::PostReturn(_)))
                        .count();
                }
            }
        }
    }
    Some(count)
}

/// The re-encoder: every section as it was, but for the post-return options of lifts.
struct WithoutPostReturn;

impl Reencode for WithoutPostReturn {
    type Error = Infallible;
}

impl ReencodeComponent for WithoutPostReturn {
    fn parse_component_canonical(
        &mut self,
        section: &mut CanonicalFunctionSection,
        func: wasmparser::CanonicalFunction,
    ) -> Result<(), Error<Infallible>> {
        match func {
            wasmparser::CanonicalFunction::Lift { core_func_index, type_index, options } => {
                let options = options
                    .iter()
                    .filter(|option| !matches!(option, wasmparser::CanonicalOption::PostReturn(_)))
                    .map(|option| self.canonical_option(*option))
                    .collect::<Result<Vec<_>, _>>()?;
                section.lift(core_func_index, type_index, options);
                Ok(())
            }
            other => component_utils::parse_component_canonical(self, section, other),
        }
    }

    fn parse_component_submodule(
        &mut self,
        component: &mut Component,
        _parser: wasmparser::Parser,
        module: &[u8],
    ) -> Result<(), Error<Infallible>> {
        // Byte for byte: re-encoding a module's code gains nothing here and costs time.
        component.section(&RawSection { id: ComponentSectionId::CoreModule as u8, data: module });
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]

    use super::*;

    /// A component exporting `f: func() -> string`, lifted with or without a post-return.
    fn component(post_return: bool) -> Vec<u8> {
        let option = if post_return { "(post-return $free)" } else { "" };
        wat::parse_str(format!(
            r#"(component
                (core module $m
                    (memory (export "memory") 1)
                    (data (i32.const 16) "hello")
                    (global $freed (mut i32) (i32.const 0))
                    (func (export "f") (result i32)
                        (i32.store (i32.const 0) (i32.const 16))
                        (i32.store (i32.const 4) (i32.const 5))
                        (i32.const 0))
                    (func (export "free") (param i32) (global.set $freed (i32.const 1)))
                    (func (export "realloc") (param i32 i32 i32 i32) (result i32) (i32.const 64)))
                (core instance $m (instantiate $m))
                (alias core export $m "free" (core func $free))
                (func (export "f") (result string)
                    (canon lift (core func $m "f") (memory $m "memory")
                        (realloc (func $m "realloc")) {option})))"#
        ))
        .unwrap()
    }

    #[test]
    fn the_post_return_option_is_dropped_and_the_rest_kept() {
        let with = component(true);
        assert_eq!(post_return_options(&with), Some(1));
        let trimmed = without_post_return(&with);
        assert_eq!(post_return_options(&trimmed), Some(0));
        wasmparser::Validator::new().validate_all(&trimmed).expect("still a valid component");
        assert_eq!(trimmed, without_post_return(&component(false)), "nothing else changed");
    }

    #[test]
    fn what_is_not_a_component_comes_back_unchanged() {
        let module = wat::parse_str("(module)").unwrap();
        assert_eq!(without_post_return(&module), module);
        assert_eq!(without_post_return(b"not wasm"), b"not wasm");
        assert_eq!(post_return_options(b"not wasm"), None);
    }
}
