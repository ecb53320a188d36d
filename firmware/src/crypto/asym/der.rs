//! The DER the key specs need: SubjectPublicKeyInfo (RFC 5280) and PKCS#8 OneAsymmetricKey
//! (RFC 5958) writers with the standard algorithm identifiers, and a strict reader for the
//! SubjectPublicKeyInfo of an elliptic-curve peer key (ECDH).
//!
//! Encodings are the ones OpenSSL (python `cryptography`) writes byte for byte: EC private keys as
//! RFC 5915 ECPrivateKey with the public key and without repeated parameters, Ed25519 as RFC 8410,
//! ML-DSA and ML-KEM private keys in the seed-only form of the LAMPS drafts (`[0] seed`).

/// AlgorithmIdentifier { id-ecPublicKey, prime256v1 }.
pub const ALG_P256: &[u8] = &[
    0x30, 0x13, 0x06, 0x07, 0x2a, 0x86, 0x48, 0xce, 0x3d, 0x02, 0x01, 0x06, 0x08, 0x2a, 0x86, 0x48, 0xce,
    0x3d, 0x03, 0x01, 0x07,
];
/// AlgorithmIdentifier { id-ecPublicKey, secp256k1 (1.3.132.0.10) }.
pub const ALG_SECP256K1: &[u8] = &[
    0x30, 0x10, 0x06, 0x07, 0x2a, 0x86, 0x48, 0xce, 0x3d, 0x02, 0x01, 0x06, 0x05, 0x2b, 0x81, 0x04, 0x00,
    0x0a,
];
/// AlgorithmIdentifier { id-ecPublicKey, secp384r1 (1.3.132.0.34) }.
pub const ALG_P384: &[u8] = &[
    0x30, 0x10, 0x06, 0x07, 0x2a, 0x86, 0x48, 0xce, 0x3d, 0x02, 0x01, 0x06, 0x05, 0x2b, 0x81, 0x04, 0x00,
    0x22,
];
/// AlgorithmIdentifier { id-Ed25519 (1.3.101.112) } (RFC 8410: no parameters).
pub const ALG_ED25519: &[u8] = &[0x30, 0x05, 0x06, 0x03, 0x2b, 0x65, 0x70];

/// AlgorithmIdentifier { id-ml-dsa-44/65/87 (2.16.840.1.101.3.4.3.17/18/19) }, no parameters.
pub const fn alg_ml_dsa(last: u8) -> [u8; 13] {
    [0x30, 0x0b, 0x06, 0x09, 0x60, 0x86, 0x48, 0x01, 0x65, 0x03, 0x04, 0x03, last]
}
/// AlgorithmIdentifier { id-alg-ml-kem-512/768/1024 (2.16.840.1.101.3.4.4.1/2/3) }, no parameters.
pub const fn alg_ml_kem(last: u8) -> [u8; 13] {
    [0x30, 0x0b, 0x06, 0x09, 0x60, 0x86, 0x48, 0x01, 0x65, 0x03, 0x04, 0x04, last]
}

/// The OID content of id-ecPublicKey.
const OID_EC_PUBLIC_KEY: &[u8] = &[0x2a, 0x86, 0x48, 0xce, 0x3d, 0x02, 0x01];

const SEQUENCE: u8 = 0x30;
const INTEGER: u8 = 0x02;
const BIT_STRING: u8 = 0x03;
const OCTET_STRING: u8 = 0x04;
const OID: u8 = 0x06;

/// Bytes of a tag and DER length for `len` content bytes.
const fn header_len(len: usize) -> usize {
    if len < 0x80 {
        2
    } else if len < 0x100 {
        3
    } else {
        4
    }
}

/// A DER writer into a fixed buffer; writing past its end sets the overflow flag.
struct Writer<'a> {
    out: &'a mut [u8],
    at: usize,
    overflow: bool,
}

impl<'a> Writer<'a> {
    fn new(out: &'a mut [u8]) -> Self {
        Writer { out, at: 0, overflow: false }
    }

    fn bytes(&mut self, b: &[u8]) {
        match self.out.get_mut(self.at..self.at + b.len()) {
            Some(dst) => dst.copy_from_slice(b),
            None => self.overflow = true,
        }
        self.at += b.len();
    }

    fn header(&mut self, tag: u8, len: usize) {
        if len < 0x80 {
            self.bytes(&[tag, len as u8]);
        } else if len < 0x100 {
            self.bytes(&[tag, 0x81, len as u8]);
        } else {
            self.bytes(&[tag, 0x82, (len >> 8) as u8, len as u8]);
        }
    }

    fn finish(self) -> Option<usize> {
        (!self.overflow).then_some(self.at)
    }
}

/// Length of the SubjectPublicKeyInfo for `alg` and a `key_len`-byte key.
pub const fn spki_len(alg_len: usize, key_len: usize) -> usize {
    let bits = key_len + 1;
    let body = alg_len + header_len(bits) + bits;
    header_len(body) + body
}

/// SubjectPublicKeyInfo { alg, BIT STRING key } into `out`; `None` if `out` is too short.
pub fn write_spki(alg: &[u8], key: &[u8], out: &mut [u8]) -> Option<usize> {
    let bits = key.len() + 1;
    let body = alg.len() + header_len(bits) + bits;
    let mut w = Writer::new(out);
    w.header(SEQUENCE, body);
    w.bytes(alg);
    w.header(BIT_STRING, bits);
    w.bytes(&[0]);
    w.bytes(key);
    w.finish()
}

