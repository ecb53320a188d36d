//! Key ids, enumerations with KMS names, and the records responses carry.

use core::fmt;
use core::str::FromStr;
use serde::{Deserialize, Serialize};

use crate::limits::{MAX_TAGS_PER_KEY, MAX_TAG_KEY, MAX_TAG_VALUE};

/// A key id: 16 bytes generated on the token, shown as a UUID (`1234abcd-12ab-34cd-56ef-1234567890ab`)
/// as KMS shows its key ids.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize, Default)]
pub struct KeyId(pub [u8; 16]);

impl KeyId {
    /// Length of the textual (UUID) form.
    pub const TEXT_LEN: usize = 36;

    /// Writes the UUID text form into `out` and returns it as a `&str`.
    pub fn write_text<'b>(&self, out: &'b mut [u8; 36]) -> &'b str {
        const HEX: &[u8; 16] = b"0123456789abcdef";
        let mut o = 0;
        for (i, b) in self.0.iter().enumerate() {
            if matches!(i, 4 | 6 | 8 | 10) {
                out[o] = b'-';
                o += 1;
            }
            out[o] = HEX[(b >> 4) as usize];
            out[o + 1] = HEX[(b & 0xf) as usize];
            o += 2;
        }
        // Only ASCII hex digits and '-' were written.
        core::str::from_utf8(&out[..]).unwrap_or("")
    }

    /// Parses the UUID form (case-insensitive) or 32 bare hex digits. `None` if it is neither.
    pub fn parse(s: &str) -> Option<KeyId> {
        let mut bytes = [0u8; 16];
        let mut n = 0usize;
        let mut hi: Option<u8> = None;
        let raw = s.as_bytes();
        if raw.len() != 36 && raw.len() != 32 {
            return None;
        }
        for (i, &c) in raw.iter().enumerate() {
            if c == b'-' {
                if raw.len() == 36 && matches!(i, 8 | 13 | 18 | 23) {
                    continue;
                }
                return None;
            }
            if raw.len() == 36 && matches!(i, 8 | 13 | 18 | 23) {
                return None;
            }
            let v = (c as char).to_digit(16)? as u8;
            match hi.take() {
                None => hi = Some(v),
                Some(h) => {
                    if n >= 16 {
                        return None;
                    }
                    bytes[n] = (h << 4) | v;
                    n += 1;
                }
            }
        }
        (n == 16 && hi.is_none()).then_some(KeyId(bytes))
    }
}

impl fmt::Display for KeyId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut buf = [0u8; 36];
        f.write_str(self.write_text(&mut buf))
    }
}

impl fmt::Debug for KeyId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "KeyId({self})")
    }
}

impl FromStr for KeyId {
    type Err = ();
    fn from_str(s: &str) -> Result<Self, ()> {
        KeyId::parse(s).ok_or(())
    }
}

/// KMS's KeyMaterialId: names one version of a key's material; 32 bytes shown as 64 hex digits.
/// It is a public identifier (never derived in a way that reveals the material).
#[derive(Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, Default)]
pub struct KeyMaterialId(pub [u8; 32]);

impl KeyMaterialId {
    /// Writes the 64-hex-digit form into `out` and returns it.
    pub fn write_hex<'b>(&self, out: &'b mut [u8; 64]) -> &'b str {
        const HEX: &[u8; 16] = b"0123456789abcdef";
        for (i, b) in self.0.iter().enumerate() {
            out[2 * i] = HEX[(b >> 4) as usize];
            out[2 * i + 1] = HEX[(b & 0xf) as usize];
        }
        core::str::from_utf8(&out[..]).unwrap_or("")
    }
}

impl fmt::Display for KeyMaterialId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut buf = [0u8; 64];
        f.write_str(self.write_hex(&mut buf))
    }
}

impl fmt::Debug for KeyMaterialId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "KeyMaterialId({self})")
    }
}

