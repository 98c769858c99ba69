//! The bench's command line refuses counts that would measure nothing, naming the argument,
//! before it starts a mock or a host.

use std::process::Command;

#[test]
fn a_zero_count_is_refused_by_name() {
    let refused = |args: &[&str]| {
        let out = Command::new(env!("CARGO_BIN_EXE_connector-bench")).args(args).output().unwrap();
        assert!(!out.status.success(), "{args:?} was accepted");
        String::from_utf8_lossy(&out.stderr).into_owned()
    };
    let cases: [(&[&str], &str); 4] = [
        (&["per-call", "--calls", "0"], "--calls"),
        (&["per-call", "--concurrency", "0"], "--concurrency"),
        (&["sync", "--runs", "0"], "--runs"),
        (&["sync", "--concurrency", "0"], "--concurrency"),
    ];
    for (args, name) in cases {
        let err = refused(args);
        assert!(err.contains(&format!("invalid value '0' for '{name}")), "{args:?}: {err}");
    }
    let err = refused(&["per-call", "--calls=-3"]);
    assert!(err.contains("invalid value '-3' for '--calls"), "{err}");
    let cache = std::env::temp_dir().join("connector-bench-idle-test");
    let idle = ["idle-worker", "--mock", "127.0.0.1:9", "--cache-dir", cache.to_str().unwrap()];
    let err = refused(&[&idle[..], &["--tenants", "0"]].concat());
    assert!(err.contains("--tenants 0 weighs nothing"), "{err}");
    let scale = ["scale-worker", "--mock", "127.0.0.1:9", "--members", "10", "--concurrency", "2"];
    let err =
        refused(&[&scale[..], &["--tenants", "5", "--syncs", "4", "--cache-dir", "x"]].concat());
    assert!(err.contains("--syncs 4 is fewer than --tenants 5"), "{err}");
    let err =
        refused(&[&scale[..], &["--tenants", "5", "--syncs", "0", "--cache-dir", "x"]].concat());
    assert!(err.contains("invalid value '0' for '--syncs"), "{err}");
}

#[test]
fn the_idle_tenants_worker_weighs_the_host_and_its_tenants() {
    let cache = std::env::temp_dir().join(format!("connector-bench-idle-{}", std::process::id()));
    let idle = |tenants: &str| {
        Command::new(env!("CARGO_BIN_EXE_connector-bench"))
            .args(["idle-worker", "--mock", "127.0.0.1:9", "--tenants", tenants, "--cache-dir"])
            .arg(&cache)
            .output()
            .unwrap()
    };
    // The bench weighs a host whose component is already in the cache. With a cold cache the
    // process compiles it first, and when the allocator returns the compiler's memory is
    // unrelated to the tenants: a fresh clone saw 201 MB before the tenants and 154 after.
    let warm = idle("1");
    let out = idle("200");
    let _ = std::fs::remove_dir_all(&cache);
    assert!(warm.status.success(), "{}", String::from_utf8_lossy(&warm.stderr));
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let result: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(result["tenants"], 200);
    let (before, after) =
        (result["before_first_call"].as_u64().unwrap(), result["after_tenants"].as_u64().unwrap());
    assert!(before > 1 << 20 && after >= before, "{result}");
}

#[test]
fn the_sync_profile_names_the_guests_functions_for_perf_only_when_asked() {
    // Runs `sync` on a small workspace; returns its output and the perf map it left, if any.
    let sync = |extra: &[&str]| {
        let child = Command::new(env!("CARGO_BIN_EXE_connector-bench"))
            .args(["sync", "--members", "200", "--runs", "1"])
            .args(extra)
            .stdout(std::process::Stdio::piped())
            .spawn()
            .unwrap();
        let map = std::path::PathBuf::from(format!("/tmp/perf-{}.map", child.id()));
        let out = child.wait_with_output().unwrap();
        assert!(out.status.success(), "sync {extra:?} failed");
        let text = std::fs::read_to_string(&map).ok();
        let _ = std::fs::remove_file(&map);
        (String::from_utf8_lossy(&out.stdout).into_owned(), text)
    };
    let (out, map) = sync(&["--perf-map"]);
    assert!(out.contains("run 1: 202 accounts in"), "{out}");
    let map = map.expect("with --perf-map, the host writes /tmp/perf-<pid>.map");
    // Each line is `address size name`; the guest's own functions are among the names.
    let guest: Vec<&str> = map.lines().filter(|l| l.contains("chatgpt_connector::")).collect();
    assert!(!guest.is_empty(), "no function of the guest is named");
    for line in guest {
        let fields: Vec<&str> = line.splitn(3, ' ').collect();
        assert!(fields.len() == 3 && fields[0].starts_with("0x"), "{line}");
        assert!(u64::from_str_radix(fields[1], 16).is_ok(), "{line}");
    }
    let (out, map) = sync(&[]);
    assert!(out.contains("run 1: 202 accounts in"), "{out}");
    assert!(map.is_none(), "without --perf-map, no perf map is written");
}

#[test]
fn per_call_times_either_bundled_connector_and_refuses_any_other_by_name() {
    let per_call = |connector: &str| {
        Command::new(env!("CARGO_BIN_EXE_connector-bench"))
            .args(["per-call", "--calls", "2", "--concurrency", "1", "--connector", connector])
            .output()
            .unwrap()
    };
    let out = per_call("openai-platform");
    let (stdout, stderr) =
        (String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    assert!(out.status.success(), "{stderr}");
    assert!(stdout.contains("instantiate + info of openai-platform, pooling, 2 calls"), "{stdout}");
    let out = per_call("slack");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "an unknown connector was accepted");
    assert!(stderr.contains("invalid value 'slack' for '--connector"), "{stderr}");
}

#[test]
fn a_reader_that_has_gone_ends_a_run_with_an_error_not_a_panic() {
    // `per-call` needs no mock (`info` sends no request) and removes its own cache.
    let mut child = Command::new(env!("CARGO_BIN_EXE_connector-bench"))
        .args(["per-call", "--calls", "2", "--concurrency", "1"])
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    drop(child.stdout.take());
    let out = child.wait_with_output().unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success() && out.status.code() != Some(101), "{:?}: {err}", out.status);
    assert!(err.contains("writing to standard output") && !err.contains("panicked"), "{err}");
}
