//! The component's memory allocator: a free list per power-of-two size class, carved from chunks
//! of a backing allocator.
//!
//! Why not the default (wasi-libc's dlmalloc): a call's instance lives for one call, and nearly
//! all it allocates is small (the strings of a parsed page and of the accounts made from them),
//! freed in bulk when the call returns, by the canonical ABI's post-return function. dlmalloc's
//! splitting, coalescing and bin searches were a quarter of the guest's time on a sync; a class's
//! free list makes allocating and freeing a small block a few instructions.
//!
//! Memory stays bounded: a freed block is reused by the next allocation of its class, so a call
//! that pages through a whole workspace holds at most the peak of its live small blocks per
//! class (plus, per chunk, a tail smaller than one block). Blocks above [`LARGEST_CLASS`] bytes
//! or aligned above [`BLOCK_ALIGN`] go to the backing allocator, which returns their memory.
//!
//! Not thread-safe: it keeps its state in `Cell`s, so it is `Sync` (and can be a
//! `#[global_allocator]`) only on single-threaded wasm32.

use std::alloc::{GlobalAlloc, Layout};
use std::cell::Cell;
use std::ptr;

/// Smallest block, and the alignment of every block: a class's size is a multiple of it.
pub const BLOCK_ALIGN: usize = 16;
/// Largest block served from a class.
pub const LARGEST_CLASS: usize = 4096;
/// Bytes asked of the backing allocator at a time for new blocks.
pub const CHUNK_BYTES: usize = 64 << 10;

const CLASSES: usize = (LARGEST_CLASS / BLOCK_ALIGN).trailing_zeros() as usize + 1;

/// Size-class allocator over `backing` (see the module's doc).
pub struct SizeClasses<A: GlobalAlloc> {
    backing: A,
    /// Head of each class's free list; a free block's first word points at the next.
    free: [Cell<*mut u8>; CLASSES],
    /// Where the current chunk's unused part starts and ends.
    next: Cell<*mut u8>,
    end: Cell<*mut u8>,
}

impl<A: GlobalAlloc> SizeClasses<A> {
    /// An allocator that takes its chunks and large blocks from `backing`.
    pub const fn new(backing: A) -> Self {
        SizeClasses {
            backing,
            free: [const { Cell::new(ptr::null_mut()) }; CLASSES],
            next: Cell::new(ptr::null_mut()),
            end: Cell::new(ptr::null_mut()),
        }
    }

    /// The class of `layout`, or `None` for the backing allocator. Depends on the layout only,
    /// so `dealloc` finds the class `alloc` used.
    fn class(layout: Layout) -> Option<usize> {
        if layout.align() > BLOCK_ALIGN || layout.size() > LARGEST_CLASS {
            return None;
        }
        let block = layout.size().max(BLOCK_ALIGN).next_power_of_two();
        Some((block / BLOCK_ALIGN).trailing_zeros() as usize)
    }

    fn block_size(class: usize) -> usize {
        BLOCK_ALIGN << class
    }

    /// A block of `class`: a freed one if there is one, else carved from the chunk.
    ///
    /// # Safety
    /// Single-threaded use only (see the module's doc).
    #[allow(unsafe_code)]
    unsafe fn alloc_class(&self, class: usize) -> *mut u8 {
        let head = self.free[class].get();
        if !head.is_null() {
            // SAFETY: `head` is a freed block of this class, at least a pointer wide and
            // aligned for one; its first word was written by `dealloc`.
            self.free[class].set(unsafe { head.cast::<*mut u8>().read() });
            return head;
        }
        let size = Self::block_size(class);
        let next = self.next.get();
        if (self.end.get() as usize).saturating_sub(next as usize) >= size {
            // SAFETY: `next + size` stays within the current chunk.
            self.next.set(unsafe { next.add(size) });
            return next;
        }
        // The rest of the chunk (smaller than this block) is left unused.
        // SAFETY: CHUNK_BYTES and BLOCK_ALIGN make a valid, non-zero layout.
        let chunk = unsafe {
            self.backing.alloc(Layout::from_size_align_unchecked(CHUNK_BYTES, BLOCK_ALIGN))
        };
        if chunk.is_null() {
            return chunk;
        }
        // SAFETY: both stay within (or one past the end of) the new chunk.
        unsafe {
            self.next.set(chunk.add(size));
            self.end.set(chunk.add(CHUNK_BYTES));
        }
        chunk
    }
}