/// Declares a field-less enum whose variants have KMS string names, with `as_str`, `ALL` and
/// `FromStr` (exact KMS name). Variants are appended only (postcard index is the wire form).
macro_rules! kms_enum {
    ($(#[$m:meta])* $name:ident { $($(#[$vm:meta])* $var:ident => $s:literal),+ $(,)? }) => {
        $(#[$m])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
        pub enum $name { $($(#[$vm])* $var),+ }
        impl $name {
            /// Every variant, in wire order.
            pub const ALL: &'static [$name] = &[$($name::$var),+];
            /// The KMS name of this value.
            pub const fn as_str(self) -> &'static str { match self { $($name::$var => $s),+ } }
        }
        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result { f.write_str(self.as_str()) }
        }
        impl FromStr for $name {
            type Err = ();
            fn from_str(s: &str) -> Result<Self, ()> {
                match s { $($s => Ok($name::$var),)+ _ => Err(()) }
            }
        }
    };
}

kms_enum!(
    /// KeySpec: what kind of key material a key holds.
    KeySpec {
        /// AES-256-GCM.
        SymmetricDefault => "SYMMETRIC_DEFAULT",
        /// NIST P-256 ECDSA key pair.
        EccNistP256 => "ECC_NIST_P256",
        /// HMAC with a 256-bit key (HMAC_SHA_256).
        Hmac256 => "HMAC_256",
        /// HMAC with a 384-bit key (HMAC_SHA_384).
        Hmac384 => "HMAC_384",
        /// HMAC with a 512-bit key (HMAC_SHA_512).
        Hmac512 => "HMAC_512",
        /// secp256k1 key pair: ECDSA_SHA_256 (SIGN_VERIFY) or ECDH (KEY_AGREEMENT).
        EccSecgP256k1 => "ECC_SECG_P256K1",
        /// NIST P-384 key pair: ECDSA_SHA_384 (SIGN_VERIFY) or ECDH (KEY_AGREEMENT).
        EccNistP384 => "ECC_NIST_P384",
        /// Ed25519 key pair (SIGN_VERIFY): ED25519_SHA_512 and ED25519_PH_SHA_512.
        EccNistEdwards25519 => "ECC_NIST_EDWARDS25519",
        /// ML-DSA-44 key pair (FIPS 204, SIGN_VERIFY): ML_DSA_SHAKE_256.
        MlDsa44 => "ML_DSA_44",
        /// ML-DSA-65 key pair (FIPS 204, SIGN_VERIFY): ML_DSA_SHAKE_256.
        MlDsa65 => "ML_DSA_65",
        /// ML-DSA-87 key pair (FIPS 204, SIGN_VERIFY): ML_DSA_SHAKE_256.
        MlDsa87 => "ML_DSA_87",
        /// ML-KEM-512 key pair (FIPS 203, ENCAPSULATE_DECAPSULATE).
        MlKem512 => "ML_KEM_512",
        /// ML-KEM-768 key pair (FIPS 203, ENCAPSULATE_DECAPSULATE).
        MlKem768 => "ML_KEM_768",
        /// ML-KEM-1024 key pair (FIPS 203, ENCAPSULATE_DECAPSULATE).
        MlKem1024 => "ML_KEM_1024",
    }
);

impl KeySpec {
    /// The usage a key of this spec gets when CreateKey names none: the first of
    /// [`KeySpec::allowed_usages`].
    pub const fn default_usage(self) -> KeyUsage {
        self.allowed_usages()[0]
    }

    /// The key usages KMS allows for this spec (never empty).
    pub const fn allowed_usages(self) -> &'static [KeyUsage] {
        match self {
            KeySpec::SymmetricDefault => &[KeyUsage::EncryptDecrypt],
            KeySpec::EccNistP256 | KeySpec::EccSecgP256k1 | KeySpec::EccNistP384 => {
                &[KeyUsage::SignVerify, KeyUsage::KeyAgreement]
            }
            KeySpec::EccNistEdwards25519 | KeySpec::MlDsa44 | KeySpec::MlDsa65 | KeySpec::MlDsa87 => {
                &[KeyUsage::SignVerify]
            }
            KeySpec::Hmac256 | KeySpec::Hmac384 | KeySpec::Hmac512 => &[KeyUsage::GenerateVerifyMac],
            KeySpec::MlKem512 | KeySpec::MlKem768 | KeySpec::MlKem1024 => &[KeyUsage::EncapsulateDecapsulate],
        }
    }

    /// Whether KMS allows `usage` for this spec.
    pub fn allows(self, usage: KeyUsage) -> bool {
        self.allowed_usages().contains(&usage)
    }

    /// The signing algorithms a SIGN_VERIFY key of this spec accepts (empty for the others).
    pub const fn signing_algorithms(self) -> &'static [SigningAlgorithm] {
        match self {
            KeySpec::EccNistP256 | KeySpec::EccSecgP256k1 => &[SigningAlgorithm::EcdsaSha256],
            KeySpec::EccNistP384 => &[SigningAlgorithm::EcdsaSha384],
            KeySpec::EccNistEdwards25519 => {
                &[SigningAlgorithm::Ed25519Sha512, SigningAlgorithm::Ed25519PhSha512]
            }
            KeySpec::MlDsa44 | KeySpec::MlDsa65 | KeySpec::MlDsa87 => &[SigningAlgorithm::MlDsaShake256],
            KeySpec::SymmetricDefault
            | KeySpec::Hmac256
            | KeySpec::Hmac384
            | KeySpec::Hmac512
            | KeySpec::MlKem512
            | KeySpec::MlKem768
            | KeySpec::MlKem1024 => &[],
        }
    }
}

kms_enum!(
    /// KeyUsage (KMS KeyUsageType).
    KeyUsage {
        /// Encrypt, Decrypt, ReEncrypt, GenerateDataKey*.
        EncryptDecrypt => "ENCRYPT_DECRYPT",
        /// Sign, Verify, GetPublicKey.
        SignVerify => "SIGN_VERIFY",
        /// GenerateMac, VerifyMac.
        GenerateVerifyMac => "GENERATE_VERIFY_MAC",
        /// DeriveSharedSecret (ECDH), GetPublicKey.
        KeyAgreement => "KEY_AGREEMENT",
        /// Encapsulate, Decapsulate (ML-KEM), GetPublicKey.
        EncapsulateDecapsulate => "ENCAPSULATE_DECAPSULATE",
    }
);

/// The tag (key) whose value `true` lets a SIGN_VERIFY key rotate (EnableKeyRotation,
/// RotateKeyOnDemand): without it the token refuses, as KMS does, with
/// UnsupportedOperationException. Rotating a signing key makes new signatures verify only with
/// the new public key; the tag is the key's recorded consent to that.
pub const ALLOW_SIGNING_KEY_ROTATION_TAG: &str = "pkms:AllowSigningKeyRotation";

kms_enum!(
    /// KeyState: the lifecycle state of a key.
    KeyState {
        /// Usable.
        Enabled => "Enabled",
        /// Refuses cryptographic operations with Disabled.
        Disabled => "Disabled",
        /// Scheduled for deletion; refuses cryptographic operations with InvalidState.
        PendingDeletion => "PendingDeletion",
    }
);

kms_enum!(
    /// DataKeySpec for GenerateDataKey.
    DataKeySpec {
        /// 32-byte data key.
        Aes256 => "AES_256",
        /// 16-byte data key.
        Aes128 => "AES_128",
    }
);

impl DataKeySpec {
    /// Length of the data key in bytes.
    pub const fn key_len(self) -> usize {
        match self {
            DataKeySpec::Aes256 => 32,
            DataKeySpec::Aes128 => 16,
        }
    }
}

kms_enum!(
    /// EncryptionAlgorithmSpec. The token only implements SYMMETRIC_DEFAULT (AES-256-GCM).
    EncryptionAlgorithm {
        /// AES-256-GCM.
        SymmetricDefault => "SYMMETRIC_DEFAULT",
    }
);

kms_enum!(
    /// SigningAlgorithmSpec supported by the token.
    SigningAlgorithm {
        /// ECDSA with SHA-256 (ECC_NIST_P256, ECC_SECG_P256K1).
        EcdsaSha256 => "ECDSA_SHA_256",
        /// ECDSA with SHA-384 (ECC_NIST_P384).
        EcdsaSha384 => "ECDSA_SHA_384",
        /// Pure Ed25519 (RFC 8032) of a RAW message.
        Ed25519Sha512 => "ED25519_SHA_512",
        /// Ed25519ph (RFC 8032) over SHA-512: a RAW message or its 64-byte SHA-512 DIGEST.
        Ed25519PhSha512 => "ED25519_PH_SHA_512",
        /// Pure ML-DSA (FIPS 204, empty context): a RAW message or its 64-byte EXTERNAL_MU.
        MlDsaShake256 => "ML_DSA_SHAKE_256",
    }
);

kms_enum!(
    /// MessageType for Sign / Verify.
    MessageType {
        /// The token hashes the message (up to 4096 bytes).
        Raw => "RAW",
        /// The message is the algorithm's digest (SHA-256: 32 bytes, SHA-384: 48, SHA-512: 64).
        Digest => "DIGEST",
        /// ML-DSA only: the message is the 64-byte μ of FIPS 204 (computed by the caller).
        ExternalMu => "EXTERNAL_MU",
    }
);

kms_enum!(
    /// KeyAgreementAlgorithmSpec (DeriveSharedSecret).
    KeyAgreementAlgorithm {
        /// Elliptic-curve Diffie-Hellman: the x-coordinate of the shared point.
        Ecdh => "ECDH",
    }
);

kms_enum!(
    /// EncapsulationAlgorithmSpec (Encapsulate, Decapsulate).
    EncapsulationAlgorithm {
        /// ML-KEM (FIPS 203).
        MlKem => "ML_KEM",
    }
);

kms_enum!(
    /// DataKeyPairSpec (GenerateDataKeyPair): the key pair specs the token makes (RSA, SM2 and
    /// P-521 are KMS's too, not the token's).
    DataKeyPairSpec {
        /// NIST P-256.
        EccNistP256 => "ECC_NIST_P256",
        /// NIST P-384.
        EccNistP384 => "ECC_NIST_P384",
        /// secp256k1.
        EccSecgP256k1 => "ECC_SECG_P256K1",
        /// Ed25519.
        EccNistEdwards25519 => "ECC_NIST_EDWARDS25519",
        /// ML-KEM-512.
        MlKem512 => "ML_KEM_512",
        /// ML-KEM-768.
        MlKem768 => "ML_KEM_768",
        /// ML-KEM-1024.
        MlKem1024 => "ML_KEM_1024",
    }
);

impl DataKeyPairSpec {
    /// The key spec of the pair.
    pub const fn key_spec(self) -> KeySpec {
        match self {
            DataKeyPairSpec::EccNistP256 => KeySpec::EccNistP256,
            DataKeyPairSpec::EccNistP384 => KeySpec::EccNistP384,
            DataKeyPairSpec::EccSecgP256k1 => KeySpec::EccSecgP256k1,
            DataKeyPairSpec::EccNistEdwards25519 => KeySpec::EccNistEdwards25519,
            DataKeyPairSpec::MlKem512 => KeySpec::MlKem512,
            DataKeyPairSpec::MlKem768 => KeySpec::MlKem768,
            DataKeyPairSpec::MlKem1024 => KeySpec::MlKem1024,
        }
    }
}

kms_enum!(
    /// MacAlgorithmSpec.
    MacAlgorithm {
        /// HMAC-SHA-256 (HMAC_256 keys).
        HmacSha256 => "HMAC_SHA_256",
        /// HMAC-SHA-384 (HMAC_384 keys).
        HmacSha384 => "HMAC_SHA_384",
        /// HMAC-SHA-512 (HMAC_512 keys).
        HmacSha512 => "HMAC_SHA_512",
    }
);

kms_enum!(
    /// RotationType of a key version.
    RotationType {
        /// Made by the token's rotation schedule.
        Automatic => "AUTOMATIC",
        /// Made by RotateKeyOnDemand.
        OnDemand => "ON_DEMAND",
    }
);

kms_enum!(
    /// KeyMaterialState of a key version.
    KeyMaterialState {
        /// Older version: decrypts / verifies only.
        NonCurrent => "NON_CURRENT",
        /// Newest version: used for Encrypt, Sign, GenerateMac, GenerateDataKey.
        Current => "CURRENT",
    }
);

/// Key version number: 1 for the material a key is created with, +1 per rotation.
pub type KeyVersion = u32;

/// Seconds since the Unix epoch (UTC), as supplied by the host.
pub type UnixTime = u64;

/// KeyMetadata, as DescribeKey and CreateKey return it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct KeyMetadata<'a> {
    /// KeyId.
    pub key_id: KeyId,
    /// CreationDate (Unix seconds, host time at creation).
    pub creation_date: UnixTime,
    /// Enabled: true exactly when `key_state` is Enabled.
    pub enabled: bool,
    /// Description.
    pub description: &'a str,
    /// KeyUsage.
    pub key_usage: KeyUsage,
    /// KeyState.
    pub key_state: KeyState,
    /// KeySpec.
    pub key_spec: KeySpec,
    /// DeletionDate when PendingDeletion.
    pub deletion_date: Option<UnixTime>,
    /// PendingDeletionWindowInDays when PendingDeletion.
    pub pending_deletion_window_in_days: Option<u16>,
    /// CurrentKeyMaterialId: the newest version's material id.
    pub current_key_material_id: KeyMaterialId,
    /// The newest version number.
    pub current_key_version: KeyVersion,
    /// Oldest version still held (older ones were retired).
    pub oldest_key_version: KeyVersion,
    /// Whether automatic rotation is enabled.
    pub key_rotation_enabled: bool,
    /// RotationPeriodInDays when rotation is enabled.
    pub rotation_period_in_days: Option<u16>,
    /// NextRotationDate when rotation is enabled.
    pub next_rotation_date: Option<UnixTime>,
    /// Beyond KMS: Sign and Decrypt need a user-presence check (button) on the token.
    pub user_presence_required: bool,
}

/// One ListKeyRotations item (RotationsListEntry).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct RotationsListEntry {
    /// KeyId.
    pub key_id: KeyId,
    /// KeyMaterialId.
    pub key_material_id: KeyMaterialId,
    /// The version number (Pocket KMS shows it beside the material id).
    pub key_version: KeyVersion,
    /// KeyMaterialState.
    pub key_material_state: KeyMaterialState,
    /// RotationDate: when this version was made (creation date for version 1).
    pub rotation_date: UnixTime,
    /// RotationType; `None` for the version the key was created with.
    pub rotation_type: Option<RotationType>,
}

