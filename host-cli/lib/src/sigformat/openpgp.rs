//! OpenPGP (RFC 4880 / RFC 6637, v4 keys and signatures) for token keys: a certificate whose
//! primary key is a token key, self-signed on the token, and detached binary signatures (`.asc`)
//! that `gpg --verify` accepts.
//!
//! rPGP (`pgp`) builds and parses the packets; the token signs through rPGP's
//! [`SigningKey`] trait, so no secret key ever exists on the host.
//!
//! * ECC_NIST_P256 keys are OpenPGP ECDSA keys (algorithm 19, curve NIST P-256): the token signs
//!   the SHA-256 digest OpenPGP computes (Sign, MessageType DIGEST, ECDSA_SHA_256).
//! * ECC_NIST_EDWARDS25519 keys are OpenPGP EdDSA keys in the v4 "legacy" encoding (algorithm 22,
//!   curve Ed25519, the only Ed25519 form gpg 2.2 reads): OpenPGP's EdDSA signs the hash digest
//!   as the message, so the token signs the SHA-256 digest as a RAW message (ED25519_SHA_512).
//!
//! A v4 fingerprint covers the key's creation time, so the certificate of a key version uses
//! that version's creation date as the token records it (ListKeyRotations' RotationDate; the
//! key's CreationDate for version 1): every export of one version has one fingerprint. Each
//! version is other key material, so each version is its own OpenPGP key with its own
//! fingerprint; signatures name the signing version's fingerprint, and verify with the
//! certificate of that version. The token signs only with a key's newest version, so the
//! certificate of an older version is rebuilt from a self-signature kept from when it was the
//! newest ([`self_signature_tag`], [`TokenKey::replay_certificate`]).

use std::cell::RefCell;
use std::io::Read;

use p256::pkcs8::DecodePublicKey as _;
use pgp::composed::{ArmorOptions, Deserializable, DetachedSignature, SignedKeyDetails, SignedPublicKey};
use pgp::crypto::hash::HashAlgorithm;
use pgp::crypto::public_key::PublicKeyAlgorithm;
use pgp::packet::{
    KeyFlags, PubKeyInner, PublicKey, SignatureConfig, SignatureType, Subpacket, SubpacketData, UserId,
};
use pgp::types::{
    EcdsaPublicParams, EddsaLegacyPublicParams, Fingerprint, KeyDetails, KeyId, KeyVersion, Mpi,
    PacketHeaderVersion, Password, PublicParams, SignatureBytes, SigningKey, Tag, Timestamp,
};
use pkms_protocol::{KeySpec, KeyUsage, MessageType, SigningAlgorithm};

use crate::client::Client;
use crate::error::{Chain, Error};

/// The hash every signature made here uses.
const HASH: HashAlgorithm = HashAlgorithm::Sha256;
/// The longest user ID accepted (OpenPGP has no limit; keyservers cut at a few KiB).
pub const MAX_USER_ID: usize = 1024;
/// id-Ed25519 (RFC 8410).
const ED25519_OID: p256::pkcs8::ObjectIdentifier = p256::pkcs8::ObjectIdentifier::new_unwrap("1.3.101.112");

/// Why an OpenPGP operation failed.
#[derive(Debug, thiserror::Error)]
pub enum OpenPgpError {
    /// A token call failed (its refusal or the link).
    #[error(transparent)]
    Token(#[from] Error),
    /// The key cannot be an OpenPGP signing key.
    #[error(
        "OpenPGP signs with ECC_NIST_P256 or ECC_NIST_EDWARDS25519 SIGN_VERIFY keys; {key_id} is a {spec} {usage} key"
    )]
    WrongKey {
        /// The key.
        key_id: String,
        /// Its spec.
        spec: KeySpec,
        /// Its usage.
        usage: KeyUsage,
    },
    /// The asked-for version is not held (never made, or retired).
    #[error("{key_id} has no version {version} (versions held: {oldest}..={newest})")]
    NoSuchVersion {
        /// The key.
        key_id: String,
        /// The version asked for.
        version: u32,
        /// Oldest held.
        oldest: u32,
        /// Newest.
        newest: u32,
    },
    /// An older version's certificate was asked for, and no self-signature of it was kept (the
    /// token signs only with a key's newest version).
    #[error(
        "the token signs only with the newest version ({newest}) of {key_id}, and no self-signature of version {version} \
         was kept (it is kept in the key's tag {tag} when version {version} is exported while it is the newest): \
         use the certificate exported then"
    )]
    NoKeptSelfSignature {
        /// The key.
        key_id: String,
        /// The version asked for.
        version: u32,
        /// The newest version.
        newest: u32,
        /// The tag that would hold it.
        tag: String,
    },
    /// The kept self-signature of an older version does not certify this user ID.
    #[error(
        "the self-signature kept for version {version} of {key_id} certifies another user ID, and the token signs only \
         with the newest version: export version {version} with the user ID it was first exported with"
    )]
    KeptSelfSignatureMismatch {
        /// The key.
        key_id: String,
        /// The version.
        version: u32,
    },
    /// A user ID OpenPGP tools would choke on.
    #[error("bad user ID: {0}")]
    BadUserId(String),
    /// The token's public key is not what its spec says.
    #[error("the token's public key is not a valid {0} SubjectPublicKeyInfo")]
    PublicKey(&'static str),
    /// A version's creation date does not fit OpenPGP's 32-bit timestamps.
    #[error("the key version's creation date {0} does not fit an OpenPGP timestamp")]
    Timestamp(u64),
    /// The token signed with another version than the one the signature names (the key was
    /// rotated meanwhile).
    #[error(
        "the token signed with version {signed}, not {expected} (was the key rotated meanwhile?); sign again"
    )]
    VersionChanged {
        /// The version the certificate / signature names.
        expected: u32,
        /// The version the token used.
        signed: u32,
    },
    /// The token's signature is not what the algorithm produces.
    #[error("the token returned a malformed {0} signature")]
    TokenSignature(&'static str),
    /// rPGP refused to build, parse or verify something.
    #[error("{0}")]
    Pgp(String),
}

