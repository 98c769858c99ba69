//! Declares 3 MiB of initial linear memory, more than the bundled connector's 2 MiB, so the
//! tests have a component that tenants capped at 2 MiB cannot run (the host refuses to swap it
//! in under them).

fn main() {
    guest_build::declare_initial_memory(3 << 20);
}
