//! Sizes the component's initial linear memory. Without it the linker declares only the stack
//! and the statics, and every call grows the memory at its first allocation: in the host's pool
//! that is two `mprotect`s a call and the grown pages faulted in again. The template's calls
//! (pages of up to 100 people) fit in the standard 2 MiB; a connector whose largest call needs
//! more declares more.

fn main() {
    guest_build::declare_initial_memory(guest_build::CONNECTOR_INITIAL_MEMORY_BYTES);
}
