//! The portable backend: RustCrypto `p256` 0.13 / `ecdsa` 0.16 (pure Rust, constant time).
//!
//! Every function takes and returns big-endian byte strings, as the assembly backend does, so the
//! two are interchangeable.

use ecdsa::hazmat::SignPrimitive;
use ecdsa::Signature;
use p256::elliptic_curve::sec1::{FromEncodedPoint, ToEncodedPoint};
use p256::{AffinePoint, EncodedPoint, NistP256, NonZeroScalar};
use sha2::Sha256;
use subtle::CtOption;
use zeroize::Zeroizing;

/// Whether `scalar` (big-endian) is in `1..n-1`. Constant time.
pub fn is_valid_scalar(scalar: &[u8; 32]) -> bool {
    bool::from(NonZeroScalar::from_repr((*scalar).into()).is_some())
}

/// `d·G` as `04 || X || Y`, or `None` if `secret` is not in `1..n-1`.
pub fn public_key(secret: &[u8; 32]) -> Option<[u8; 65]> {
    let d: Option<NonZeroScalar> = NonZeroScalar::from_repr((*secret).into()).into();
    let point = p256::PublicKey::from_secret_scalar(&d?).to_encoded_point(false);
    point.as_bytes().try_into().ok()
}

/// ECDSA over `digest` with `k` from RFC 6979 (HMAC-SHA-256 DRBG seeded with the secret and the
/// digest, `added` as additional input). Not normalized to low-S. `None` if `secret` is out of
/// range or the (negligibly likely) r = 0 / s = 0 case occurs.
pub fn sign(secret: &[u8; 32], digest: &[u8; 32], added: &[u8]) -> Option<Signature<NistP256>> {
    let d: Option<NonZeroScalar> = NonZeroScalar::from_repr((*secret).into()).into();
    let d = d?;
    let (sig, _) = (*d).try_sign_prehashed_rfc6979::<Sha256>(&(*digest).into(), added).ok()?;
    Some(sig)
}

/// ECDSA verification of `(r, s)` over `digest` by the point `public` (`04 || X || Y`).
pub fn verify(public: &[u8; 65], digest: &[u8; 32], sig: &Signature<NistP256>) -> bool {
    use ecdsa::signature::hazmat::PrehashVerifier;
    match p256::ecdsa::VerifyingKey::from_sec1_bytes(public) {
        Ok(key) => key.verify_prehash(digest, sig).is_ok(),
        Err(_) => false,
    }
}

/// Decodes a SEC1 point (uncompressed or compressed), checks it is on the curve and not the
/// identity, and returns it uncompressed.
pub fn decode_point(sec1: &[u8]) -> Option<[u8; 65]> {
    let encoded = EncodedPoint::from_bytes(sec1).ok()?;
    let point: CtOption<AffinePoint> = AffinePoint::from_encoded_point(&encoded);
    let point: AffinePoint = Option::from(point)?;
    let public = p256::PublicKey::from_affine(point).ok()?;
    public.to_encoded_point(false).as_bytes().try_into().ok()
}

/// ECDH: the x-coordinate of d·Q for `peer` (`04 || X || Y`, re-validated here), or `None` if the
/// secret is out of range or the point is not on the curve.
pub fn ecdh(secret: &[u8; 32], peer: &[u8; 65]) -> Option<Zeroizing<[u8; 32]>> {
    let d: Option<NonZeroScalar> = NonZeroScalar::from_repr((*secret).into()).into();
    let encoded = EncodedPoint::from_bytes(peer).ok()?;
    let point: Option<AffinePoint> = AffinePoint::from_encoded_point(&encoded).into();
    let product = (p256::ProjectivePoint::from(point?) * *d?).to_affine();
    let encoded = product.to_encoded_point(false);
    let x = encoded.x()?;
    let mut out = Zeroizing::new([0u8; 32]);
    out.copy_from_slice(x);
    Some(out)
}