impl OpenPgpError {
    fn pgp(e: pgp::errors::Error) -> Self {
        OpenPgpError::Pgp(Chain(&e).to_string())
    }

    /// The client's error behind this one, if a token call failed.
    pub fn client_error(&self) -> Option<&Error> {
        match self {
            OpenPgpError::Token(e) => Some(e),
            OpenPgpError::WrongKey { .. }
            | OpenPgpError::NoKeptSelfSignature { .. }
            | OpenPgpError::KeptSelfSignatureMismatch { .. }
            | OpenPgpError::NoSuchVersion { .. }
            | OpenPgpError::BadUserId(_)
            | OpenPgpError::PublicKey(_)
            | OpenPgpError::Timestamp(_)
            | OpenPgpError::VersionChanged { .. }
            | OpenPgpError::TokenSignature(_)
            | OpenPgpError::Pgp(_) => None,
        }
    }
}

/// The OpenPGP algorithm a token key maps to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Algorithm {
    /// ECDSA over NIST P-256 (RFC 6637).
    EcdsaP256,
    /// EdDSA over Ed25519, v4 legacy encoding.
    Ed25519,
}

impl Algorithm {
    /// The OpenPGP algorithm of a SIGN_VERIFY key of `spec`, if there is one.
    pub fn for_key(spec: KeySpec, usage: KeyUsage) -> Option<Algorithm> {
        if usage != KeyUsage::SignVerify {
            return None;
        }
        match spec {
            KeySpec::EccNistP256 => Some(Algorithm::EcdsaP256),
            KeySpec::EccNistEdwards25519 => Some(Algorithm::Ed25519),
            KeySpec::SymmetricDefault
            | KeySpec::Hmac256
            | KeySpec::Hmac384
            | KeySpec::Hmac512
            | KeySpec::EccSecgP256k1
            | KeySpec::EccNistP384
            | KeySpec::MlDsa44
            | KeySpec::MlDsa65
            | KeySpec::MlDsa87
            | KeySpec::MlKem512
            | KeySpec::MlKem768
            | KeySpec::MlKem1024 => None,
        }
    }

    fn name(self) -> &'static str {
        match self {
            Algorithm::EcdsaP256 => "ECC_NIST_P256",
            Algorithm::Ed25519 => "ECC_NIST_EDWARDS25519",
        }
    }

    /// How the token is asked to sign an OpenPGP hash digest.
    pub fn token_signing(self) -> (MessageType, SigningAlgorithm) {
        match self {
            Algorithm::EcdsaP256 => (MessageType::Digest, SigningAlgorithm::EcdsaSha256),
            Algorithm::Ed25519 => (MessageType::Raw, SigningAlgorithm::Ed25519Sha512),
        }
    }

    /// OpenPGP's public key parameters of a DER SubjectPublicKeyInfo.
    fn public_params(self, spki: &[u8]) -> Result<(PublicKeyAlgorithm, PublicParams), OpenPgpError> {
        match self {
            Algorithm::EcdsaP256 => {
                let key = p256::PublicKey::from_public_key_der(spki)
                    .map_err(|_| OpenPgpError::PublicKey(self.name()))?;
                Ok((PublicKeyAlgorithm::ECDSA, PublicParams::ECDSA(EcdsaPublicParams::P256 { key })))
            }
            Algorithm::Ed25519 => {
                let info = p256::pkcs8::spki::SubjectPublicKeyInfoRef::try_from(spki)
                    .map_err(|_| OpenPgpError::PublicKey(self.name()))?;
                if info.algorithm.oid != ED25519_OID {
                    return Err(OpenPgpError::PublicKey(self.name()));
                }
                let raw: [u8; 32] = info
                    .subject_public_key
                    .as_bytes()
                    .and_then(|b| b.try_into().ok())
                    .ok_or(OpenPgpError::PublicKey(self.name()))?;
                let key = ed25519_dalek_2::VerifyingKey::from_bytes(&raw)
                    .map_err(|_| OpenPgpError::PublicKey(self.name()))?;
                Ok((
                    PublicKeyAlgorithm::EdDSALegacy,
                    PublicParams::EdDSALegacy(EddsaLegacyPublicParams::Ed25519 { key }),
                ))
            }
        }
    }

    /// OpenPGP's signature MPIs of what the token returned.
    fn signature_bytes(self, token_signature: &[u8]) -> Result<SignatureBytes, OpenPgpError> {
        let (r, s) = match self {
            Algorithm::EcdsaP256 => {
                let sig = p256::ecdsa::Signature::from_der(token_signature)
                    .map_err(|_| OpenPgpError::TokenSignature("ECDSA"))?;
                let (r, s) = sig.split_bytes();
                (r.to_vec(), s.to_vec())
            }
            Algorithm::Ed25519 => {
                if token_signature.len() != 64 {
                    return Err(OpenPgpError::TokenSignature("Ed25519"));
                }
                (token_signature[..32].to_vec(), token_signature[32..].to_vec())
            }
        };
        // MPIs without leading zeros, as parsing yields them.
        Ok(SignatureBytes::Mpis(vec![Mpi::from_slice(&r), Mpi::from_slice(&s)]))
    }
}

