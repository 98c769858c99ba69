//! A hostile connector for the sandbox tests. `test-connection` runs the attack named by the
//! `attack` setting (or, with `count-reads`, reports how a body reached it); `list-accounts`
//! returns the page the `page` setting names. `info` reports, as JSON in `application`,
//! everything a guest can read (every `wasi:config` value, the environment, the arguments),
//! how many calls this instance has seen and what an earlier call left behind, in its statics
//! or anywhere in its linear memory: proof that credentials never reach a guest and that no
//! state survives from one call (or tenant) to the next.

#![cfg(target_arch = "wasm32")]
#![allow(unsafe_code, missing_docs)]

wit_bindgen::generate!({
    path: "../../../wit",
    world: "accessgov:connector/app-connector",
    generate_all,
});

use std::hint::black_box;
use std::sync::Mutex;
use std::sync::atomic::{AtomicU32, Ordering};

use accessgov::connector::types as wit;
use exports::accessgov::connector::connector::Guest;

struct Hostile;
export!(Hostile);

/// Calls this instance has served; a fresh instance per call keeps it at 1.
static CALLS: AtomicU32 = AtomicU32::new(0);
/// A secret an earlier call stashed, if one could survive into this call.
static STASH: Mutex<Option<String>> = Mutex::new(None);

/// The marker `info` writes before each copy of its tenant's secret, stored with every byte
/// raised by one so that the plain marker is never in memory until a call writes it.
const RESIDUE_MARKER_SHIFTED: &[u8] = b"sftjevf.nbslfs;";
/// Bytes of marked secrets `info` leaves in its heap at most: more than the initial memory holds
/// free, so the memory grows and the grown pages carry them too. A tenant whose memory cap
/// leaves less room gets as much as fits.
const RESIDUE_BYTES: usize = 4 << 20;

/// The byte at `address` of this instance's linear memory, read through a raw pointer: the scan
/// reads memory that the allocator may hand out while it runs, so it holds no reference to it.
fn byte_at(address: usize) -> u8 {
    // SAFETY: callers pass addresses inside the linear memory's current size, all of which is
    // readable from inside the instance.
    unsafe { std::ptr::read_volatile(std::ptr::with_exposed_provenance::<u8>(address)) }
}

/// Whether memory at `address` holds the residue marker (ending before `end`), compared byte by
/// byte against the shifted copy so the scan never builds the marker itself.
fn marker_at(address: usize, end: usize) -> bool {
    address + RESIDUE_MARKER_SHIFTED.len() <= end
        && RESIDUE_MARKER_SHIFTED
            .iter()
            .enumerate()
            .all(|(i, shifted)| byte_at(address + i).wrapping_add(1) == *shifted)
}

/// The secrets an earlier call's marked copies left anywhere in this instance's linear memory
/// (its stack, statics and heap, grown pages included), each reported once.
fn residue() -> Vec<String> {
    let end = core::arch::wasm32::memory_size::<0>() * 65536;
    let mut found: Vec<String> = Vec::new();
    // Address 0 is null to Rust; nothing of a call's lies there.
    let mut address = 8;
    while address < end {
        if !marker_at(address, end) {
            address += 1;
            continue;
        }
        address += RESIDUE_MARKER_SHIFTED.len();
        let secret: Vec<u8> =
            (address..end).map(byte_at).take_while(|b| *b != b';').take(64).collect();
        let secret = String::from_utf8_lossy(&secret).into_owned();
        if !found.contains(&secret) {
            found.push(secret);
        }
    }
    found
}

/// Leaves `secret`, marked, all over the largest heap block (up to [`RESIDUE_BYTES`]) the
/// memory cap allows, never freed.
fn leave_residue(secret: &str) {
    let marker: Vec<u8> = RESIDUE_MARKER_SHIFTED.iter().map(|b| b - 1).collect();
    let record = [marker.as_slice(), secret.as_bytes(), b";"].concat();
    let mut size = RESIDUE_BYTES;
    let mut block: Vec<u8> = Vec::new();
    while block.try_reserve_exact(size).is_err() && size > record.len() {
        size /= 2;
    }
    block.extend(record.iter().copied().cycle().take(block.capacity()));
    std::mem::forget(black_box(block));
}

fn setting(key: &str) -> String {
    wasi::config::store::get(key).ok().flatten().unwrap_or_default()
}

fn fail<T>(message: String) -> Result<T, wit::ConnectorError> {
    Err(wit::ConnectorError::Unavailable(message))
}

fn unsupported<T>() -> Result<T, wit::ConnectorError> {
    Err(wit::ConnectorError::Unsupported("hostile guest".to_string()))
}

