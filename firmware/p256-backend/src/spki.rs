//! DER SubjectPublicKeyInfo for an uncompressed P-256 point: a fixed 26-byte prefix
//! (SEQUENCE { SEQUENCE { id-ecPublicKey, prime256v1 }, BIT STRING }) followed by `04 || X || Y`.
//! The host tests check it byte for byte against the `p256`/`spki` crates' encoder.

/// Length of the DER SubjectPublicKeyInfo of an uncompressed P-256 key.
pub const SPKI_DER_LEN: usize = 91;

/// The bytes that precede the 65-byte point in the SubjectPublicKeyInfo.
pub const SPKI_PREFIX: [u8; 26] = [
    0x30, 0x59, // SEQUENCE, 89 bytes
    0x30, 0x13, // SEQUENCE, 19 bytes (AlgorithmIdentifier)
    0x06, 0x07, 0x2a, 0x86, 0x48, 0xce, 0x3d, 0x02, 0x01, // OID 1.2.840.10045.2.1 id-ecPublicKey
    0x06, 0x08, 0x2a, 0x86, 0x48, 0xce, 0x3d, 0x03, 0x01, 0x07, // OID 1.2.840.10045.3.1.7 prime256v1
    0x03, 0x42, 0x00, // BIT STRING, 66 bytes, no unused bits
];

/// Prefix || point.
pub fn spki_from_point(point: &[u8; 65]) -> [u8; SPKI_DER_LEN] {
    let mut out = [0u8; SPKI_DER_LEN];
    out[..SPKI_PREFIX.len()].copy_from_slice(&SPKI_PREFIX);
    out[SPKI_PREFIX.len()..].copy_from_slice(point);
    out
}

/// The 65-byte point of an SPKI in exactly the form [`spki_from_point`] writes, else `None`.
pub fn point_from_spki(der: &[u8]) -> Option<&[u8]> {
    if der.len() != SPKI_DER_LEN || der[..SPKI_PREFIX.len()] != SPKI_PREFIX {
        return None;
    }
    Some(&der[SPKI_PREFIX.len()..])
}