/// A key version as an OpenPGP primary key.
#[derive(Debug, Clone)]
pub struct TokenKey {
    /// The token's key id.
    pub key_id: String,
    /// The key version.
    pub key_version: u32,
    /// Its OpenPGP algorithm.
    pub algorithm: Algorithm,
    /// The key's newest version (the only one the token signs with).
    pub newest_version: u32,
    /// The OpenPGP public key packet.
    pub public_key: PublicKey,
}

/// The tag of a key that keeps the token's self-signature of version `version`'s certificate.
pub fn self_signature_tag(version: u32) -> String {
    format!("pkms:openpgp:v{version}")
}

impl TokenKey {
    /// The OpenPGP key of a DER SubjectPublicKeyInfo created at `created` (Unix seconds).
    pub fn from_spki(
        key_id: &str,
        key_version: u32,
        algorithm: Algorithm,
        spki: &[u8],
        created: u64,
    ) -> Result<TokenKey, OpenPgpError> {
        let (alg, params) = algorithm.public_params(spki)?;
        let created = u32::try_from(created).map_err(|_| OpenPgpError::Timestamp(created))?;
        let inner = PubKeyInner::new(KeyVersion::V4, alg, Timestamp::from_secs(created), None, params)
            .map_err(OpenPgpError::pgp)?;
        let public_key = PublicKey::from_inner(inner).map_err(OpenPgpError::pgp)?;
        Ok(TokenKey {
            key_id: key_id.to_owned(),
            key_version,
            algorithm,
            newest_version: key_version,
            public_key,
        })
    }

    /// Reads a key version (default: the newest) from the token: its spec and usage
    /// (DescribeKey), its creation date (ListKeyRotations) and public key (GetPublicKey).
    pub fn load(client: &mut Client, key_id: &str, version: Option<u32>) -> Result<TokenKey, OpenPgpError> {
        let meta = client.describe_key(key_id)?;
        let key_id = meta.key_id.to_string();
        let algorithm = Algorithm::for_key(meta.key_spec, meta.key_usage).ok_or_else(|| {
            OpenPgpError::WrongKey { key_id: key_id.clone(), spec: meta.key_spec, usage: meta.key_usage }
        })?;
        let version = version.unwrap_or(meta.current_key_version);
        let no_such = || OpenPgpError::NoSuchVersion {
            key_id: key_id.clone(),
            version,
            oldest: meta.oldest_key_version,
            newest: meta.current_key_version,
        };
        if version < meta.oldest_key_version || version > meta.current_key_version {
            return Err(no_such());
        }
        let created = client
            .list_all_key_rotations(&key_id)?
            .iter()
            .find(|r| r.key_version == version)
            .map(|r| r.rotation_date)
            .ok_or_else(no_such)?;
        let public = client.get_public_key(&key_id, Some(version))?;
        let mut key = TokenKey::from_spki(&key_id, version, algorithm, &public.public_key, created)?;
        key.newest_version = meta.current_key_version;
        Ok(key)
    }

    /// The certificate of [`TokenKey::certificate`] rebuilt with a self-signature the token made
    /// earlier (`token_signature`, as Sign returned it), checked: an older version's certificate,
    /// which the token can no longer sign.
    pub fn replay_certificate(&self, user_id: &str, token_signature: &[u8]) -> Result<String, OpenPgpError> {
        let version = self.key_version;
        let cert = self.certificate(user_id, |_| {
            Ok(RawSignature { signature: token_signature.to_vec(), key_version: version })
        });
        let mismatch = || OpenPgpError::KeptSelfSignatureMismatch { key_id: self.key_id.clone(), version };
        let cert = match cert {
            Ok(c) => c,
            Err(OpenPgpError::TokenSignature(_)) => return Err(mismatch()),
            Err(e) => return Err(e),
        };
        Certificate::parse(cert.as_bytes()).map_err(|_| mismatch())?;
        Ok(cert)
    }

    /// The v4 fingerprint (40 upper-case hex digits).
    pub fn fingerprint_hex(&self) -> String {
        upper_hex(self.public_key.fingerprint().as_bytes())
    }

    /// The creation time in the key packet (Unix seconds).
    pub fn created(&self) -> u32 {
        self.public_key.created_at().as_secs()
    }