/// One ListAliases item (AliasListEntry).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AliasListEntry<'a> {
    /// AliasName (`alias/…`).
    pub alias_name: &'a str,
    /// TargetKeyId.
    pub target_key_id: KeyId,
    /// CreationDate.
    pub creation_date: UnixTime,
    /// LastUpdatedDate.
    pub last_updated_date: UnixTime,
}

/// One tag (TagKey, TagValue).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Tag<'a> {
    /// TagKey: 1..=128 characters.
    pub tag_key: &'a str,
    /// TagValue: 0..=256 characters.
    pub tag_value: &'a str,
}

impl Tag<'_> {
    /// Whether the tag obeys KMS's length rules.
    pub fn is_valid(&self) -> bool {
        !self.tag_key.is_empty() && self.tag_key.len() <= MAX_TAG_KEY && self.tag_value.len() <= MAX_TAG_VALUE
    }
}

/// A bounded list of tags.
pub type Tags<'a> = heapless::Vec<Tag<'a>, MAX_TAGS_PER_KEY>;

/// Whether the token is real hardware or the emulator, with what protects its keys.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum Platform {
    /// The QEMU build: no hardware entropy (seeded from the host) and no key protection
    /// (the flash file on the host holds the device root key).
    Emulated,
    /// A hardware token.
    Hardware,
}

