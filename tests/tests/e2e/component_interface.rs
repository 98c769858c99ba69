//! The built ChatGPT component exports the contract and imports only what the sandbox provides.

use accessgov_host::{Host, HostConfig, HostError, engine, imports, post_return};
use bundled_connectors as bundled;

#[test]
fn the_connector_exports_the_contract_and_imports_only_allowed_interfaces() {
    let host = Host::new(HostConfig {
        named_connectors: bundled_connectors::named(),
        ..HostConfig::default()
    })
    .unwrap();
    let component = host.compile("chatgpt", bundled::CHATGPT).unwrap();
    let found = imports::interfaces(host.engine(), &component);
    println!("imports: {:#?}\nexports: {:#?}", found.imports, found.exports);

    assert_eq!(found.exports, vec!["accessgov:connector/connector@0.2.0".to_string()]);
    let allowed_families = [
        "wasi:http/",
        "wasi:config/",
        "wasi:io/",
        "wasi:clocks/",
        "wasi:random/",
        "wasi:cli/stdin@",
        "wasi:cli/stdout@",
        "wasi:cli/stderr@",
        "wasi:cli/exit@",
        "wasi:cli/environment@",
        "accessgov:connector/types@",
        // Whether stdio is a terminal (always "no" in the sandbox): the stdio part of wasi:cli.
        "wasi:cli/terminal-",
    ];
    for import in &found.imports {
        assert!(
            allowed_families.iter().any(|family| import.starts_with(family)),
            "unexpected import {import}"
        );
    }
    assert!(found.imports.iter().any(|i| i.starts_with("wasi:http/outgoing-handler@")));
    assert!(found.imports.iter().any(|i| i.starts_with("wasi:config/store@")));
    // The host's own load-time check agrees.
    imports::check(host.engine(), "chatgpt", &component).unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_component_compiles_once_then_loads_from_the_cache_and_survives_its_entry_rewritten() {
    use accessgov_host::NamedComponent;
    use accessgov_host::cache::CacheOutcome;
    let dir = std::path::PathBuf::from(env!("CARGO_TARGET_TMPDIR"))
        .join(format!("cache-once-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    let host = |named_connectors| {
        Host::new(HostConfig {
            cache_dir: Some(dir.clone()),
            named_connectors,
            ..HostConfig::default()
        })
        .unwrap()
    };
    let first = host(bundled_connectors::named());
    assert_eq!(first.add_connector("chatgpt", bundled::CHATGPT).unwrap(), CacheOutcome::Compiled);
    assert_eq!(first.add_connector("chatgpt", bundled::CHATGPT).unwrap(), CacheOutcome::Loaded);
    let entries =
        || -> Vec<_> { std::fs::read_dir(&dir).unwrap().map(|e| e.unwrap().file_name()).collect() };
    assert_eq!(entries().len(), 1, "the private copy the load mapped has no name: {:?}", entries());

    // A bundled component's digest, computed when it was built, is that of its bytes; with it a
    // load from the cache never reads them (these are not even a component).
    for (name, named) in bundled_connectors::named() {
        let digest: [u8; 32] = <sha2::Sha256 as sha2::Digest>::digest(&named.bytes).into();
        assert_eq!(named.sha256, Some(digest), "{name}");
    }
    let not_read = NamedComponent {
        bytes: bytes::Bytes::from_static(b"never read"),
        sha256: Some(bundled::CHATGPT_SHA256),
    };
    let second = host([("chatgpt".to_string(), not_read)].into());
    let server = crate::common::mock("ws-cache", 3, 0).await;
    second
        .add_tenant(
            &server.chatgpt_tenant("t", "ws-cache", crate::common::OWNER_TOKEN),
            std::path::Path::new("."),
        )
        .unwrap();

    // The entry rewritten in place (a `cp` over it, a restore from backup) while both hosts run
    // the code loaded from it: neither faults, as they run private copies.
    for entry in std::fs::read_dir(&dir).unwrap() {
        std::fs::write(entry.unwrap().path(), b"not a compiled component").unwrap();
    }
    assert_eq!(second.info("t").await.unwrap().result.unwrap().name, "chatgpt");
    first
        .add_tenant(
            &server.chatgpt_tenant("t", "ws-cache", crate::common::OWNER_TOKEN),
            std::path::Path::new("."),
        )
        .unwrap();
    assert_eq!(first.info("t").await.unwrap().result.unwrap().name, "chatgpt");
    // A corrupt entry is compiled again, not trusted.
    assert_eq!(first.add_connector("chatgpt", bundled::CHATGPT).unwrap(), CacheOutcome::Compiled);
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn the_compile_cache_keeps_to_its_bound_evicting_the_connector_used_longest_ago() {
    use accessgov_host::cache::CacheOutcome::{Compiled, Loaded};
    use accessgov_host::cache::ComponentCache;
    let dir = std::path::PathBuf::from(env!("CARGO_TARGET_TMPDIR"))
        .join(format!("cache-bound-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    let hostile = std::fs::read(env!("HOSTILE_GUEST_WASM")).unwrap();
    let variant = std::fs::read(env!("BROKEN_REPEAT_CURSOR_WASM")).unwrap();
    let host = |cache_max_bytes| {
        Host::new(HostConfig {
            cache_dir: Some(dir.clone()),
            cache_max_bytes,
            named_connectors: bundled_connectors::named(),
            ..HostConfig::default()
        })
        .unwrap()
    };
    let entry = |host: &Host, bytes: &[u8]| {
        dir.join(format!("{}.cwasm", ComponentCache::key(host.engine(), bytes)))
    };
    let size = |path: std::path::PathBuf| std::fs::metadata(path).unwrap().len();

    let unbounded = host(u64::MAX);
    assert_eq!(unbounded.add_connector("chatgpt", bundled::CHATGPT).unwrap(), Compiled);
    assert_eq!(unbounded.add_connector("hostile", &hostile).unwrap(), Compiled);
    let chatgpt_size = size(entry(&unbounded, bundled::CHATGPT));
    // Room for these two and a quarter of another: a third build of the connector does not fit.
    let bound = chatgpt_size + size(entry(&unbounded, &hostile)) + chatgpt_size / 4;
    let host = host(bound);
    assert_eq!(host.add_connector("hostile", &hostile).unwrap(), Loaded);
    assert_eq!(host.add_connector("variant", &variant).unwrap(), Compiled);
    let exists = |bytes: &[u8]| entry(&host, bytes).exists();
    assert_eq!(
        (exists(bundled::CHATGPT), exists(&hostile), exists(&variant)),
        (false, true, true),
        "the connector used longest ago is evicted"
    );
    let total: u64 =
        std::fs::read_dir(&dir).unwrap().map(|e| e.unwrap().metadata().unwrap().len()).sum();
    assert!(total <= bound, "{total} bytes kept, over the bound of {bound}");
    assert_eq!(host.add_connector("chatgpt", bundled::CHATGPT).unwrap(), Compiled);
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn a_host_built_for_profiling_names_the_guests_functions_for_perf_compiled_or_cached() {
    use accessgov_host::cache::CacheOutcome::{Compiled, Loaded};
    // wasmtime's perf map: one per process, where `perf report` looks for names of JIT code.
    let map = std::path::PathBuf::from(format!("/tmp/perf-{}.map", std::process::id()));
    let dir = std::path::PathBuf::from(env!("CARGO_TARGET_TMPDIR"))
        .join(format!("cache-perf-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    let profiling = || {
        Host::new(HostConfig {
            perf_map: true,
            cache_dir: Some(dir.clone()),
            named_connectors: bundled_connectors::named(),
            ..HostConfig::default()
        })
        .unwrap()
    };
    // One host compiles the component, the other loads it from the cache; both stay alive.
    let (compiling, loading) = (profiling(), profiling());
    assert_eq!(compiling.add_connector("chatgpt", bundled::CHATGPT).unwrap(), Compiled);
    assert_eq!(loading.add_connector("chatgpt", bundled::CHATGPT).unwrap(), Loaded);
    let names = std::fs::read_to_string(&map);
    let maps = std::fs::read_to_string("/proc/self/maps").unwrap();
    let _ = std::fs::remove_file(&map);
    let _ = std::fs::remove_dir_all(&dir);
    let names = names.unwrap();
    // The guest's own functions, by the names its build kept: what a profile of a sync needs.
    // The connector's `list_accounts` is inlined into the SDK's export of it, named either way.
    let named: Vec<u64> = names
        .lines()
        .filter(|line| {
            (line.contains("chatgpt_connector") || line.contains("connector_sdk::guest"))
                && line.contains("list_accounts")
        })
        .map(|line| {
            let address = line.split(' ').next().unwrap().trim_start_matches("0x");
            u64::from_str_radix(address, 16).unwrap()
        })
        .collect();
    assert!(named.len() >= 2, "not named for both hosts in {}:\n{names}", map.display());
    // `perf` takes names from the map only for code in anonymous memory: code mapped from a
    // file it looks up in the file, which a cache hit's private copy no longer has a name for.
    let anonymous = |address: u64| {
        maps.lines().any(|line| {
            let mut fields = line.split_whitespace();
            let (start, end) = fields.next().unwrap().split_once('-').unwrap();
            let inside = (u64::from_str_radix(start, 16).unwrap()
                ..u64::from_str_radix(end, 16).unwrap())
                .contains(&address);
            inside && fields.nth(4).is_none()
        })
    };
    for address in named {
        assert!(anonymous(address), "{address:#x} is not in anonymous memory:\n{maps}");
    }
}

/// A component of `memories` core instances, each defining one linear memory (as a program and
/// its preview-1 adapter each do).
fn component_with_memories(memories: u32) -> Vec<u8> {
    use wasm_encoder::{
        Component, InstanceSection, MemorySection, MemoryType, Module, ModuleArg, ModuleSection,
    };
    let mut memory = MemorySection::new();
    memory.memory(MemoryType {
        minimum: 1,
        maximum: None,
        memory64: false,
        shared: false,
        page_size_log2: None,
    });
    let mut module = Module::new();
    module.section(&memory);
    let mut instances = InstanceSection::new();
    for _ in 0..memories {
        instances.instantiate(0, Vec::<(&str, ModuleArg)>::new());
    }
    let mut component = Component::new();
    component.section(&ModuleSection(&module));
    component.section(&instances);
    component.finish()
}

#[test]
fn a_component_with_more_memories_than_a_pool_slot_holds_is_refused_at_load() {
    let host = Host::new(HostConfig {
        named_connectors: bundled_connectors::named(),
        ..HostConfig::default()
    })
    .unwrap();
    let many = engine::MEMORIES_PER_COMPONENT + 1;
    let err = host.compile("many-memories", &component_with_memories(many)).unwrap_err();
    let message = err.to_string();
    assert!(
        matches!(err, HostError::InvalidComponent { .. })
            && message.contains(&format!("{many} Wasm linear memories")),
        "{message}"
    );
    // At the limit it compiles.
    host.compile("two-memories", &component_with_memories(engine::MEMORIES_PER_COMPONENT)).unwrap();
}

/// The bundled connector frees its results in post-return functions; the host compiles it
/// without them (its instances never outlive their call), and what it compiles is still a valid
/// component. That it still runs is the rest of this suite.
#[test]
fn the_host_compiles_the_connector_without_its_post_return_functions() {
    let before = post_return::post_return_options(bundled::CHATGPT).unwrap();
    assert!(before >= 9, "every contract function frees its result: {before}");
    let runnable = post_return::without_post_return(bundled::CHATGPT);
    assert_eq!(post_return::post_return_options(&runnable), Some(0));
    wasmparser::Validator::new().validate_all(&runnable).unwrap();
    assert!(runnable.len() < bundled::CHATGPT.len(), "the options are gone from its bytes");
}