// SAFETY: a component instance has one thread (wasm32 without the atomics feature), so the
// `Cell`s are never touched from two threads.
#[cfg(all(target_arch = "wasm32", not(target_feature = "atomics")))]
#[allow(unsafe_code)]
unsafe impl<A: GlobalAlloc> Sync for SizeClasses<A> {}

#[allow(unsafe_code)]
// SAFETY: every block handed out is `BLOCK_ALIGN`-aligned and at least `layout.size()` bytes
// (its class's size), and is handed out again only after `dealloc`; other layouts are the
// backing allocator's.
unsafe impl<A: GlobalAlloc> GlobalAlloc for SizeClasses<A> {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        match Self::class(layout) {
            // SAFETY: the caller's single-threaded use (see the module's doc).
            Some(class) => unsafe { self.alloc_class(class) },
            // SAFETY: forwarded with the caller's valid layout.
            None => unsafe { self.backing.alloc(layout) },
        }
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        match Self::class(layout) {
            Some(class) => {
                // SAFETY: `ptr` is a block of this class (same layout as its `alloc`), no
                // longer used by the caller, so its first word may hold the list's link.
                unsafe { ptr.cast::<*mut u8>().write(self.free[class].get()) };
                self.free[class].set(ptr);
            }
            // SAFETY: allocated by the backing allocator with this layout.
            None => unsafe { self.backing.dealloc(ptr, layout) },
        }
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        // SAFETY: `new_size` with the old alignment is a valid layout (the caller's contract).
        let new_layout = unsafe { Layout::from_size_align_unchecked(new_size, layout.align()) };
        match (Self::class(layout), Self::class(new_layout)) {
            (Some(old), Some(new)) if old == new => ptr,
            // SAFETY: both layouts are the backing allocator's.
            (None, None) => unsafe { self.backing.realloc(ptr, layout, new_size) },
            _ => {
                // SAFETY: a fresh block of the new layout; the old one is valid for
                // `layout.size()` bytes and is freed once copied.
                unsafe {
                    let moved = self.alloc(new_layout);
                    if !moved.is_null() {
                        ptr::copy_nonoverlapping(ptr, moved, layout.size().min(new_size));
                        self.dealloc(ptr, layout);
                    }
                    moved
                }
            }
        }
    }
}

#[cfg(test)]
#[allow(unsafe_code)]
mod tests {
    use super::*;
    use std::alloc::System;
    use std::collections::BTreeMap;
    use std::sync::atomic::{AtomicUsize, Ordering};

    /// The system allocator, counting the bytes it holds for the allocator under test.
    #[derive(Default)]
    struct Counting {
        held: AtomicUsize,
        peak: AtomicUsize,
    }