/// GetInfo's answer.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TokenInfo<'a> {
    /// Firmware version (semver).
    pub firmware_version: &'a str,
    /// [`crate::PROTOCOL_VERSION`] of the firmware.
    pub protocol_version: u16,
    /// Board name, e.g. `qemu-mps2-an386` or `nrf52840-dk`.
    pub board: &'a str,
    /// Emulated or hardware.
    pub platform: Platform,
    /// Where randomness comes from, stated plainly (e.g. "host /dev/urandom via semihosting
    /// (emulator only)").
    pub entropy_source: &'a str,
    /// What protects key material at rest, stated plainly.
    pub key_protection: &'a str,
    /// Flash bytes the key store may use.
    pub storage_total_bytes: u32,
    /// Flash bytes still free (approximate: reclaimable space counts as free).
    pub storage_free_bytes: u32,
    /// Keys stored (any state).
    pub key_count: u32,
    /// The token's wall-time high-water mark (never runs backwards).
    pub time_high_water_mark: UnixTime,
    /// Whether the token is initialised with principals and PINs; `false` means open: anyone
    /// holding it can use every key.
    pub initialized: bool,
    /// Live key versions in no export since the backup key was made (all of them when the
    /// token has none).
    pub key_versions_not_backed_up: u32,
    /// Whether the token has a backup key (BackupInit, or a restore brought one).
    pub backup_key: bool,
}

