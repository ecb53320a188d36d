//! secp256k1 and NIST P-384 through RustCrypto's `k256` / `p384` 0.14 and `ecdsa` 0.17: scalars
//! drawn in 1..n-1, ECDSA with hedged RFC 6979 nonces (32 fresh random bytes as the additional
//! input, RFC 6979 §3.6) normalized to low-S and DER encoded, verification accepting either S
//! (as OpenSSL does), and ECDH (the x-coordinate of d·Q).

use rand_core::{CryptoRng, RngCore};
use zeroize::Zeroizing;

/// The operations of one curve; the two curves below are the same code over different types.
macro_rules! curve {
    ($name:ident, $krate:ident, $curve:ty, $digest:ty, $bytes:expr) => {
        pub mod $name {
            use super::*;
            use ::$krate::elliptic_curve::{self, FieldBytes, NonZeroScalar, PublicKey};
            use ecdsa::Signature;
            use elliptic_curve::sec1::ToSec1Point;

            /// Bytes of a scalar (and of a coordinate and of the ECDH secret).
            pub const SCALAR_LEN: usize = $bytes;
            /// Bytes of an uncompressed SEC1 point.
            pub const POINT_LEN: usize = 2 * $bytes + 1;
            /// Longest DER signature: SEQUENCE of two INTEGERs of up to SCALAR_LEN + 1 bytes.
            pub const MAX_DER_SIGNATURE: usize = 2 * ($bytes + 3) + 3;

            /// The scalar of stored bytes, if they are SCALAR_LEN bytes in 1..n-1; zeroized when
            /// dropped.
            pub fn scalar(stored: &[u8]) -> Option<Zeroizing<NonZeroScalar<$curve>>> {
                let mut bytes = Zeroizing::new([0u8; $bytes]);
                bytes.copy_from_slice(stored.get(..$bytes).filter(|_| stored.len() == $bytes)?);
                let repr: FieldBytes<$curve> = (*bytes).into();
                NonZeroScalar::<$curve>::from_repr(repr).into_option().map(Zeroizing::new)
            }

            /// Draws a scalar in 1..n-1 by rejection sampling into `out` (SCALAR_LEN bytes);
            /// false if `attempts` draws all fell outside (a broken RNG: each draw is out of
            /// range with probability below 2^-32).
            pub fn generate<R: RngCore + CryptoRng>(
                rng: &mut R,
                out: &mut [u8; SCALAR_LEN],
                attempts: usize,
            ) -> bool {
                for _ in 0..attempts {
                    rng.fill_bytes(out);
                    if scalar(&out[..]).is_some() {
                        return true;
                    }
                }
                out.fill(0);
                false
            }

            /// The public key d·G.
            pub fn public(d: &NonZeroScalar<$curve>) -> PublicKey<$curve> {
                PublicKey::<$curve>::from_secret_scalar(d)
            }

            /// `04 || X || Y` of a public key.
            pub fn point_bytes(q: &PublicKey<$curve>) -> [u8; POINT_LEN] {
                let mut out = [0u8; POINT_LEN];
                let encoded = q.as_affine().to_sec1_point(false);
                if let Some(b) = encoded.as_bytes().get(..POINT_LEN) {
                    out.copy_from_slice(b);
                }
                out
            }

            /// Hedged low-S ECDSA of `digest` (the hash, any length: truncated or padded as ECDSA
            /// does), DER encoded into `out`; returns the length.
            pub fn sign<R: RngCore + CryptoRng>(
                d: &NonZeroScalar<$curve>,
                digest: &[u8],
                rng: &mut R,
                out: &mut [u8; MAX_DER_SIGNATURE],
            ) -> Option<usize> {
                let mut added = Zeroizing::new([0u8; 32]);
                rng.fill_bytes(&mut added[..]);
                let (sig, _) =
                    ecdsa::hazmat::sign_prehashed_rfc6979::<$curve, $digest>(d, digest, &added[..]);
                let der = sig.normalize_s().to_der();
                let bytes = der.as_bytes();
                out.get_mut(..bytes.len())?.copy_from_slice(bytes);
                Some(bytes.len())
            }

            /// Whether `der` is a valid DER ECDSA signature of `digest` by `q` (low or high S).
            pub fn verify(q: &PublicKey<$curve>, digest: &[u8], der: &[u8]) -> bool {
                let Ok(sig) = Signature::<$curve>::from_der(der) else { return false };
                ecdsa::hazmat::verify_prehashed::<$curve>(&q.to_projective(), digest, &sig.normalize_s())
                    .is_ok()
            }

            /// Decodes a SEC1 point (uncompressed or compressed) and checks it is on the curve.
            pub fn decode_point(sec1: &[u8]) -> Option<PublicKey<$curve>> {
                PublicKey::<$curve>::from_sec1_bytes(sec1).ok()
            }

            /// ECDH: the big-endian x-coordinate of d·Q into `out` (SCALAR_LEN bytes).
            pub fn ecdh(d: &NonZeroScalar<$curve>, q: &PublicKey<$curve>, out: &mut [u8]) -> Option<usize> {
                let shared = elliptic_curve::ecdh::diffie_hellman(d, q.as_affine());
                let x = shared.raw_secret_bytes();
                out.get_mut(..x.len())?.copy_from_slice(x);
                Some(x.len())
            }
        }
    };
}

curve!(secp256k1, k256, ::k256::Secp256k1, sha2_011::Sha256, 32);
curve!(nist_p384, p384, ::p384::NistP384, sha2_011::Sha384, 48);
