//! Sizes the component's initial linear memory: a `list-accounts` call of 1,000 accounts (the
//! largest page) uses about 1.7 MiB, so the standard 2 MiB lets every call run without growing it.

fn main() {
    guest_build::declare_initial_memory(guest_build::CONNECTOR_INITIAL_MEMORY_BYTES);
}