    /// The armored certificate: this key, `user_id`, and a positive self-certification signed
    /// by `sign` at the key's creation time (so the output depends only on the key version, the
    /// user ID and the token's signature).
    pub fn certificate<F>(&self, user_id: &str, sign: F) -> Result<String, OpenPgpError>
    where
        F: FnMut(&[u8]) -> Result<RawSignature, Error>,
    {
        check_user_id(user_id)?;
        let uid = UserId::from_str(PacketHeaderVersion::New, user_id).map_err(OpenPgpError::pgp)?;
        let signer = TokenSigner::new(self, sign);
        let mut config = SignatureConfig::v4(SignatureType::CertPositive, self.public_key.algorithm(), HASH);
        let mut flags = KeyFlags::default();
        flags.set_certify(true);
        flags.set_sign(true);
        config.hashed_subpackets = vec![
            subpacket(SubpacketData::SignatureCreationTime(self.public_key.created_at()))?,
            subpacket(SubpacketData::IssuerFingerprint(self.public_key.fingerprint()))?,
            subpacket(SubpacketData::KeyFlags(flags))?,
            subpacket(SubpacketData::PreferredHashAlgorithms(
                [HashAlgorithm::Sha256, HashAlgorithm::Sha512].into_iter().collect(),
            ))?,
        ];
        config.unhashed_subpackets =
            vec![subpacket(SubpacketData::IssuerKeyId(self.public_key.legacy_key_id()))?];
        let sig = config
            .sign_certification(&signer, &self.public_key, &Password::empty(), Tag::UserId, &uid)
            .map_err(|e| signer.error(e))?;
        let details = SignedKeyDetails::new(vec![], vec![], vec![uid.into_signed(sig)], vec![]);
        let cert = SignedPublicKey::new(self.public_key.clone(), details, vec![]);
        cert.to_armored_string(ArmorOptions::default()).map_err(OpenPgpError::pgp)
    }

    /// An armored detached signature (binary document, type 0x00) of everything `data` yields,
    /// made at `created` (Unix seconds), naming this key by fingerprint (hashed) and key ID.
    pub fn sign_detached<F, R>(&self, data: R, created: u32, sign: F) -> Result<String, OpenPgpError>
    where
        F: FnMut(&[u8]) -> Result<RawSignature, Error>,
        R: Read,
    {
        let signer = TokenSigner::new(self, sign);
        let mut config = SignatureConfig::v4(SignatureType::Binary, self.public_key.algorithm(), HASH);
        config.hashed_subpackets = vec![
            subpacket(SubpacketData::SignatureCreationTime(Timestamp::from_secs(created)))?,
            subpacket(SubpacketData::IssuerFingerprint(self.public_key.fingerprint()))?,
        ];
        config.unhashed_subpackets =
            vec![subpacket(SubpacketData::IssuerKeyId(self.public_key.legacy_key_id()))?];
        let sig = config.sign(&signer, &Password::empty(), data).map_err(|e| signer.error(e))?;
        DetachedSignature::new(sig).to_armored_string(ArmorOptions::default()).map_err(OpenPgpError::pgp)
    }
}

/// What the token returned for one Sign: the signature (DER for ECDSA, 64 bytes for Ed25519)
/// and the key version that made it.
#[derive(Debug, Clone)]
pub struct RawSignature {
    /// The signature bytes as the token returns them.
    pub signature: Vec<u8>,
    /// The version that signed.
    pub key_version: u32,
}

/// Token Sign of an OpenPGP hash digest with the newest version of `key_id`.
pub fn token_sign(
    client: &mut Client,
    key_id: &str,
    algorithm: Algorithm,
    digest: &[u8],
) -> Result<RawSignature, Error> {
    let (message_type, signing_algorithm) = algorithm.token_signing();
    let out = client.sign(key_id, digest, message_type, signing_algorithm)?;
    Ok(RawSignature { signature: out.signature, key_version: out.key_version })
}

fn subpacket(data: SubpacketData) -> Result<Subpacket, OpenPgpError> {
    Subpacket::regular(data).map_err(OpenPgpError::pgp)
}

fn upper_hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02X}")).collect()
}

/// Refuses user IDs that are empty, too long or hold control characters (a newline would
/// forge lines in gpg's listings).
pub fn check_user_id(user_id: &str) -> Result<(), OpenPgpError> {
    if user_id.trim().is_empty() {
        return Err(OpenPgpError::BadUserId(
            "it is empty (give e.g. \"Release Team <release@example.com>\")".into(),
        ));
    }
    if user_id.len() > MAX_USER_ID {
        return Err(OpenPgpError::BadUserId(format!("it is longer than {MAX_USER_ID} bytes")));
    }
    if let Some(c) = user_id.chars().find(|c| c.is_control()) {
        return Err(OpenPgpError::BadUserId(format!("it holds the control character {:?}", c)));
    }
    Ok(())
}

/// rPGP's [`SigningKey`] backed by a token Sign; keeps the token's error for the caller (rPGP's
/// error type cannot carry it).
struct TokenSigner<'k, F> {
    key: &'k TokenKey,
    sign: RefCell<F>,
    failure: RefCell<Option<OpenPgpError>>,
}

impl<'k, F> TokenSigner<'k, F>
where
    F: FnMut(&[u8]) -> Result<RawSignature, Error>,
{
    fn new(key: &'k TokenKey, sign: F) -> Self {
        TokenSigner { key, sign: RefCell::new(sign), failure: RefCell::new(None) }
    }

    /// The error to report for rPGP's `e`: the token's, when a token call failed.
    fn error(&self, e: pgp::errors::Error) -> OpenPgpError {
        self.failure.borrow_mut().take().unwrap_or_else(|| OpenPgpError::pgp(e))
    }

    fn try_sign(&self, hash: HashAlgorithm, digest: &[u8]) -> Result<SignatureBytes, OpenPgpError> {
        if hash != HASH {
            return Err(OpenPgpError::Pgp(format!("the token key signs {HASH:?} digests, not {hash:?}")));
        }
        let raw = (self.sign.borrow_mut())(digest)?;
        if raw.key_version != self.key.key_version {
            return Err(OpenPgpError::VersionChanged {
                expected: self.key.key_version,
                signed: raw.key_version,
            });
        }
        self.key.algorithm.signature_bytes(&raw.signature)
    }
}

