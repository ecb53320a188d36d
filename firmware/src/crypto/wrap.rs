//! Key material at rest: every version's material is encrypted under the device root key with
//! AES-256-GCM; the key id, version and key spec are the associated data, so wrapped material
//! cannot be moved to another key or version. KeyMaterialIds are derived from a key that is
//! itself derived from the root key, so they reveal nothing about the material.

use hmac::{Hmac, Mac};
use pkms_p256::SecretKey;
use pkms_protocol::{KeyId, KeyMaterialId, KeySpec, KeyVersion};
use rand_core::{CryptoRng, RngCore};
use sha2::Sha256;
use zeroize::{Zeroize, ZeroizeOnDrop};

use super::gcm::Aes256Gcm;
use crate::error::{Error, OpResult};
use crate::records::{VersionEntry, MAX_MATERIAL};

/// Bytes of key material for a key spec.
/// Asymmetric keys store the standard's private key or seed ([`super::asym::AsymSpec::stored_len`]:
/// 32 bytes, 48 for P-384, 64 for ML-KEM), never an expanded key.
pub const fn material_len(spec: KeySpec) -> usize {
    match spec {
        KeySpec::SymmetricDefault | KeySpec::EccNistP256 | KeySpec::Hmac256 => 32,
        KeySpec::Hmac384 => 48,
        KeySpec::Hmac512 => 64,
        KeySpec::EccSecgP256k1
        | KeySpec::EccNistP384
        | KeySpec::EccNistEdwards25519
        | KeySpec::MlDsa44
        | KeySpec::MlDsa65
        | KeySpec::MlDsa87
        | KeySpec::MlKem512
        | KeySpec::MlKem768
        | KeySpec::MlKem1024 => match super::asym::AsymSpec::of(spec) {
            Some(a) => a.stored_len(),
            None => 0,
        },
    }
}

/// Plain key material in RAM, zeroed when dropped.
#[derive(Zeroize, ZeroizeOnDrop)]
pub struct Material {
    bytes: [u8; MAX_MATERIAL],
    len: usize,
}

impl Material {
    /// `len` zero bytes (at most [`MAX_MATERIAL`]).
    pub fn zeroed(len: usize) -> Self {
        Material { bytes: [0; MAX_MATERIAL], len: len.min(MAX_MATERIAL) }
    }

    /// The material.
    pub fn as_bytes(&self) -> &[u8] {
        &self.bytes[..self.len]
    }

    /// The material, writable.
    pub fn bytes_mut(&mut self) -> &mut [u8] {
        &mut self.bytes[..self.len]
    }
}

/// The device root key and the keys derived from it.
#[derive(Zeroize, ZeroizeOnDrop)]
pub struct DeviceKeys {
    root: [u8; 32],
    material_id_key: [u8; 32],
    identity: [u8; 32],
}

/// Associated data of the sealed backup key.
const BACKUP_KEY_AAD: &[u8] = b"pkms-backup-key1";

fn aad(key_id: &KeyId, version: KeyVersion, spec: KeySpec) -> [u8; 32] {
    let mut a = [0u8; 32];
    a[..11].copy_from_slice(b"pkms-key-v1");
    a[11..27].copy_from_slice(&key_id.0);
    a[27..31].copy_from_slice(&version.to_be_bytes());
    a[31] = spec as u8;
    a
}

impl DeviceKeys {
    /// Derives the working keys from the root key.
    pub fn new(root: &[u8; 32]) -> Self {
        let mut mac = <Hmac<Sha256> as Mac>::new_from_slice(root).unwrap_or_else(|_| unreachable_hmac());
        mac.update(b"pkms key material id v1");
        let mut material_id_key = [0u8; 32];
        material_id_key.copy_from_slice(&mac.finalize().into_bytes());
        DeviceKeys { root: *root, material_id_key, identity: identity_scalar(root) }
    }

    /// The device key: the P-256 key pair a token proves itself with in session handshakes
    /// (and that other tokens can encrypt to). Derived from the root key, so it lasts as long as
    /// the root key: a factory reset makes a new one.
    pub fn identity(&self) -> OpResult<SecretKey> {
        SecretKey::from_bytes(&self.identity).map_err(|_| internal())
    }