fn recurse(depth: u64) -> u64 {
    let frame = [depth; 32];
    if black_box(depth) == u64::MAX {
        return 0;
    }
    recurse(depth + 1).wrapping_add(black_box(frame)[7])
}

fn get(url: &str, authorization: Option<&str>) -> Result<(), wit::ConnectorError> {
    let mut request = waki::Client::new().get(url);
    if let Some(value) = authorization {
        request = request.header("authorization", value);
    }
    match request.send() {
        Ok(response) => match response.body() {
            Ok(body) => fail(format!("read {} bytes", body.len())),
            Err(e) => fail(format!("reading the body failed: {e:#}")),
        },
        Err(e) => fail(format!("request failed: {e:#}")),
    }
}

/// Reads the body of `url` (plain `http`) straight from `wasi:http`, counting the reads that
/// returned bytes: the pieces the host handed the body over in. Reports them as its error, with
/// the body's length and a checksum of its bytes in order.
fn count_reads(url: &str) -> Result<(), wit::ConnectorError> {
    use waki::bindings::wasi::http::outgoing_handler::handle;
    use waki::bindings::wasi::http::types::{Fields, IncomingBody, OutgoingRequest, Scheme};
    use waki::bindings::wasi::io::streams::StreamError;

    let Some(rest) = url.strip_prefix("http://") else {
        return fail(format!("not a plain http URL: {url}"));
    };
    let (authority, path) = match rest.split_once('/') {
        Some((authority, path)) => (authority, format!("/{path}")),
        None => (rest, "/".to_string()),
    };
    let request = OutgoingRequest::new(Fields::new());
    let set = request.set_scheme(Some(&Scheme::Http)).and(request.set_authority(Some(authority)));
    if set.and(request.set_path_with_query(Some(&path))).is_err() {
        return fail(format!("the request for {url} was refused"));
    }
    let future =
        handle(request, None).map_err(|e| wit::ConnectorError::Unavailable(format!("{e:?}")))?;
    let response = loop {
        match future.get() {
            Some(response) => break response,
            None => future.subscribe().block(),
        }
    };
    let response = match response {
        Ok(Ok(response)) => response,
        other => return fail(format!("no response: {other:?}")),
    };
    let Ok(body) = response.consume() else { return fail("no body".to_string()) };
    let Ok(stream) = body.stream() else { return fail("no body stream".to_string()) };
    let (mut bytes, mut reads, mut checksum) = (0usize, 0u32, 0u64);
    loop {
        match stream.blocking_read(1 << 20) {
            Ok(chunk) if chunk.is_empty() => {}
            Ok(chunk) => {
                reads += 1;
                bytes += chunk.len();
                checksum =
                    chunk.iter().fold(checksum, |sum, b| sum.wrapping_mul(31) ^ u64::from(*b));
            }
            Err(StreamError::Closed) => break,
            Err(e) => return fail(format!("reading the body failed: {e:?}")),
        }
    }
    drop(stream);
    drop(IncomingBody::finish(body));
    fail(format!("read {bytes} bytes in {reads} reads, checksum {checksum}"))
}

impl Guest for Hostile {
    fn info() -> wit::ConnectorInfo {
        // First, before this call has read any secret of its own.
        let residue = residue();
        let calls = CALLS.fetch_add(1, Ordering::SeqCst) + 1;
        let mut stash = STASH.lock().unwrap_or_else(|p| p.into_inner());
        let before = stash.clone();
        let secret = setting("secret");
        *stash = Some(secret.clone());
        let seen = serde_json::json!({
            "calls": calls,
            "stash": before,
            "config": wasi::config::store::get_all().unwrap_or_default(),
            "env": std::env::vars().collect::<Vec<_>>(),
            "args": std::env::args().collect::<Vec<_>>(),
            "residue": residue,
        });
        leave_residue(&secret);
        wit::ConnectorInfo {
            name: "hostile".to_string(),
            version: "0.0.0".to_string(),
            application: seen.to_string(),
            entitlement_kinds: Vec::new(),
            exclusion_groups: Vec::new(),
            capabilities: wit::Capabilities {
                read_accounts: false,
                read_entitlements: false,
                write: false,
                batch: false,
                dry_run: false,
            },
            config_schema: "{}".to_string(),
        }
    }

    fn test_connection() -> Result<wit::ConnectionReport, wit::ConnectorError> {
        attack().map(|()| wit::ConnectionReport { limitations: Vec::new() })
    }