impl<F> std::fmt::Debug for TokenSigner<'_, F> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "TokenSigner({} version {})", self.key.key_id, self.key.key_version)
    }
}

impl<F> KeyDetails for TokenSigner<'_, F> {
    fn version(&self) -> KeyVersion {
        self.key.public_key.version()
    }
    fn legacy_key_id(&self) -> KeyId {
        self.key.public_key.legacy_key_id()
    }
    fn fingerprint(&self) -> Fingerprint {
        self.key.public_key.fingerprint()
    }
    fn algorithm(&self) -> PublicKeyAlgorithm {
        self.key.public_key.algorithm()
    }
    fn created_at(&self) -> Timestamp {
        self.key.public_key.created_at()
    }
    fn legacy_v3_expiration_days(&self) -> Option<u16> {
        self.key.public_key.legacy_v3_expiration_days()
    }
    fn public_params(&self) -> &PublicParams {
        self.key.public_key.public_params()
    }
}

impl<F> SigningKey for TokenSigner<'_, F>
where
    F: FnMut(&[u8]) -> Result<RawSignature, Error>,
{
    fn sign(
        &self,
        _key_pw: &Password,
        hash: HashAlgorithm,
        data: &[u8],
    ) -> pgp::errors::Result<SignatureBytes> {
        self.try_sign(hash, data).map_err(|e| {
            let message = e.to_string();
            *self.failure.borrow_mut() = Some(e);
            pgp::errors::Error::Message { message, backtrace: None }
        })
    }

    fn hash_alg(&self) -> HashAlgorithm {
        HASH
    }
}

/// A parsed certificate (`pkms openpgp export`'s output, armored or binary).
#[derive(Debug, Clone)]
pub struct Certificate(SignedPublicKey);

impl Certificate {
    /// Parses an armored or binary certificate and checks its self-signatures.
    pub fn parse(bytes: &[u8]) -> Result<Certificate, OpenPgpError> {
        let cert = if looks_armored(bytes) {
            SignedPublicKey::from_armor_single(bytes).map(|(c, _)| c)
        } else {
            SignedPublicKey::from_bytes(bytes)
        }
        .map_err(|e| OpenPgpError::Pgp(format!("not an OpenPGP certificate: {}", Chain(&e))))?;
        cert.verify_bindings().map_err(|e| {
            OpenPgpError::Pgp(format!("the certificate's self-signatures do not verify: {}", Chain(&e)))
        })?;
        Ok(Certificate(cert))
    }

    /// The primary key's fingerprint (upper-case hex).
    pub fn fingerprint_hex(&self) -> String {
        upper_hex(self.0.primary_key.fingerprint().as_bytes())
    }

    /// The user IDs.
    pub fn user_ids(&self) -> Vec<String> {
        self.0.details.users.iter().map(|u| String::from_utf8_lossy(u.id.id()).into_owned()).collect()
    }

    /// Whether the primary key is `key`'s.
    pub fn is_key(&self, key: &TokenKey) -> bool {
        self.0.primary_key.fingerprint() == key.public_key.fingerprint()
    }
}

/// A parsed detached signature.
#[derive(Debug, Clone)]
pub struct DetachedSig(DetachedSignature);

impl DetachedSig {
    /// Parses an armored or binary detached signature.
    pub fn parse(bytes: &[u8]) -> Result<DetachedSig, OpenPgpError> {
        let sig = if looks_armored(bytes) {
            DetachedSignature::from_armor_single(bytes).map(|(s, _)| s)
        } else {
            DetachedSignature::from_bytes(bytes)
        }
        .map_err(|e| OpenPgpError::Pgp(format!("not an OpenPGP signature: {}", Chain(&e))))?;
        Ok(DetachedSig(sig))
    }

    /// The issuer fingerprints it names (upper-case hex).
    pub fn issuer_fingerprints(&self) -> Vec<String> {
        self.0.signature.issuer_fingerprint().iter().map(|f| upper_hex(f.as_bytes())).collect()
    }

    /// Its creation time (Unix seconds).
    pub fn created(&self) -> Option<u32> {
        self.0.signature.created().map(|t| t.as_secs())
    }

    /// Verifies it over `data` with the certificate's primary key.
    pub fn verify_with_certificate<R: Read>(&self, cert: &Certificate, data: R) -> Result<(), OpenPgpError> {
        self.0
            .signature
            .verify(&cert.0.primary_key, data)
            .map_err(|e| OpenPgpError::Pgp(Chain(&e).to_string()))
    }

    /// Verifies it over `data` with a token key version.
    pub fn verify_with_key<R: Read>(&self, key: &TokenKey, data: R) -> Result<(), OpenPgpError> {
        self.0.signature.verify(&key.public_key, data).map_err(|e| OpenPgpError::Pgp(Chain(&e).to_string()))
    }
}