    /// Wraps `material` as `entry.version` of `key_id`: fills `entry.nonce` and `entry.wrapped`.
    pub fn wrap<R: RngCore + CryptoRng>(
        &self,
        rng: &mut R,
        key_id: &KeyId,
        spec: KeySpec,
        material: &Material,
        entry: &mut VersionEntry,
    ) -> OpResult<()> {
        let version = entry.version;
        let mut nonce = [0u8; 12];
        rng.fill_bytes(&mut nonce);
        let mut wrapped = heapless::Vec::new();
        wrapped.extend_from_slice(material.as_bytes()).map_err(|_| internal())?;
        let tag = Aes256Gcm::new(&self.root)
            .encrypt_in_place_detached(&nonce, &aad(key_id, version, spec), &mut wrapped)
            .map_err(|_| internal())?;
        wrapped.extend_from_slice(&tag).map_err(|_| internal())?;
        entry.nonce = nonce;
        entry.wrapped = wrapped;
        Ok(())
    }

    /// Unwraps a version's material. A failure means the flash was altered: StorageCorrupted.
    pub fn unwrap(&self, key_id: &KeyId, spec: KeySpec, entry: &VersionEntry) -> OpResult<Material> {
        let n = material_len(spec);
        if entry.wrapped.len() != n + 16 {
            return Err(corrupted());
        }
        let tag: [u8; 16] = entry.wrapped[n..].try_into().map_err(|_| corrupted())?;
        let mut m = Material::zeroed(n);
        m.bytes_mut().copy_from_slice(&entry.wrapped[..n]);
        Aes256Gcm::new(&self.root)
            .decrypt_in_place_detached(&entry.nonce, &aad(key_id, entry.version, spec), m.bytes_mut(), &tag)
            .map_err(|_| corrupted())?;
        Ok(m)
    }

    /// Seals the 32-byte backup key under the root key (random nonce; associated data
    /// "pkms-backup-key1"): returns the nonce and the ciphertext ‖ tag.
    pub fn seal_backup_key<R: RngCore + CryptoRng>(
        &self,
        rng: &mut R,
        secret: &[u8; 32],
    ) -> OpResult<([u8; 12], [u8; 48])> {
        let mut nonce = [0u8; 12];
        rng.fill_bytes(&mut nonce);
        let mut sealed = [0u8; 48];
        sealed[..32].copy_from_slice(secret);
        let tag = Aes256Gcm::new(&self.root)
            .encrypt_in_place_detached(&nonce, BACKUP_KEY_AAD, &mut sealed[..32])
            .map_err(|_| internal())?;
        sealed[32..].copy_from_slice(&tag);
        Ok((nonce, sealed))
    }

    /// Opens the sealed backup key; a failure means the flash was altered: StorageCorrupted.
    pub fn unseal_backup_key(
        &self,
        nonce: &[u8; 12],
        sealed: &[u8; 48],
    ) -> OpResult<zeroize::Zeroizing<[u8; 32]>> {
        let mut secret = zeroize::Zeroizing::new([0u8; 32]);
        secret.copy_from_slice(&sealed[..32]);
        let tag: [u8; 16] = sealed[32..].try_into().map_err(|_| corrupted())?;
        Aes256Gcm::new(&self.root)
            .decrypt_in_place_detached(nonce, BACKUP_KEY_AAD, &mut secret[..], &tag)
            .map_err(|_| corrupted())?;
        Ok(secret)
    }

    /// The public KeyMaterialId of a version.
    pub fn material_id(&self, key_id: &KeyId, entry: &VersionEntry) -> KeyMaterialId {
        let mut mac = <Hmac<Sha256> as Mac>::new_from_slice(&self.material_id_key)
            .unwrap_or_else(|_| unreachable_hmac());
        mac.update(&key_id.0);
        mac.update(&entry.version.to_be_bytes());
        mac.update(&entry.nonce);
        let mut id = [0u8; 32];
        id.copy_from_slice(&mac.finalize().into_bytes());
        KeyMaterialId(id)
    }
}