/// The outcome of this boot's power-on self-tests (GetSelfTests); a DRBG whose entropy source
/// fails a health test later in the boot turns it into `Failed(Drbg)`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum SelfTests {
    /// Every test passed: the token serves.
    Passed,
    /// This test failed (the others after it did not run): the token is in its error state,
    /// where only Hello, GetInfo and GetSelfTests answer.
    Failed(SelfTest),
}

/// One power-on self-test: a known-answer test of an algorithm the token relies on.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum SelfTest {
    /// SHA-256 of a known message.
    Sha256,
    /// HMAC-SHA-256 of a known message under a known key; a wrong tag refused.
    HmacSha256,
    /// AES-256-GCM encryption of a known message (ciphertext and tag), its decryption, a
    /// tampered tag refused.
    Aes256Gcm,
    /// ECDSA P-256: the public key of a known scalar, a deterministic signature, and its
    /// verification with that public key (pairwise consistency).
    EcdsaP256,
    /// The DRBG: ChaCha20's known output from a known seed, and the token's own generator
    /// giving two different, non-zero outputs.
    Drbg,
}

impl SelfTest {
    /// Every test, in the order they run.
    pub const ALL: [SelfTest; 5] =
        [SelfTest::Sha256, SelfTest::HmacSha256, SelfTest::Aes256Gcm, SelfTest::EcdsaP256, SelfTest::Drbg];

    /// The name `pkms info` shows for a failed test.
    pub const fn name(self) -> &'static str {
        match self {
            SelfTest::Sha256 => "SHA-256",
            SelfTest::HmacSha256 => "HMAC-SHA-256",
            SelfTest::Aes256Gcm => "AES-256-GCM",
            SelfTest::EcdsaP256 => "ECDSA-P256",
            SelfTest::Drbg => "DRBG",
        }
    }
}