/// Whether `bytes` start (after blank space) with an ASCII armor line.
pub fn looks_armored(bytes: &[u8]) -> bool {
    let start = bytes.iter().position(|b| !b.is_ascii_whitespace()).unwrap_or(bytes.len());
    bytes[start..].starts_with(b"-----BEGIN PGP ")
}

/// Whether `bytes` look like an OpenPGP signature (armored, or a binary signature packet).
pub fn looks_like_signature(bytes: &[u8]) -> bool {
    let start = bytes.iter().position(|b| !b.is_ascii_whitespace()).unwrap_or(bytes.len());
    bytes[start..].starts_with(b"-----BEGIN PGP SIGNATURE-----")
        // Old-format (0x88..=0x8b) or new-format (0xc2) signature packet tag.
        || matches!(bytes.first(), Some(0x88..=0x8b | 0xc2))
}

#[cfg(test)]
mod tests {
    use super::*;
    use p256::ecdsa::signature::hazmat::PrehashSigner;
    use p256::pkcs8::EncodePublicKey as _;

    fn p256_key() -> (p256::ecdsa::SigningKey, TokenKey) {
        let sk = p256::ecdsa::SigningKey::from_slice(&[7u8; 32]).unwrap();
        let spki = sk.verifying_key().to_public_key_der().unwrap();
        let key = TokenKey::from_spki("k1", 1, Algorithm::EcdsaP256, spki.as_bytes(), 1_700_000_000).unwrap();
        (sk, key)
    }

    fn ed_key() -> (ed25519_dalek_2::SigningKey, TokenKey) {
        let sk = ed25519_dalek_2::SigningKey::from_bytes(&[9u8; 32]);
        // SubjectPublicKeyInfo of id-Ed25519 (RFC 8410): fixed 12-byte prefix, then the key.
        let mut spki = vec![0x30, 0x2a, 0x30, 0x05, 0x06, 0x03, 0x2b, 0x65, 0x70, 0x03, 0x21, 0x00];
        spki.extend_from_slice(sk.verifying_key().as_bytes());
        let key = TokenKey::from_spki("k2", 3, Algorithm::Ed25519, &spki, 1_700_000_000).unwrap();
        (sk, key)
    }