/// What a PKCS#8 privateKey OCTET STRING holds.
pub enum PrivateKey<'a> {
    /// RFC 5915 ECPrivateKey { 1, d, [1] publicKey } (parameters are in the AlgorithmIdentifier).
    Ec { scalar: &'a [u8], point: &'a [u8] },
    /// RFC 8410 CurvePrivateKey: OCTET STRING seed.
    Ed25519 { seed: &'a [u8] },
    /// The LAMPS seed-only form of ML-DSA and ML-KEM: `[0] IMPLICIT OCTET STRING` seed.
    Seed { seed: &'a [u8] },
}

impl PrivateKey<'_> {
    fn inner_len(&self) -> usize {
        match self {
            PrivateKey::Ec { scalar, point } => {
                let bits = point.len() + 1;
                let tagged = header_len(bits) + bits;
                let body = 3 + header_len(scalar.len()) + scalar.len() + header_len(tagged) + tagged;
                header_len(body) + body
            }
            PrivateKey::Ed25519 { seed } | PrivateKey::Seed { seed } => header_len(seed.len()) + seed.len(),
        }
    }

    fn write(&self, w: &mut Writer<'_>) {
        match self {
            PrivateKey::Ec { scalar, point } => {
                let bits = point.len() + 1;
                let tagged = header_len(bits) + bits;
                let body = 3 + header_len(scalar.len()) + scalar.len() + header_len(tagged) + tagged;
                w.header(SEQUENCE, body);
                w.bytes(&[INTEGER, 1, 1]);
                w.header(OCTET_STRING, scalar.len());
                w.bytes(scalar);
                w.header(0xa1, tagged);
                w.header(BIT_STRING, bits);
                w.bytes(&[0]);
                w.bytes(point);
            }
            PrivateKey::Ed25519 { seed } => {
                w.header(OCTET_STRING, seed.len());
                w.bytes(seed);
            }
            PrivateKey::Seed { seed } => {
                w.header(0x80, seed.len());
                w.bytes(seed);
            }
        }
    }
}

/// PKCS#8 OneAsymmetricKey { version 0, alg, OCTET STRING key } into `out`; `None` if `out` is
/// too short.
pub fn write_pkcs8(alg: &[u8], key: &PrivateKey<'_>, out: &mut [u8]) -> Option<usize> {
    let inner = key.inner_len();
    let body = 3 + alg.len() + header_len(inner) + inner;
    let mut w = Writer::new(out);
    w.header(SEQUENCE, body);
    w.bytes(&[INTEGER, 1, 0]);
    w.bytes(alg);
    w.header(OCTET_STRING, inner);
    key.write(&mut w);
    w.finish()
}

/// Why a peer's SubjectPublicKeyInfo was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SpkiError {
    /// Not strict DER SubjectPublicKeyInfo (or unsupported explicit curve parameters).
    Malformed,
    /// The algorithm is not id-ecPublicKey.
    NotEc,
}

/// One DER TLV with tag `tag`: (content, rest). Minimal lengths only, up to 0xFFFF.
fn tlv(input: &[u8], tag: u8) -> Result<(&[u8], &[u8]), SpkiError> {
    let (&t, rest) = input.split_first().ok_or(SpkiError::Malformed)?;
    if t != tag {
        return Err(SpkiError::Malformed);
    }
    let (&first, rest) = rest.split_first().ok_or(SpkiError::Malformed)?;
    let (len, rest) = match first {
        0..=0x7f => (usize::from(first), rest),
        0x81 => {
            let (&b, rest) = rest.split_first().ok_or(SpkiError::Malformed)?;
            if b < 0x80 {
                return Err(SpkiError::Malformed);
            }
            (usize::from(b), rest)
        }
        0x82 => {
            let b = rest.get(..2).ok_or(SpkiError::Malformed)?;
            let len = (usize::from(b[0]) << 8) | usize::from(b[1]);
            if len < 0x100 {
                return Err(SpkiError::Malformed);
            }
            (len, &rest[2..])
        }
        _ => return Err(SpkiError::Malformed),
    };
    if rest.len() < len {
        return Err(SpkiError::Malformed);
    }
    Ok(rest.split_at(len))
}

/// Reads an elliptic-curve SubjectPublicKeyInfo: (named-curve OID content, SEC1 point bytes).
pub fn read_ec_spki(der: &[u8]) -> Result<(&[u8], &[u8]), SpkiError> {
    let (spki, rest) = tlv(der, SEQUENCE)?;
    if !rest.is_empty() {
        return Err(SpkiError::Malformed);
    }
    let (alg, rest) = tlv(spki, SEQUENCE)?;
    let (bits, rest) = tlv(rest, BIT_STRING)?;
    if !rest.is_empty() {
        return Err(SpkiError::Malformed);
    }
    let (oid, params) = tlv(alg, OID)?;
    if oid != OID_EC_PUBLIC_KEY {
        return Err(SpkiError::NotEc);
    }
    // ECParameters: only namedCurve (explicit parameters and implicitCurve are not supported).
    let (curve, rest) = tlv(params, OID)?;
    if !rest.is_empty() {
        return Err(SpkiError::Malformed);
    }
    match bits.split_first() {
        Some((0, point)) => Ok((curve, point)),
        _ => Err(SpkiError::Malformed),
    }
}

/// The OID content of a named curve in one of the `ALG_*` EC identifiers.
pub fn curve_oid(alg: &[u8]) -> &[u8] {
    alg.get(13..).unwrap_or(&[])
}