    unsafe impl GlobalAlloc for &Counting {
        unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
            let held = self.held.fetch_add(layout.size(), Ordering::Relaxed) + layout.size();
            self.peak.fetch_max(held, Ordering::Relaxed);
            unsafe { System.alloc(layout) }
        }
        unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
            self.held.fetch_sub(layout.size(), Ordering::Relaxed);
            unsafe { System.dealloc(ptr, layout) }
        }
    }

    /// A deterministic stream of layouts and choices (xorshift).
    struct Rng(u64);
    impl Rng {
        fn below(&mut self, n: u64) -> u64 {
            self.0 ^= self.0 << 13;
            self.0 ^= self.0 >> 7;
            self.0 ^= self.0 << 17;
            self.0 % n
        }
        fn layout(&mut self) -> Layout {
            let size = match self.below(10) {
                0 => 4097 + self.below(20_000) as usize,
                1..=3 => 1 + self.below(4096) as usize,
                _ => 1 + self.below(120) as usize,
            };
            let align = 1 << self.below(7);
            Layout::from_size_align(size, align).unwrap()
        }
    }

    /// Live blocks by address: (end, fill byte, layout).
    type Live = BTreeMap<usize, (usize, u8, Layout)>;

    fn check_and_insert(live: &mut Live, ptr: *mut u8, layout: Layout, fill: u8) {
        assert!(!ptr.is_null());
        let start = ptr as usize;
        assert_eq!(start % layout.align(), 0, "{layout:?} misaligned at {start:#x}");
        let end = start + layout.size();
        if let Some((_, (prev_end, _, _))) = live.range(..=start).next_back() {
            assert!(*prev_end <= start, "block at {start:#x} overlaps a live one");
        }
        if let Some((next_start, _)) = live.range(start..).next() {
            assert!(end <= *next_start, "block at {start:#x} overlaps a live one");
        }
        unsafe { ptr::write_bytes(ptr, fill, layout.size()) };
        live.insert(start, (end, fill, layout));
    }

    fn assert_intact(start: usize, (end, fill, _): &(usize, u8, Layout)) {
        let bytes = unsafe { std::slice::from_raw_parts(start as *const u8, end - start) };
        assert!(bytes.iter().all(|b| b == fill), "block at {start:#x} was overwritten");
    }

    #[test]
    fn blocks_are_aligned_disjoint_and_keep_their_contents_through_realloc() {
        let counting = Counting::default();
        let heap = SizeClasses::new(&counting);
        let mut rng = Rng(0x9e37_79b9_7f4a_7c15);
        let mut live = Live::new();
        for step in 0..20_000u32 {
            let fill = (step % 251) as u8 + 1;
            match rng.below(3) {
                0 if !live.is_empty() => {
                    let at = *live.keys().nth(rng.below(live.len() as u64) as usize).unwrap();
                    let block = live.remove(&at).unwrap();
                    assert_intact(at, &block);
                    unsafe { heap.dealloc(at as *mut u8, block.2) };
                }
                1 if !live.is_empty() => {
                    let at = *live.keys().nth(rng.below(live.len() as u64) as usize).unwrap();
                    let (_, old_fill, layout) = live.remove(&at).unwrap();
                    let new_size = rng.layout().size();
                    let moved = unsafe { heap.realloc(at as *mut u8, layout, new_size) };
                    let kept = layout.size().min(new_size);
                    let bytes = unsafe { std::slice::from_raw_parts(moved, kept) };
                    assert!(bytes.iter().all(|b| *b == old_fill), "realloc lost contents");
                    let new_layout = Layout::from_size_align(new_size, layout.align()).unwrap();
                    check_and_insert(&mut live, moved, new_layout, fill);
                }
                _ => {
                    let layout = rng.layout();
                    check_and_insert(&mut live, unsafe { heap.alloc(layout) }, layout, fill);
                }
            }
        }
        for (at, block) in &live {
            assert_intact(*at, block);
            unsafe { heap.dealloc(*at as *mut u8, block.2) };
        }
    }

    #[test]
    fn freed_blocks_are_reused_so_memory_stays_bounded() {
        let counting = Counting::default();
        let heap = SizeClasses::new(&counting);
        // Page after page of small strings, each page freed before the next: what a sync does.
        let mut rng = Rng(42);
        let mut after_first_page = 0;
        for page in 0..200 {
            let blocks: Vec<(*mut u8, Layout)> = (0..700)
                .map(|_| {
                    let layout = Layout::from_size_align(1 + rng.below(64) as usize, 1).unwrap();
                    (unsafe { heap.alloc(layout) }, layout)
                })
                .collect();
            for (ptr, layout) in blocks {
                unsafe { heap.dealloc(ptr, layout) };
            }
            if page == 0 {
                after_first_page = counting.held.load(Ordering::Relaxed);
            }
        }
        let held = counting.held.load(Ordering::Relaxed);
        assert!(after_first_page > 0);
        assert!(
            held <= after_first_page + 2 * CHUNK_BYTES,
            "held {held} bytes after 200 pages, {after_first_page} after one"
        );
    }

    #[test]
    fn large_and_over_aligned_blocks_go_to_the_backing_allocator_and_back() {
        let counting = Counting::default();
        let heap = SizeClasses::new(&counting);
        for layout in [
            Layout::from_size_align(LARGEST_CLASS + 1, 8).unwrap(),
            Layout::from_size_align(64, 2 * BLOCK_ALIGN).unwrap(),
        ] {
            let ptr = unsafe { heap.alloc(layout) };
            assert_eq!(counting.held.load(Ordering::Relaxed), layout.size());
            assert_eq!(ptr as usize % layout.align(), 0);
            unsafe { heap.dealloc(ptr, layout) };
            assert_eq!(counting.held.load(Ordering::Relaxed), 0);
        }
        assert_eq!(counting.peak.load(Ordering::Relaxed), LARGEST_CLASS + 1);
    }

    #[test]
    fn classes_cover_every_small_layout() {
        for size in 1..=LARGEST_CLASS {
            let class = SizeClasses::<System>::class(Layout::from_size_align(size, 1).unwrap())
                .expect("a small layout has a class");
            let block = SizeClasses::<System>::block_size(class);
            assert!(block >= size && block < 2 * size.max(BLOCK_ALIGN), "{size} -> {block}");
        }
        assert_eq!(SizeClasses::<System>::class(Layout::from_size_align(1, 16).unwrap()), Some(0));
        assert_eq!(CLASSES, 9);
    }
}