    fn list_accounts(_: wit::PageRequest) -> Result<wit::AccountPage, wit::ConnectorError> {
        page()
    }
    fn get_account(_: wit::AccountRef) -> Result<wit::Account, wit::ConnectorError> {
        unsupported()
    }
    fn list_entitlements(_: wit::PageRequest) -> Result<wit::EntitlementPage, wit::ConnectorError> {
        unsupported()
    }
    fn grant(
        _: wit::AccountRef,
        _: String,
        _: wit::ChangeOptions,
    ) -> Result<wit::ChangeResult, wit::ConnectorError> {
        unsupported()
    }
    fn revoke(
        _: wit::AccountRef,
        _: String,
        _: wit::ChangeOptions,
    ) -> Result<wit::ChangeResult, wit::ConnectorError> {
        unsupported()
    }
    fn set_entitlement(
        _: wit::AccountRef,
        _: String,
        _: String,
        _: wit::ChangeOptions,
    ) -> Result<wit::ChangeResult, wit::ConnectorError> {
        unsupported()
    }
    fn apply_batch(
        _: Vec<wit::Change>,
        _: wit::ChangeOptions,
    ) -> Result<Vec<Result<wit::ChangeResult, wit::ConnectorError>>, wit::ConnectorError> {
        unsupported()
    }
}

/// The account page the `page` setting names, from `list-accounts`: one that sets every field
/// (strings beyond ASCII among them), or one the host must refuse to lift.
fn page() -> Result<wit::AccountPage, wit::ConnectorError> {
    let mut accounts = every_field();
    match setting("page").as_str() {
        "every-field" => {}
        // SAFETY (of both `unsafe`s below): none; the point is a result no safe guest can lower.
        // The bindings only pass a string's pointer and length on, the host's lift must refuse
        // them, and the call ends there: nothing frees them. (A list cannot be made out of
        // bounds this way: the bindings read a list of strings or records to lower it.)
        "invalid-utf8" => {
            accounts[1].display_name =
                Some(unsafe { String::from_utf8_unchecked(vec![b'A', 0xff]) })
        }
        "string-out-of-bounds" => {
            accounts[1].id = unsafe { String::from_raw_parts(0xffff_0000 as *mut u8, 8, 8) }
        }
        _ => return unsupported(),
    }
    Ok(wit::AccountPage { accounts, next_cursor: Some("page-2 ✓".to_string()) })
}

/// Two accounts that between them give every field of `account` both with and without a value.
fn every_field() -> Vec<wit::Account> {
    vec![
        wit::Account {
            id: "user-1".to_string(),
            email: Some("zoe@example.com".to_string()),
            display_name: Some("Zoë Ångström 🦀".to_string()),
            status: wit::AccountStatus::Suspended,
            entitlements: vec!["role:admin".to_string(), "group:Équipe".to_string()],
            managed_by: Some("scim".to_string()),
            created_at: Some("2026-01-02T03:04:05Z".to_string()),
        },
        wit::Account {
            id: String::new(),
            email: None,
            display_name: None,
            status: wit::AccountStatus::Requested,
            entitlements: Vec::new(),
            managed_by: None,
            created_at: None,
        },
    ]
}

/// Runs the attack the `attack` setting names, from `test-connection`.
fn attack() -> Result<(), wit::ConnectorError> {
    let target = setting("target-url");
    match setting("attack").as_str() {
        "none" => Ok(()),
        "loop" => {
            let mut spin = 0u64;
            loop {
                spin = black_box(spin.wrapping_add(1));
            }
        }
        "memory" => {
            let mut hoard: Vec<Vec<u8>> = Vec::new();
            loop {
                hoard.push(vec![1u8; 1 << 20]);
                black_box(&hoard);
            }
        }
        "recursion" => fail(format!("{}", recurse(0))),
        "panic" => {
            leave_residue(&setting("secret"));
            panic!("hostile guest panicked on purpose")
        }
        // The scan's own check: what this call leaves, it finds.
        "residue" => {
            leave_residue(&setting("secret"));
            fail(format!("residue found: {:?}", residue()))
        }
        "egress" | "private" | "big-body" | "slow-body" => get(&target, None),
        "authorization" => get(&target, Some("Bearer stolen-or-forged")),
        "count-reads" => count_reads(&target),
        #[cfg(feature = "fs-and-sockets")]
        "files" => {
            let passwd = std::fs::read_to_string("/etc/passwd");
            let socket = std::net::TcpStream::connect("203.0.113.1:80");
            fail(format!("{passwd:?} {socket:?}"))
        }
        other => fail(format!("unknown attack {other:?}")),
    }
}
