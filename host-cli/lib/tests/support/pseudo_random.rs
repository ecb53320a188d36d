//! Deterministic pseudo-random test data (xorshift64), so failures reproduce. One copy for every
//! host test: included with `#[path]` by the library's unit tests (`envelope/segments.rs`), its
//! integration tests (`files_support`) and the CLI's tests. The sequence is fixed: the file
//! fixtures and the segment known-answer test were made with it.
#![allow(dead_code)]

/// `len` bytes from the xorshift64 generator seeded with `seed | 1`.
pub fn bytes(len: usize, seed: u64) -> Vec<u8> {
    let mut x = seed | 1;
    (0..len)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x as u8
        })
        .collect()
}
