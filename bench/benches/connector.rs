//! `cargo bench -p connector-bench [-- --quick]`: the full benchmark run of `connector-bench`
//! (built by cargo for this target, with `native-connector` beside it), arguments passed on.

use std::process::{Command, ExitCode};

fn main() -> ExitCode {
    // cargo passes `--bench` to every bench target; the bench binary has no such flag.
    let args = std::env::args().skip(1).filter(|a| a != "--bench");
    match Command::new(env!("CARGO_BIN_EXE_connector-bench")).args(args).status() {
        Ok(status) if status.success() => ExitCode::SUCCESS,
        Ok(status) => {
            eprintln!("connector-bench failed: {status}");
            ExitCode::FAILURE
        }
        Err(e) => {
            eprintln!("could not start connector-bench: {e}");
            ExitCode::FAILURE
        }
    }
}