    fn p256_signer(
        sk: &p256::ecdsa::SigningKey,
        version: u32,
    ) -> impl FnMut(&[u8]) -> Result<RawSignature, Error> + '_ {
        move |digest| {
            let sig: p256::ecdsa::Signature = sk.sign_prehash(digest).unwrap();
            Ok(RawSignature { signature: sig.to_der().as_bytes().to_vec(), key_version: version })
        }
    }

    fn ed_signer(sk: &ed25519_dalek_2::SigningKey) -> impl FnMut(&[u8]) -> Result<RawSignature, Error> + '_ {
        use ed25519_dalek_2::Signer as _;
        move |msg| Ok(RawSignature { signature: sk.sign(msg).to_bytes().to_vec(), key_version: 3 })
    }

    #[test]
    fn p256_certificate_and_signature_verify_and_tampering_fails() {
        let (sk, key) = p256_key();
        let armored = key.certificate("Release <release@example.com>", p256_signer(&sk, 1)).unwrap();
        assert!(armored.starts_with("-----BEGIN PGP PUBLIC KEY BLOCK-----"));
        let cert = Certificate::parse(armored.as_bytes()).unwrap();
        assert!(cert.is_key(&key));
        assert_eq!(cert.fingerprint_hex(), key.fingerprint_hex());
        assert_eq!(cert.user_ids(), vec!["Release <release@example.com>".to_owned()]);

        let sig = key.sign_detached(&b"artifact"[..], 1_800_000_000, p256_signer(&sk, 1)).unwrap();
        assert!(sig.starts_with("-----BEGIN PGP SIGNATURE-----"));
        let parsed = DetachedSig::parse(sig.as_bytes()).unwrap();
        assert_eq!(parsed.issuer_fingerprints(), vec![key.fingerprint_hex()]);
        assert_eq!(parsed.created(), Some(1_800_000_000));
        parsed.verify_with_certificate(&cert, &b"artifact"[..]).unwrap();
        parsed.verify_with_key(&key, &b"artifact"[..]).unwrap();
        assert!(parsed.verify_with_certificate(&cert, &b"artifacT"[..]).is_err());
    }

    #[test]
    fn ed25519_certificate_and_signature_verify_and_tampering_fails() {
        let (sk, key) = ed_key();
        let armored = key.certificate("Ed <ed@example.com>", ed_signer(&sk)).unwrap();
        let cert = Certificate::parse(armored.as_bytes()).unwrap();
        assert!(cert.is_key(&key));
        let sig = key.sign_detached(&b"data"[..], 1_800_000_000, ed_signer(&sk)).unwrap();
        let parsed = DetachedSig::parse(sig.as_bytes()).unwrap();
        parsed.verify_with_certificate(&cert, &b"data"[..]).unwrap();
        assert!(parsed.verify_with_certificate(&cert, &b"date"[..]).is_err());
    }

    #[test]
    fn a_kept_self_signature_rebuilds_the_certificate_for_its_user_id_only() {
        let (sk, key) = ed_key();
        let mut kept = Vec::new();
        let cert = key
            .certificate("Ed <ed@example.com>", |d| {
                let r = ed_signer(&sk)(d)?;
                kept = r.signature.clone();
                Ok(r)
            })
            .unwrap();
        assert_eq!(key.replay_certificate("Ed <ed@example.com>", &kept).unwrap(), cert);
        assert!(matches!(
            key.replay_certificate("Other <o@example.com>", &kept),
            Err(OpenPgpError::KeptSelfSignatureMismatch { version: 3, .. })
        ));
        assert!(matches!(
            key.replay_certificate("Ed <ed@example.com>", b"short"),
            Err(OpenPgpError::KeptSelfSignatureMismatch { .. })
        ));
    }

    #[test]
    fn fingerprint_depends_on_the_creation_time_only_through_the_version_date() {
        let (sk, a) = p256_key();
        let spki = sk.verifying_key().to_public_key_der().unwrap();
        let b = TokenKey::from_spki("k1", 1, Algorithm::EcdsaP256, spki.as_bytes(), 1_700_000_000).unwrap();
        let c = TokenKey::from_spki("k1", 1, Algorithm::EcdsaP256, spki.as_bytes(), 1_700_000_001).unwrap();
        assert_eq!(a.fingerprint_hex(), b.fingerprint_hex());
        assert_ne!(a.fingerprint_hex(), c.fingerprint_hex());
        assert_eq!(a.fingerprint_hex().len(), 40);
    }

    #[test]
    fn a_signature_of_another_key_does_not_verify() {
        let (sk, key) = p256_key();
        let (ed_sk, ed) = ed_key();
        let cert =
            Certificate::parse(key.certificate("A <a@x>", p256_signer(&sk, 1)).unwrap().as_bytes()).unwrap();
        let sig = ed.sign_detached(&b"x"[..], 1_800_000_000, ed_signer(&ed_sk)).unwrap();
        assert!(DetachedSig::parse(sig.as_bytes())
            .unwrap()
            .verify_with_certificate(&cert, &b"x"[..])
            .is_err());
    }

    #[test]
    fn a_token_error_comes_back_typed() {
        let (_, key) = p256_key();
        let err = key
            .sign_detached(&b"x"[..], 1, |_: &[u8]| {
                Err(Error::Token { code: pkms_protocol::ErrorCode::Disabled, message: "off".into() })
            })
            .unwrap_err();
        assert!(
            matches!(err.client_error(), Some(Error::Token { code: pkms_protocol::ErrorCode::Disabled, .. })),
            "{err:?}"
        );
    }

    #[test]
    fn a_signature_of_another_version_is_refused() {
        let (sk, key) = p256_key();
        let err = key.sign_detached(&b"x"[..], 1, p256_signer(&sk, 2)).unwrap_err();
        assert!(matches!(err, OpenPgpError::VersionChanged { expected: 1, signed: 2 }), "{err:?}");
    }

    #[test]
    fn bad_user_ids_are_refused() {
        for bad in ["", "   ", "a\nb", "tab\there", "nul\0"] {
            assert!(matches!(check_user_id(bad), Err(OpenPgpError::BadUserId(_))), "{bad:?}");
        }
        assert!(check_user_id(&"x".repeat(MAX_USER_ID + 1)).is_err());
        check_user_id("Émile <e@example.com>").unwrap();
    }

    #[test]
    fn only_p256_and_ed25519_signing_keys_map() {
        for spec in KeySpec::ALL {
            for usage in [KeyUsage::SignVerify, KeyUsage::KeyAgreement, KeyUsage::EncryptDecrypt] {
                let expect = match (spec, usage) {
                    (KeySpec::EccNistP256, KeyUsage::SignVerify) => Some(Algorithm::EcdsaP256),
                    (KeySpec::EccNistEdwards25519, KeyUsage::SignVerify) => Some(Algorithm::Ed25519),
                    _ => None,
                };
                assert_eq!(Algorithm::for_key(*spec, usage), expect, "{spec} {usage}");
            }
        }
    }

    #[test]
    fn a_public_key_of_the_wrong_kind_is_refused() {
        let (sk, _) = p256_key();
        let spki = sk.verifying_key().to_public_key_der().unwrap();
        assert!(matches!(
            TokenKey::from_spki("k", 1, Algorithm::Ed25519, spki.as_bytes(), 1),
            Err(OpenPgpError::PublicKey(_))
        ));
        assert!(matches!(
            TokenKey::from_spki("k", 1, Algorithm::EcdsaP256, b"junk", 1),
            Err(OpenPgpError::PublicKey(_))
        ));
        assert!(matches!(
            TokenKey::from_spki("k", 1, Algorithm::EcdsaP256, spki.as_bytes(), 1 << 40),
            Err(OpenPgpError::Timestamp(_))
        ));
    }

    fn token_with(spec: KeySpec) -> (Client, String) {
        let mut client = Client::connect(crate::inprocess::InProcessToken::ephemeral()).unwrap();
        let params = crate::model::CreateKeyParams {
            key_spec: spec,
            key_usage: Some(KeyUsage::SignVerify),
            ..Default::default()
        };
        let key = client.create_key(&params).unwrap().key_id.to_string();
        (client, key)
    }

    #[test]
    fn a_token_key_loads_with_its_version_date_and_signs_on_the_token() {
        for spec in [KeySpec::EccNistP256, KeySpec::EccNistEdwards25519] {
            let (mut client, key_id) = token_with(spec);
            let created = client.describe_key(&key_id).unwrap().creation_date;
            let v1 = TokenKey::load(&mut client, &key_id, None).unwrap();
            assert_eq!((v1.key_version, v1.newest_version, u64::from(v1.created())), (1, 1, created));
            for bad in [0, 2] {
                assert!(
                    matches!(
                        TokenKey::load(&mut client, &key_id, Some(bad)),
                        Err(OpenPgpError::NoSuchVersion { version, oldest: 1, newest: 1, .. }) if version == bad
                    ),
                    "{spec} version {bad}"
                );
            }
            let alg = v1.algorithm;
            let sig = v1.sign_detached(&b"on the token"[..], 1_800_000_000, |d| {
                token_sign(&mut client, &key_id, alg, d)
            });
            let sig = DetachedSig::parse(sig.unwrap().as_bytes()).unwrap();
            sig.verify_with_key(&v1, &b"on the token"[..]).unwrap();
            assert!(sig.verify_with_key(&v1, &b"on the tokem"[..]).is_err());

            // Signing keys rotate only when tagged to (KMS refuses their rotation outright).
            let allow = crate::model::Tag::new(pkms_protocol::ALLOW_SIGNING_KEY_ROTATION_TAG, "true");
            client.tag_resource(&key_id, &[allow]).unwrap();
            client.rotate_key_on_demand(&key_id).unwrap();
            let old = TokenKey::load(&mut client, &key_id, Some(1)).unwrap();
            assert_eq!((old.key_version, old.newest_version), (1, 2));
            assert_eq!(old.fingerprint_hex(), v1.fingerprint_hex());
            let v2 = TokenKey::load(&mut client, &key_id, None).unwrap();
            assert_eq!((v2.key_version, v2.newest_version), (2, 2));
            assert_ne!(v2.fingerprint_hex(), v1.fingerprint_hex());
            let date = client.list_all_key_rotations(&key_id).unwrap()[1].rotation_date;
            assert_eq!(u64::from(v2.created()), date);
            // The token signs with version 2 now: a version 1 signature is refused.
            let err =
                v1.sign_detached(&b"x"[..], 1, |d| token_sign(&mut client, &key_id, alg, d)).unwrap_err();
            assert!(matches!(err, OpenPgpError::VersionChanged { expected: 1, signed: 2 }), "{err:?}");
        }
    }

    #[test]
    fn a_key_of_another_spec_or_usage_is_refused_by_name() {
        let (mut client, key_id) = token_with(KeySpec::MlDsa44);
        let err = TokenKey::load(&mut client, &key_id, None).unwrap_err();
        assert!(matches!(
            err,
            OpenPgpError::WrongKey { spec: KeySpec::MlDsa44, usage: KeyUsage::SignVerify, .. }
        ));
        assert!(err.to_string().contains("is a ML_DSA_44 SIGN_VERIFY key"), "{err}");
        let (_, key) = p256_key();
        let e = TokenKey::from_spki("k", 1, Algorithm::Ed25519, b"junk", 1).unwrap_err();
        assert_eq!(
            e.to_string(),
            "the token's public key is not a valid ECC_NIST_EDWARDS25519 SubjectPublicKeyInfo"
        );
        let e = TokenKey::from_spki("k", 1, Algorithm::EcdsaP256, b"junk", 1).unwrap_err();
        assert!(e.to_string().contains("valid ECC_NIST_P256 "), "{e}");
        let (_, ed) = ed_key();
        let cert =
            Certificate::parse(key.certificate("A <a@x>", p256_signer(&p256_key().0, 1)).unwrap().as_bytes())
                .unwrap();
        assert!(cert.is_key(&key) && !cert.is_key(&ed));
    }

    #[test]
    fn the_kept_self_signature_tag_names_the_version() {
        assert_eq!(self_signature_tag(3), "pkms:openpgp:v3");
        assert_eq!(self_signature_tag(12), "pkms:openpgp:v12");
    }

    #[test]
    fn user_ids_up_to_the_limit_are_taken() {
        check_user_id(&"x".repeat(MAX_USER_ID)).unwrap();
        assert!(check_user_id(&"x".repeat(MAX_USER_ID + 1)).is_err());
    }

    #[test]
    fn binary_certificates_and_signatures_parse_too() {
        use pgp::ser::Serialize as _;
        let (sk, key) = p256_key();
        let armored = key.certificate("B <b@x>", p256_signer(&sk, 1)).unwrap();
        let binary = SignedPublicKey::from_armor_single(armored.as_bytes()).unwrap().0.to_bytes().unwrap();
        assert!(!looks_armored(&binary));
        let cert = Certificate::parse(&binary).unwrap();
        assert!(cert.is_key(&key));
        let sig = key.sign_detached(&b"b"[..], 1_800_000_000, p256_signer(&sk, 1)).unwrap();
        let sig_binary = DetachedSignature::from_armor_single(sig.as_bytes()).unwrap().0.to_bytes().unwrap();
        assert!(looks_like_signature(&sig_binary) && !looks_armored(&sig_binary));
        DetachedSig::parse(&sig_binary).unwrap().verify_with_certificate(&cert, &b"b"[..]).unwrap();
    }

    #[test]
    fn signature_detection() {
        assert!(looks_like_signature(b"\n-----BEGIN PGP SIGNATURE-----\n"));
        assert!(!looks_like_signature(b"0E\x02\x21"));
        assert!(!looks_like_signature(b"-----BEGIN SSH SIGNATURE-----"));
    }
}
