//! Wiping what cryptography leaves on the stack.
//!
//! The hash, HMAC, PBKDF2 and ECDSA (RFC 6979 nonce) code the token uses keeps its state in
//! local variables of the RustCrypto crates (and of `pkms-p256`): a PIN's PBKDF2 state, an HMAC
//! key's inner and outer hashes, a signing key's nonce generator. Those crates cannot zeroize
//! them (and a value Rust moves leaves its old copy behind anyway), so when the call returns
//! they stay in the dead stack below the caller until something overwrites them. [`wiped`] runs
//! such a call and then zeroes [`STACK_WIPE_BYTES`] of the stack below the caller's frame:
//! everything the call's frames held. The asymmetric keys other than P-256 go deeper:
//! [`wiped_to`] takes the depth ([`StackDepth`], chosen per spec by `AsymSpec::stack_depth`).

use zeroize::Zeroize;

/// Bytes of stack [`wiped`] zeroes after a call: more than the deepest wrapped call uses (on the
/// host, with the portable P-256 backend, signing uses about 5 KiB and an HMAC-SHA-512 of a
/// 4 KiB message about 2.3 KiB; the `wiped_calls_leave_nothing_on_the_stack` test checks the
/// margin on every run).
pub const STACK_WIPE_BYTES: usize = 8 * 1024;

/// Bytes of stack [`wiped_to`] zeroes after a call of [`StackDepth::Deep`]: the curves other
/// than P-256 (secp256k1, P-384, Ed25519) and ML-KEM, whose calls go about twice as deep as
/// [`STACK_WIPE_BYTES`] on the token (peak stack per operation: BENCHMARKS.md).
pub const DEEP_STACK_WIPE_BYTES: usize = 24 * 1024;

/// Bytes of stack [`wiped_to`] zeroes after a call of [`StackDepth::Lattice`] (ML-DSA): its
/// signing keeps the expanded secret key and the public matrix on the stack, about 110 KB deep
/// with the matrix cached; the streamed matrix (the `mldsa-streamed-matrix` feature, for boards
/// with little RAM) halves that, and so does the wipe.
#[cfg(not(feature = "mldsa-streamed-matrix"))]
pub const LATTICE_STACK_WIPE_BYTES: usize = 128 * 1024;
/// Bytes of stack [`wiped_to`] zeroes after a call of [`StackDepth::Lattice`] (ML-DSA, matrix
/// streamed: about 52 KB deep on the token).
#[cfg(feature = "mldsa-streamed-matrix")]
pub const LATTICE_STACK_WIPE_BYTES: usize = 64 * 1024;

// With k256's generator table, secp256k1 calls wipe as deep as ML-DSA's; the streamed matrix's
// shallower wipe would not cover the table's first build.
#[cfg(all(feature = "secp256k1-tables", feature = "mldsa-streamed-matrix"))]
compile_error!(
    "secp256k1-tables needs the cached-matrix lattice wipe (128 KiB): not with mldsa-streamed-matrix"
);

/// How deep a wrapped call's frames go, and so how much stack [`wiped_to`] zeroes after it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StackDepth {
    /// [`STACK_WIPE_BYTES`]: hashes, HMAC, PBKDF2, P-256.
    Shallow,
    /// [`DEEP_STACK_WIPE_BYTES`].
    Deep,
    /// [`LATTICE_STACK_WIPE_BYTES`]: ML-DSA, and secp256k1 with k256's generator table.
    Lattice,
}

impl StackDepth {
    /// The bytes of stack zeroed after a call of this depth.
    pub const fn bytes(self) -> usize {
        match self {
            StackDepth::Shallow => STACK_WIPE_BYTES,
            StackDepth::Deep => DEEP_STACK_WIPE_BYTES,
            StackDepth::Lattice => LATTICE_STACK_WIPE_BYTES,
        }
    }
}

/// Runs `f`, then zeroes the stack its frames used. `f`'s result comes back; it must not be a
/// secret (results go through the caller's buffers).
#[inline(never)]
pub fn wiped<T>(f: impl FnOnce() -> T) -> T {
    wiped_to(StackDepth::Shallow, f)
}

/// As [`wiped`], for a call that goes `depth` deep. The wipe needs as much free stack below the
/// caller as it zeroes, which the call itself needed.
#[inline(never)]
pub fn wiped_to<T>(depth: StackDepth, f: impl FnOnce() -> T) -> T {
    let result = run(f);
    match depth {
        StackDepth::Shallow => clear_stack::<{ STACK_WIPE_BYTES / 8 }>(),
        StackDepth::Deep => clear_stack::<{ DEEP_STACK_WIPE_BYTES / 8 }>(),
        StackDepth::Lattice => clear_stack::<{ LATTICE_STACK_WIPE_BYTES / 8 }>(),
    }
    result
}

/// Runs `f` in a frame of its own below [`wiped`]'s.
#[inline(never)]
fn run<T>(f: impl FnOnce() -> T) -> T {
    f()
}

/// Zeroes `WORDS` 8-byte words of stack: its local array occupies the region the frames of the
/// call [`wiped_to`] made before it occupied. Volatile writes: the compiler cannot drop them.
#[inline(never)]
fn clear_stack<const WORDS: usize>() {
    let mut area = [0u64; WORDS];
    area.zeroize();
    core::hint::black_box(&area);
}
