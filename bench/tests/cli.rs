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
}