/// The first HMAC-SHA256(root, "pkms device identity v1" ‖ i), i = 0, 1, …, that is a valid P-256
/// scalar (0 < d < n; each try fails with probability below 2⁻³²).
fn identity_scalar(root: &[u8; 32]) -> [u8; 32] {
    for i in 0u32.. {
        let mut mac = <Hmac<Sha256> as Mac>::new_from_slice(root).unwrap_or_else(|_| unreachable_hmac());
        mac.update(b"pkms device identity v1");
        mac.update(&i.to_be_bytes());
        let mut d = [0u8; 32];
        d.copy_from_slice(&mac.finalize().into_bytes());
        if SecretKey::from_bytes(&d).is_ok() {
            return d;
        }
        d.zeroize();
    }
    [1; 32]
}

/// HMAC accepts keys of any length; this is never reached.
fn unreachable_hmac() -> Hmac<Sha256> {
    loop {
        if let Ok(m) = <Hmac<Sha256> as Mac>::new_from_slice(&[0u8; 32]) {
            return m;
        }
    }
}

fn internal() -> Error {
    Error::new(pkms_protocol::ErrorCode::Internal, "key wrapping failed")
}

fn corrupted() -> Error {
    Error::new(
        pkms_protocol::ErrorCode::StorageCorrupted,
        "stored key material failed its integrity check (flash altered or wrong root key)",
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand_chacha::rand_core::SeedableRng;

    #[test]
    fn wrap_round_trips_and_binds_key_id_version_and_spec() {
        let keys = DeviceKeys::new(&[7; 32]);
        let mut rng = rand_chacha::ChaCha20Rng::seed_from_u64(1);
        let mut m = Material::zeroed(32);
        m.bytes_mut().copy_from_slice(&[0x42; 32]);
        let id = KeyId([1; 16]);
        let mut e = VersionEntry {
            version: 3,
            created: 0,
            rotation: None,
            nonce: [0; 12],
            wrapped: heapless::Vec::new(),
        };
        keys.wrap(&mut rng, &id, KeySpec::SymmetricDefault, &m, &mut e).unwrap();
        assert!(!e.wrapped.windows(32).any(|w| w == [0x42; 32]), "material stored in the clear");
        assert_eq!(keys.unwrap(&id, KeySpec::SymmetricDefault, &e).unwrap().as_bytes(), &[0x42; 32]);
        assert!(keys.unwrap(&KeyId([2; 16]), KeySpec::SymmetricDefault, &e).is_err());
        assert!(keys.unwrap(&id, KeySpec::Hmac256, &e).is_err());
        let mut moved = e.clone();
        moved.version = 4;
        assert_eq!(
            keys.unwrap(&id, KeySpec::SymmetricDefault, &moved).err().map(|e| e.code),
            Some(pkms_protocol::ErrorCode::StorageCorrupted)
        );
        assert!(DeviceKeys::new(&[8; 32]).unwrap(&id, KeySpec::SymmetricDefault, &e).is_err());
        assert_ne!(keys.material_id(&id, &e), keys.material_id(&id, &moved));
    }

    /// Material wrapped before `crypto::gcm` (RustCrypto `aes-gcm` 0.10 under the root key, the
    /// same associated data) still unwraps.
    #[test]
    fn material_wrapped_with_the_aes_gcm_crate_still_unwraps() {
        use aes_gcm::aead::{AeadInPlace, KeyInit};
        let root = [0x5au8; 32];
        let id = KeyId([4; 16]);
        let nonce = [0x11u8; 12];
        let mut wrapped = [0x77u8; 48].to_vec();
        let tag = aes_gcm::Aes256Gcm::new(&root.into())
            .encrypt_in_place_detached(&nonce.into(), &aad(&id, 2, KeySpec::Hmac384), &mut wrapped)
            .unwrap();
        wrapped.extend_from_slice(&tag);
        let e = VersionEntry {
            version: 2,
            created: 0,
            rotation: None,
            nonce,
            wrapped: heapless::Vec::from_slice(&wrapped).unwrap(),
        };
        let keys = DeviceKeys::new(&root);
        assert_eq!(keys.unwrap(&id, KeySpec::Hmac384, &e).unwrap().as_bytes(), &[0x77; 48]);
    }
}
