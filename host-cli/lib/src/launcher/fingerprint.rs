// A cheap fingerprint of a firmware image: FNV-1a, 64 bit (not a security measure). Included by
// build.rs (for the embedded image) and by launcher/firmware.rs (for an image named at run
// time), so both compute the same value.

/// FNV-1a (64 bit) of `bytes`.
pub fn fnv1a(bytes: &[u8]) -> u64 {
    bytes
        .iter()
        .fold(0xcbf2_9ce4_8422_2325u64, |h, &b| (h ^ u64::from(b)).wrapping_mul(0x0000_0100_0000_01b3))
}
