//! Sizes the component's initial linear memory at the standard 2 MiB: `info`, the writes and
//! the listings of a small organization run without growing it (the linker's default, just the
//! stack and the statics, made every call grow it at its first allocation).

fn main() {
    guest_build::declare_initial_memory(guest_build::CONNECTOR_INITIAL_MEMORY_BYTES);
}
