//! Wiping what cryptography leaves on the stack.
//!
//! The hash, HMAC, PBKDF2 and ECDSA (RFC 6979 nonce) code the token uses keeps its state in
//! local variables of the RustCrypto crates (and of `pkms-p256`): a PIN's PBKDF2 state, an HMAC
//! key's inner and outer hashes, a signing key's nonce generator. Those crates cannot zeroize
//! them (and a value Rust moves leaves its old copy behind anyway), so when the call returns
//! they stay in the dead stack below the caller until something overwrites them. [`wiped`] runs
//! such a call and then zeroes [`STACK_WIPE_BYTES`] of the stack below the caller's frame:
//! everything the call's frames held.

use zeroize::Zeroize;

/// Bytes of stack [`wiped`] zeroes after a call: more than the deepest wrapped call uses (on the
/// host, with the portable P-256 backend, signing uses about 5 KiB and an HMAC-SHA-512 of a
/// 4 KiB message about 2.3 KiB; the `wiped_calls_leave_nothing_on_the_stack` test checks the
/// margin on every run).
pub const STACK_WIPE_BYTES: usize = 8 * 1024;

/// Runs `f`, then zeroes the stack its frames used. `f`'s result comes back; it must not be a
/// secret (results go through the caller's buffers).
#[inline(never)]
pub fn wiped<T>(f: impl FnOnce() -> T) -> T {
    let result = run(f);
    clear_stack();
    result
}

/// Runs `f` in a frame of its own below [`wiped`]'s.
#[inline(never)]
fn run<T>(f: impl FnOnce() -> T) -> T {
    f()
}

/// Zeroes [`STACK_WIPE_BYTES`] of stack: its local array occupies the region the frames of the
/// call [`wiped`] made before it occupied. Volatile writes: the compiler cannot drop them.
#[inline(never)]
fn clear_stack() {
    let mut area = [0u64; STACK_WIPE_BYTES / 8];
    area.zeroize();
    core::hint::black_box(&area);
}
