//! The operations: each KMS request body parsed into its input type (serde, KMS's field names;
//! a body that is not the right JSON is a SerializationException, a missing or out-of-range
//! field a ValidationException), KeyIds resolved as KMS takes them ([`keyref`]), the call made
//! on the token, and the reply written with the model types of [`pkms_lib::model`] in KMS's
//! wire style (epoch dates, key ARNs).

use std::collections::BTreeMap;

use base64::Engine as _;
use pkms_lib::model::encoding::{with_style, ArnScope, Style};
use pkms_lib::model::{
    CreateKeyParams, DataKeySize, DeletionCancelled, DescribeKeyOutput, GetKeyPolicyOutput, Grant,
    GrantListEntry, IncludeKeyMaterial, KeyMetadata, ListGrantsOutput, ListResourceTagsOutput,
    PolicyDocument, Tag,
};
use pkms_protocol::{
    DataKeyPairSpec, DataKeySpec, EncapsulationAlgorithm, KeyAgreementAlgorithm, KeySpec, KeyUsage,
    MacAlgorithm, MessageType, SigningAlgorithm,
};
use serde::de::DeserializeOwned;
use serde::{Deserialize, Deserializer, Serialize};
use zeroize::Zeroizing;

use super::errors::ApiError;
use super::token::Token;
use crate::cli::policy::{grant_operation, policy_from_json};
use crate::keyref::{resolve, KeyRef};

/// What every operation needs: the token and where ARNs point.
pub struct Service {
    /// The token.
    pub token: Token,
    /// Region and account of ARNs.
    pub scope: ArnScope,
}

/// A blob: base64 text on the wire; wiped when dropped.
#[derive(Default)]
pub struct Blob(pub Zeroizing<Vec<u8>>);

impl<'de> Deserialize<'de> for Blob {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Blob, D::Error> {
        let text = Zeroizing::new(String::deserialize(d)?);
        base64::engine::general_purpose::STANDARD
            .decode(text.as_bytes())
            .map(|b| Blob(Zeroizing::new(b)))
            .map_err(|_| serde::de::Error::custom("a blob is not valid base64"))
    }
}

type Context = Option<BTreeMap<String, String>>;

fn pairs(ctx: &Context) -> Vec<(String, String)> {
    ctx.as_ref().map(|m| m.iter().map(|(k, v)| (k.clone(), v.clone())).collect()).unwrap_or_default()
}

fn missing(member: &str) -> ApiError {
    ApiError::validation(format!(
        "1 validation error detected: Value null at '{member}' failed to satisfy constraint: Member must not be null"
    ))
}

fn required<T>(value: Option<T>, member: &str) -> Result<T, ApiError> {
    value.ok_or_else(|| missing(member))
}

fn check_len(len: usize, min: usize, max: usize, member: &str) -> Result<(), ApiError> {
    if len < min || len > max {
        return Err(ApiError::validation(format!(
            "1 validation error detected: Value at '{member}' failed to satisfy constraint: Member must have length \
             between {min} and {max}"
        )));
    }
    Ok(())
}

fn check_range(value: Option<i64>, min: i64, max: i64, member: &str) -> Result<Option<u16>, ApiError> {
    match value {
        None => Ok(None),
        Some(v) if (min..=max).contains(&v) => Ok(u16::try_from(v).ok()),
        Some(v) => Err(ApiError::validation(format!(
            "1 validation error detected: Value '{v}' at '{member}' failed to satisfy constraint: Member must have \
             value between {min} and {max}"
        ))),
    }
}

fn parse_enum<T: std::str::FromStr>(value: &str, member: &str, allowed: &str) -> Result<T, ApiError> {
    value.parse().map_err(|_| {
        ApiError::validation(format!(
            "1 validation error detected: Value '{value}' at '{member}' failed to satisfy constraint: Member must \
             satisfy enum value set: [{allowed}]"
        ))
    })
}

fn input<T: DeserializeOwned>(body: &[u8]) -> Result<T, ApiError> {
    let body = if body.iter().all(u8::is_ascii_whitespace) { b"{}".as_slice() } else { body };
    serde_json::from_slice(body).map_err(|e| ApiError::new("SerializationException", format!("{e}")))
}

/// The reply body: `out` in KMS's wire style.
fn reply<T: Serialize>(scope: &ArnScope, out: &T) -> Result<Vec<u8>, ApiError> {
    let style = Style::wire(scope.clone());
    with_style(&style, || serde_json::to_vec(out))
        .map_err(|e| ApiError::new("KMSInternalException", format!("cannot write the reply: {e}")))
}

#[derive(Serialize)]
struct Empty {}

fn metadata_reply(scope: &ArnScope, key_metadata: KeyMetadata) -> Result<Vec<u8>, ApiError> {
    reply(scope, &DescribeKeyOutput { key_metadata })
}

/// The key specs CreateKey accepts, as its errors list them.
const KEY_SPECS: &str = "SYMMETRIC_DEFAULT, ECC_NIST_P256, ECC_NIST_P384, ECC_SECG_P256K1, ECC_NIST_EDWARDS25519, HMAC_256, HMAC_384, HMAC_512, ML_DSA_44, ML_DSA_65, ML_DSA_87, ML_KEM_512, ML_KEM_768, ML_KEM_1024";

/// The operations served, in KMS's names (and the one extension, RetireKeyVersions).
pub const SERVED: &[&str] = &[
    "CreateKey",
    "DescribeKey",
    "ListKeys",
    "UpdateKeyDescription",
    "Encrypt",
    "Decrypt",
    "ReEncrypt",
    "GenerateDataKey",
    "GenerateDataKeyWithoutPlaintext",
    "GenerateRandom",
    "EnableKeyRotation",
    "DisableKeyRotation",
    "GetKeyRotationStatus",
    "RotateKeyOnDemand",
    "ListKeyRotations",
    "RetireKeyVersions",
    "Sign",
    "Verify",
    "GetPublicKey",
    "DeriveSharedSecret",
    "Encapsulate",
    "Decapsulate",
    "GenerateDataKeyPair",
    "GenerateDataKeyPairWithoutPlaintext",
    "GenerateMac",
    "VerifyMac",
    "EnableKey",
    "DisableKey",
    "ScheduleKeyDeletion",
    "CancelKeyDeletion",
    "CreateAlias",
    "UpdateAlias",
    "DeleteAlias",
    "ListAliases",
    "TagResource",
    "UntagResource",
    "ListResourceTags",
    "GetKeyPolicy",
    "PutKeyPolicy",
    "ListKeyPolicies",
    "CreateGrant",
    "ListGrants",
    "ListRetirableGrants",
    "RetireGrant",
    "RevokeGrant",
];

/// KMS operations Pocket KMS does not serve, with what it offers instead.
pub fn unsupported(op: &str) -> Option<&'static str> {
    Some(match op {
        "GetParametersForImport" | "ImportKeyMaterial" | "DeleteImportedKeyMaterial" => {
            "Pocket KMS does not import key material: keys are generated on the token (Origin AWS_KMS)"
        }
        "CreateCustomKeyStore"
        | "ConnectCustomKeyStore"
        | "DeleteCustomKeyStore"
        | "DescribeCustomKeyStores"
        | "DisconnectCustomKeyStore"
        | "UpdateCustomKeyStore" => "Pocket KMS has no custom key stores: the token itself is the key store",
        "ReplicateKey" | "UpdatePrimaryRegion" => {
            "Pocket KMS has no multi-Region keys: a key lives on one token"
        }
        "GetKeyLastUsage" => "Pocket KMS records key use in its signed audit log: `pkms audit export`",
        _ => return None,
    })
}

/// Runs `op` with `body` for `principal`; the reply body or the error.
pub fn handle(svc: &Service, op: &str, body: &[u8], principal: Option<&str>) -> Result<Vec<u8>, ApiError> {
    let scope = &svc.scope;
    let key = |input: &str| resolve(scope, input, KeyRef::of(op));
    match op {
        "CreateKey" => {
            #[derive(Deserialize)]
            #[serde(rename_all = "PascalCase")]
            struct In {
                description: Option<String>,
                key_usage: Option<String>,
                key_spec: Option<String>,
                customer_master_key_spec: Option<String>,
                origin: Option<String>,
                custom_key_store_id: Option<String>,
                tags: Option<Vec<TagIn>>,
                multi_region: Option<bool>,
                policy: Option<String>,
                #[serde(rename = "XksKeyId")]
                xks_key_id: Option<String>,
            }
            let i: In = input(body)?;
            if i.origin.as_deref().is_some_and(|o| o != "AWS_KMS") {
                return Err(ApiError::new(
                    "UnsupportedOperationException",
                    "Pocket KMS generates every key on the token: only Origin AWS_KMS",
                ));
            }
            if i.custom_key_store_id.is_some() || i.xks_key_id.is_some() {
                return Err(ApiError::new(
                    "UnsupportedOperationException",
                    "Pocket KMS has no custom key stores",
                ));
            }
            if i.multi_region == Some(true) {
                return Err(ApiError::new(
                    "UnsupportedOperationException",
                    "Pocket KMS has no multi-Region keys",
                ));
            }
            let spec_text = i.key_spec.or(i.customer_master_key_spec);
            let key_spec = match spec_text.as_deref() {
                None => KeySpec::SymmetricDefault,
                Some(s) => parse_enum::<KeySpec>(s, "keySpec", KEY_SPECS)
                    .map_err(|_| {
                        ApiError::new(
                            "UnsupportedOperationException",
                            format!("KeySpec {s} is not available on Pocket KMS (RSA, SM2, ECC_NIST_P521 and HMAC_224 are not on the token): {KEY_SPECS}"),
                        )
                    })?,
            };
            let key_usage = i
                .key_usage
                .as_deref()
                .map(|u| {
                    parse_enum::<KeyUsage>(
                        u,
                        "keyUsage",
                        "ENCRYPT_DECRYPT, SIGN_VERIFY, GENERATE_VERIFY_MAC, KEY_AGREEMENT, ENCAPSULATE_DECAPSULATE",
                    )
                })
                .transpose()?;
            let description = i.description.unwrap_or_default();
            check_len(description.len(), 0, 8192, "description")?;
            let tags =
                i.tags.unwrap_or_default().into_iter().map(TagIn::into_tag).collect::<Result<Vec<_>, _>>()?;
            let policy = i
                .policy
                .map(|p| {
                    policy_from_json(&p).map_err(|m| ApiError::new("MalformedPolicyDocumentException", m))
                })
                .transpose()?;
            let params =
                CreateKeyParams { key_spec, key_usage, description, tags, user_presence_required: false };
            svc.token.run(principal, |c| {
                let meta = c.create_key(&params)?;
                if let Some(p) = &policy {
                    c.put_key_policy(&meta.key_id.to_string(), p)?;
                }
                metadata_reply(scope, meta)
            })
        }
        "DescribeKey" => {
            let i: KeyIdIn = input(body)?;
            let k = key(&required(i.key_id, "keyId")?)?;
            svc.token.run(principal, |c| metadata_reply(scope, c.describe_key(&k)?))
        }
        "ListKeys" => {
            let i: PageIn = input(body)?;
            let limit = check_range(i.limit, 1, 1000, "limit")?;
            svc.token.run(principal, |c| reply(scope, &c.list_keys(limit, i.marker.as_deref())?))
        }
        "UpdateKeyDescription" => {
            #[derive(Deserialize)]
            #[serde(rename_all = "PascalCase")]
            struct In {
                key_id: Option<String>,
                description: Option<String>,
            }
            let i: In = input(body)?;
            let k = key(&required(i.key_id, "keyId")?)?;
            let d = required(i.description, "description")?;
            check_len(d.len(), 0, 8192, "description")?;
            svc.token.run(principal, |c| {
                c.update_key_description(&k, &d)?;
                reply(scope, &Empty {})
            })
        }
        "Encrypt" => {
            #[derive(Deserialize)]
            #[serde(rename_all = "PascalCase")]
            struct In {
                key_id: Option<String>,
                plaintext: Option<Blob>,
                encryption_context: Context,
                encryption_algorithm: Option<String>,
            }
            let i: In = input(body)?;
            let k = key(&required(i.key_id, "keyId")?)?;
            let p = required(i.plaintext, "plaintext")?;
            check_len(p.0.len(), 1, 4096, "plaintext")?;
            symmetric_only(i.encryption_algorithm.as_deref())?;
            let ctx = pairs(&i.encryption_context);
            svc.token.run(principal, |c| reply(scope, &c.encrypt(&k, &p.0, &ctx)?))
        }
        "Decrypt" => {
            #[derive(Deserialize)]
            #[serde(rename_all = "PascalCase")]
            struct In {
                ciphertext_blob: Option<Blob>,
                encryption_context: Context,
                key_id: Option<String>,
                encryption_algorithm: Option<String>,
            }
            let i: In = input(body)?;
            let blob = required(i.ciphertext_blob, "ciphertextBlob")?;
            check_len(blob.0.len(), 1, 6144, "ciphertextBlob")?;
            symmetric_only(i.encryption_algorithm.as_deref())?;
            let k = i.key_id.map(|k| key(&k)).transpose()?;
            let ctx = pairs(&i.encryption_context);
            svc.token.run(principal, |c| reply(scope, &c.decrypt(&blob.0, &ctx, k.as_deref())?))
        }
        "ReEncrypt" => {
            #[derive(Deserialize)]
            #[serde(rename_all = "PascalCase")]
            struct In {
                ciphertext_blob: Option<Blob>,
                source_encryption_context: Context,
                source_key_id: Option<String>,
                destination_key_id: Option<String>,
                destination_encryption_context: Context,
                source_encryption_algorithm: Option<String>,
                destination_encryption_algorithm: Option<String>,
            }
            let i: In = input(body)?;
            let blob = required(i.ciphertext_blob, "ciphertextBlob")?;
            check_len(blob.0.len(), 1, 6144, "ciphertextBlob")?;
            let dest = key(&required(i.destination_key_id, "destinationKeyId")?)?;
            let src = i.source_key_id.map(|k| key(&k)).transpose()?;
            symmetric_only(i.source_encryption_algorithm.as_deref())?;
            symmetric_only(i.destination_encryption_algorithm.as_deref())?;
            let (sc, dc) = (pairs(&i.source_encryption_context), pairs(&i.destination_encryption_context));
            svc.token
                .run(principal, |c| reply(scope, &c.re_encrypt(&blob.0, &sc, src.as_deref(), &dest, &dc)?))
        }
        "GenerateDataKey" | "GenerateDataKeyWithoutPlaintext" => {
            #[derive(Deserialize)]
            #[serde(rename_all = "PascalCase")]
            struct In {
                key_id: Option<String>,
                encryption_context: Context,
                number_of_bytes: Option<i64>,
                key_spec: Option<String>,
            }
            let i: In = input(body)?;
            let k = key(&required(i.key_id, "keyId")?)?;
            let size =
                match (i.key_spec.as_deref(), check_range(i.number_of_bytes, 1, 1024, "numberOfBytes")?) {
                    (Some(s), None) => {
                        DataKeySize::Spec(parse_enum::<DataKeySpec>(s, "keySpec", "AES_256, AES_128")?)
                    }
                    (None, Some(n)) => DataKeySize::Bytes(n),
                    (Some(_), Some(_)) => {
                        return Err(ApiError::validation(
                            "Please specify either number of bytes or key spec, not both.",
                        ))
                    }
                    (None, None) => {
                        return Err(ApiError::validation(
                            "Please specify either number of bytes or key spec.",
                        ))
                    }
                };
            let ctx = pairs(&i.encryption_context);
            if op == "GenerateDataKey" {
                svc.token.run(principal, |c| reply(scope, &c.generate_data_key(&k, &ctx, size)?))
            } else {
                svc.token
                    .run(principal, |c| reply(scope, &c.generate_data_key_without_plaintext(&k, &ctx, size)?))
            }
        }
        "GenerateRandom" => {
            #[derive(Deserialize)]
            #[serde(rename_all = "PascalCase")]
            struct In {
                number_of_bytes: Option<i64>,
                custom_key_store_id: Option<String>,
            }
            let i: In = input(body)?;
            if i.custom_key_store_id.is_some() {
                return Err(ApiError::new(
                    "UnsupportedOperationException",
                    "Pocket KMS has no custom key stores",
                ));
            }
            let n = required(check_range(i.number_of_bytes, 1, 1024, "numberOfBytes")?, "numberOfBytes")?;
            svc.token.run(principal, |c| {
                reply(scope, &pkms_lib::model::GenerateRandomOutput { plaintext: c.generate_random(n)? })
            })
        }
        "EnableKeyRotation" => {
            #[derive(Deserialize)]
            #[serde(rename_all = "PascalCase")]
            struct In {
                key_id: Option<String>,
                rotation_period_in_days: Option<i64>,
            }
            let i: In = input(body)?;
            let k = key(&required(i.key_id, "keyId")?)?;
            let days = check_range(i.rotation_period_in_days, 90, 2560, "rotationPeriodInDays")?;
            svc.token.run(principal, |c| {
                c.enable_key_rotation(&k, days)?;
                reply(scope, &Empty {})
            })
        }
        "DisableKeyRotation"
        | "GetKeyRotationStatus"
        | "RotateKeyOnDemand"
        | "EnableKey"
        | "DisableKey"
        | "CancelKeyDeletion"
        | "ListResourceTags"
        | "ListKeyPolicies" => {
            let i: KeyIdIn = input(body)?;
            let k = key(&required(i.key_id, "keyId")?)?;
            svc.token.run(principal, |c| match op {
                "DisableKeyRotation" => {
                    c.disable_key_rotation(&k)?;
                    reply(scope, &Empty {})
                }
                "GetKeyRotationStatus" => reply(scope, &c.get_key_rotation_status(&k)?),
                "RotateKeyOnDemand" => reply(scope, &c.rotate_key_on_demand(&k)?),
                "EnableKey" => {
                    c.enable_key(&k)?;
                    reply(scope, &Empty {})
                }
                "DisableKey" => {
                    c.disable_key(&k)?;
                    reply(scope, &Empty {})
                }
                "CancelKeyDeletion" => {
                    reply(scope, &DeletionCancelled { key_id: c.cancel_key_deletion(&k)? })
                }
                "ListResourceTags" => {
                    reply(scope, &ListResourceTagsOutput::complete(c.list_resource_tags(&k)?))
                }
                _ => {
                    c.describe_key(&k)?;
                    reply(scope, &PolicyNames { policy_names: vec!["default"], truncated: false })
                }
            })
        }
        "ListKeyRotations" => {
            #[derive(Deserialize)]
            #[serde(rename_all = "PascalCase")]
            struct In {
                key_id: Option<String>,
                include_key_material: Option<String>,
                limit: Option<i64>,
                marker: Option<String>,
            }
            let i: In = input(body)?;
            let k = key(&required(i.key_id, "keyId")?)?;
            let limit = check_range(i.limit, 1, 1000, "limit")?;
            let include = match i.include_key_material.as_deref() {
                None => IncludeKeyMaterial::default(),
                Some(v) => parse_enum::<IncludeKeyMaterial>(
                    v,
                    "includeKeyMaterial",
                    "ALL_KEY_MATERIAL, ROTATIONS_ONLY",
                )?,
            };
            svc.token.run(principal, |c| {
                reply(scope, &c.list_key_rotations(&k, limit, i.marker.as_deref())?.including(include))
            })
        }
        "RetireKeyVersions" => {
            #[derive(Deserialize)]
            #[serde(rename_all = "PascalCase")]
            struct In {
                key_id: Option<String>,
                below_version: Option<u32>,
            }
            let i: In = input(body)?;
            let k = key(&required(i.key_id, "keyId")?)?;
            let below = required(i.below_version, "belowVersion")?;
            svc.token.run(principal, |c| reply(scope, &c.retire_key_versions(&k, below)?))
        }
        "Sign" | "Verify" => {
            #[derive(Deserialize)]
            #[serde(rename_all = "PascalCase")]
            struct In {
                key_id: Option<String>,
                message: Option<Blob>,
                message_type: Option<String>,
                signing_algorithm: Option<String>,
                signature: Option<Blob>,
            }
            let i: In = input(body)?;
            let k = key(&required(i.key_id, "keyId")?)?;
            let m = required(i.message, "message")?;
            check_len(m.0.len(), 1, 4096, "message")?;
            let mt = match i.message_type.as_deref() {
                None => MessageType::Raw,
                Some(t) => parse_enum::<MessageType>(t, "messageType", "RAW, DIGEST, EXTERNAL_MU")?,
            };
            let alg_text = required(i.signing_algorithm, "signingAlgorithm")?;
            let alg = parse_enum::<SigningAlgorithm>(
                &alg_text,
                "signingAlgorithm",
                "ECDSA_SHA_256, ECDSA_SHA_384, ED25519_SHA_512, ED25519_PH_SHA_512, ML_DSA_SHAKE_256",
            )?;
            if op == "Sign" {
                svc.token.run(principal, |c| reply(scope, &c.sign(&k, &m.0, mt, alg)?))
            } else {
                let sig = required(i.signature, "signature")?;
                check_len(sig.0.len(), 1, 6144, "signature")?;
                svc.token.run(principal, |c| reply(scope, &c.verify(&k, &m.0, mt, &sig.0, alg, None)?))
            }
        }
        "GetPublicKey" => {
            let i: KeyIdIn = input(body)?;
            let k = key(&required(i.key_id, "keyId")?)?;
            svc.token.run(principal, |c| reply(scope, &c.get_public_key(&k, None)?))
        }
        "DeriveSharedSecret" => {
            #[derive(Deserialize)]
            #[serde(rename_all = "PascalCase")]
            struct In {
                key_id: Option<String>,
                key_agreement_algorithm: Option<String>,
                public_key: Option<Blob>,
            }
            let i: In = input(body)?;
            let k = key(&required(i.key_id, "keyId")?)?;
            let alg_text = required(i.key_agreement_algorithm, "keyAgreementAlgorithm")?;
            let alg = parse_enum::<KeyAgreementAlgorithm>(&alg_text, "keyAgreementAlgorithm", "ECDH")?;
            let peer = required(i.public_key, "publicKey")?;
            check_len(peer.0.len(), 1, 8192, "publicKey")?;
            svc.token.run(principal, |c| reply(scope, &c.derive_shared_secret(&k, alg, &peer.0)?))
        }
        "Encapsulate" | "Decapsulate" => {
            #[derive(Deserialize)]
            #[serde(rename_all = "PascalCase")]
            struct In {
                key_id: Option<String>,
                encapsulation_algorithm: Option<String>,
                shared_secret_ciphertext_blob: Option<Blob>,
            }
            let i: In = input(body)?;
            let k = key(&required(i.key_id, "keyId")?)?;
            let alg_text = required(i.encapsulation_algorithm, "encapsulationAlgorithm")?;
            let alg = parse_enum::<EncapsulationAlgorithm>(&alg_text, "encapsulationAlgorithm", "ML_KEM")?;
            if op == "Encapsulate" {
                svc.token.run(principal, |c| reply(scope, &c.encapsulate(&k, alg)?))
            } else {
                let ct = required(i.shared_secret_ciphertext_blob, "sharedSecretCiphertextBlob")?;
                check_len(ct.0.len(), 1, 6144, "sharedSecretCiphertextBlob")?;
                svc.token.run(principal, |c| reply(scope, &c.decapsulate(&k, &ct.0, alg, None)?))
            }
        }
        "GenerateDataKeyPair" | "GenerateDataKeyPairWithoutPlaintext" => {
            #[derive(Deserialize)]
            #[serde(rename_all = "PascalCase")]
            struct In {
                key_id: Option<String>,
                encryption_context: Context,
                key_pair_spec: Option<String>,
            }
            let i: In = input(body)?;
            let k = key(&required(i.key_id, "keyId")?)?;
            let spec_text = required(i.key_pair_spec, "keyPairSpec")?;
            let spec = parse_enum::<DataKeyPairSpec>(
                &spec_text,
                "keyPairSpec",
                "ECC_NIST_P256, ECC_NIST_P384, ECC_SECG_P256K1, ECC_NIST_EDWARDS25519, ML_KEM_512, ML_KEM_768, ML_KEM_1024",
            )?;
            let ctx = pairs(&i.encryption_context);
            let with_plaintext = op == "GenerateDataKeyPair";
            svc.token
                .run(principal, |c| reply(scope, &c.generate_data_key_pair(&k, &ctx, spec, with_plaintext)?))
        }
        "GenerateMac" | "VerifyMac" => {
            #[derive(Deserialize)]
            #[serde(rename_all = "PascalCase")]
            struct In {
                key_id: Option<String>,
                message: Option<Blob>,
                mac_algorithm: Option<String>,
                mac: Option<Blob>,
            }
            let i: In = input(body)?;
            let k = key(&required(i.key_id, "keyId")?)?;
            let m = required(i.message, "message")?;
            check_len(m.0.len(), 1, 4096, "message")?;
            let alg_text = required(i.mac_algorithm, "macAlgorithm")?;
            let alg = parse_enum::<MacAlgorithm>(
                &alg_text,
                "macAlgorithm",
                "HMAC_SHA_256, HMAC_SHA_384, HMAC_SHA_512",
            )?;
            if op == "GenerateMac" {
                svc.token.run(principal, |c| reply(scope, &c.generate_mac(&k, &m.0, alg)?))
            } else {
                let mac = required(i.mac, "mac")?;
                check_len(mac.0.len(), 1, 6144, "mac")?;
                svc.token.run(principal, |c| reply(scope, &c.verify_mac(&k, &m.0, alg, &mac.0, None)?))
            }
        }
        "ScheduleKeyDeletion" => {
            #[derive(Deserialize)]
            #[serde(rename_all = "PascalCase")]
            struct In {
                key_id: Option<String>,
                pending_window_in_days: Option<i64>,
            }
            let i: In = input(body)?;
            let k = key(&required(i.key_id, "keyId")?)?;
            let days = check_range(i.pending_window_in_days, 7, 30, "pendingWindowInDays")?;
            svc.token.run(principal, |c| reply(scope, &c.schedule_key_deletion(&k, days)?))
        }
        "CreateAlias" | "UpdateAlias" => {
            #[derive(Deserialize)]
            #[serde(rename_all = "PascalCase")]
            struct In {
                alias_name: Option<String>,
                target_key_id: Option<String>,
            }
            let i: In = input(body)?;
            let a = required(i.alias_name, "aliasName")?;
            check_len(a.len(), 1, 256, "aliasName")?;
            let t = key(&required(i.target_key_id, "targetKeyId")?)?;
            svc.token.run(principal, |c| {
                if op == "CreateAlias" {
                    c.create_alias(&a, &t)?;
                } else {
                    c.update_alias(&a, &t)?;
                }
                reply(scope, &Empty {})
            })
        }
        "DeleteAlias" => {
            #[derive(Deserialize)]
            #[serde(rename_all = "PascalCase")]
            struct In {
                alias_name: Option<String>,
            }
            let i: In = input(body)?;
            let a = required(i.alias_name, "aliasName")?;
            check_len(a.len(), 1, 256, "aliasName")?;
            svc.token.run(principal, |c| {
                c.delete_alias(&a)?;
                reply(scope, &Empty {})
            })
        }
        "ListAliases" => {
            #[derive(Deserialize)]
            #[serde(rename_all = "PascalCase")]
            struct In {
                key_id: Option<String>,
                limit: Option<i64>,
                marker: Option<String>,
            }
            let i: In = input(body)?;
            let k = i.key_id.map(|k| key(&k)).transpose()?;
            let limit = check_range(i.limit, 1, 1000, "limit")?;
            svc.token.run(principal, |c| {
                let page = c.list_aliases(k.as_deref(), limit, i.marker.as_deref())?;
                reply(scope, &page)
            })
        }
        "TagResource" => {
            #[derive(Deserialize)]
            #[serde(rename_all = "PascalCase")]
            struct In {
                key_id: Option<String>,
                tags: Option<Vec<TagIn>>,
            }
            let i: In = input(body)?;
            let k = key(&required(i.key_id, "keyId")?)?;
            let tags =
                required(i.tags, "tags")?.into_iter().map(TagIn::into_tag).collect::<Result<Vec<_>, _>>()?;
            svc.token.run(principal, |c| {
                c.tag_resource(&k, &tags)?;
                reply(scope, &Empty {})
            })
        }
        "UntagResource" => {
            #[derive(Deserialize)]
            #[serde(rename_all = "PascalCase")]
            struct In {
                key_id: Option<String>,
                tag_keys: Option<Vec<String>>,
            }
            let i: In = input(body)?;
            let k = key(&required(i.key_id, "keyId")?)?;
            let keys = required(i.tag_keys, "tagKeys")?;
            svc.token.run(principal, |c| {
                c.untag_resource(&k, &keys)?;
                reply(scope, &Empty {})
            })
        }
        "GetKeyPolicy" | "PutKeyPolicy" => {
            #[derive(Deserialize)]
            #[serde(rename_all = "PascalCase")]
            struct In {
                key_id: Option<String>,
                policy_name: Option<String>,
                policy: Option<String>,
            }
            let i: In = input(body)?;
            let k = key(&required(i.key_id, "keyId")?)?;
            if i.policy_name.as_deref().is_some_and(|n| n != "default") {
                return Err(ApiError::new("NotFoundException", "Only the policy name `default` exists"));
            }
            if op == "GetKeyPolicy" {
                svc.token.run(principal, |c| {
                    let (_, bytes) = c.get_key_policy(&k)?;
                    let doc = PolicyDocument::from_compact(&bytes).ok_or_else(|| {
                        ApiError::new("KMSInternalException", "the token sent an unreadable policy")
                    })?;
                    let policy = serde_json::to_string(&doc)
                        .map_err(|e| ApiError::new("KMSInternalException", e.to_string()))?;
                    reply(scope, &GetKeyPolicyOutput { policy, policy_name: "default".to_owned() })
                })
            } else {
                let text = required(i.policy, "policy")?;
                let compact = policy_from_json(&text)
                    .map_err(|m| ApiError::new("MalformedPolicyDocumentException", m))?;
                svc.token.run(principal, |c| {
                    c.put_key_policy(&k, &compact)?;
                    reply(scope, &Empty {})
                })
            }
        }
        "CreateGrant" => {
            #[derive(Deserialize)]
            #[serde(rename_all = "PascalCase")]
            struct In {
                key_id: Option<String>,
                grantee_principal: Option<String>,
                operations: Option<Vec<String>>,
                constraints: Option<ConstraintsIn>,
                name: Option<String>,
            }
            let i: In = input(body)?;
            let k = key(&required(i.key_id, "keyId")?)?;
            let grantee = required(i.grantee_principal, "granteePrincipal")?;
            let mut bits = 0;
            for o in required(i.operations, "operations")? {
                bits |= grant_operation(&o).ok_or_else(|| {
                    ApiError::validation(format!("{o} is not a grant operation Pocket KMS has"))
                })?;
            }
            let constraint = i.constraints.map(ConstraintsIn::into_constraint).transpose()?;
            let name = i.name.unwrap_or_default();
            svc.token.run(principal, |c| {
                let id = c.create_grant(&k, &grantee, bits, constraint.as_ref(), &name)?;
                let key_id = c.describe_key(&k)?.key_id.to_string();
                reply(scope, &pkms_lib::model::CreateGrantOutput::new(&key_id, id))
            })
        }
        "ListGrants" => {
            #[derive(Deserialize)]
            #[serde(rename_all = "PascalCase")]
            struct In {
                key_id: Option<String>,
                grant_id: Option<String>,
                grantee_principal: Option<String>,
                limit: Option<i64>,
            }
            let i: In = input(body)?;
            let k = key(&required(i.key_id, "keyId")?)?;
            check_range(i.limit, 1, 1000, "limit")?;
            svc.token.run(principal, |c| {
                let meta = c.describe_key(&k)?;
                let grants: Vec<Grant> = c
                    .list_grants(&k)?
                    .into_iter()
                    .filter(|g| i.grant_id.as_ref().is_none_or(|id| &g.grant_id == id))
                    .filter(|g| i.grantee_principal.as_ref().is_none_or(|p| &g.grantee == p))
                    .collect();
                reply(scope, &grant_list(&[(meta.key_id, grants)]))
            })
        }
        "ListRetirableGrants" => {
            #[derive(Deserialize)]
            #[serde(rename_all = "PascalCase")]
            struct In {
                retiring_principal: Option<String>,
                limit: Option<i64>,
            }
            let i: In = input(body)?;
            let who = required(i.retiring_principal, "retiringPrincipal")?;
            check_range(i.limit, 1, 1000, "limit")?;
            svc.token.run(principal, |c| {
                let mut all = Vec::new();
                for id in c.list_all_keys()? {
                    let grants: Vec<Grant> = match c.list_grants(&id.to_string()) {
                        Ok(g) => g.into_iter().filter(|g| g.grantee == who).collect(),
                        Err(pkms_lib::Error::Token { .. }) => continue,
                        Err(e) => return Err(e.into()),
                    };
                    if !grants.is_empty() {
                        all.push((id, grants));
                    }
                }
                reply(scope, &grant_list(&all))
            })
        }
        "RetireGrant" | "RevokeGrant" => {
            #[derive(Deserialize)]
            #[serde(rename_all = "PascalCase")]
            struct In {
                key_id: Option<String>,
                grant_id: Option<String>,
                grant_token: Option<String>,
            }
            let i: In = input(body)?;
            let (k, g) = match (i.key_id, i.grant_id, i.grant_token) {
                (Some(k), Some(g), _) => (key(&k)?, g),
                (None, None, Some(t)) if op == "RetireGrant" => parse_grant_token(&t)?,
                (None, _, _) => return Err(missing("keyId")),
                (Some(_), None, _) => return Err(missing("grantId")),
            };
            svc.token.run(principal, |c| {
                if op == "RetireGrant" {
                    c.retire_grant(&k, &g)?;
                } else {
                    c.revoke_grant(&k, &g)?;
                }
                reply(scope, &Empty {})
            })
        }
        other => match unsupported(other) {
            Some(instead) => Err(ApiError::new(
                "UnsupportedOperationException",
                format!("{other} is not supported by Pocket KMS. {instead}."),
            )),
            None => Err(ApiError::new("UnknownOperationException", format!("Unknown operation {other}"))),
        },
    }
}

/// Only SYMMETRIC_DEFAULT (the token's AES-256-GCM).
fn symmetric_only(alg: Option<&str>) -> Result<(), ApiError> {
    match alg {
        None | Some("SYMMETRIC_DEFAULT") => Ok(()),
        Some(a @ ("RSAES_OAEP_SHA_1" | "RSAES_OAEP_SHA_256" | "SM2PKE")) => Err(ApiError::new(
            "InvalidKeyUsageException",
            format!("{a} needs an asymmetric encryption key; Pocket KMS keys encrypt with SYMMETRIC_DEFAULT"),
        )),
        Some(a) => Err(ApiError::validation(format!(
            "1 validation error detected: Value '{a}' at 'encryptionAlgorithm' failed to satisfy constraint: Member \
             must satisfy enum value set: [SYMMETRIC_DEFAULT, RSAES_OAEP_SHA_1, RSAES_OAEP_SHA_256, SM2PKE]"
        ))),
    }
}

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct KeyIdIn {
    key_id: Option<String>,
}

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct PageIn {
    limit: Option<i64>,
    marker: Option<String>,
}

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct TagIn {
    tag_key: Option<String>,
    tag_value: Option<String>,
}

impl TagIn {
    fn into_tag(self) -> Result<Tag, ApiError> {
        let k = required(self.tag_key, "tagKey")?;
        let v = required(self.tag_value, "tagValue")?;
        check_len(k.len(), 1, 128, "tagKey")?;
        check_len(v.len(), 0, 256, "tagValue")?;
        Ok(Tag::new(k, v))
    }
}

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct ConstraintsIn {
    encryption_context_subset: Context,
    encryption_context_equals: Context,
}

impl ConstraintsIn {
    fn into_constraint(self) -> Result<pkms_lib::model::ContextConstraint, ApiError> {
        use pkms_protocol::access::ConditionKind;
        let (kind, map) = match (&self.encryption_context_subset, &self.encryption_context_equals) {
            (Some(_), None) => (ConditionKind::Subset, &self.encryption_context_subset),
            (None, Some(_)) => (ConditionKind::Equals, &self.encryption_context_equals),
            _ => {
                return Err(ApiError::validation(
                    "Constraints take one of EncryptionContextSubset or EncryptionContextEquals",
                ))
            }
        };
        Ok(pkms_lib::model::ContextConstraint { kind, pairs: pairs(map) })
    }
}

#[derive(Serialize)]
#[serde(rename_all = "PascalCase")]
struct PolicyNames {
    policy_names: Vec<&'static str>,
    truncated: bool,
}

fn grant_list(keys: &[(pkms_protocol::KeyId, Vec<Grant>)]) -> ListGrantsOutput {
    let grants = keys
        .iter()
        .flat_map(|(id, gs)| gs.iter().map(move |g| GrantListEntry { key_id: *id, grant: g.clone() }))
        .collect();
    ListGrantsOutput { grants, truncated: false }
}

fn parse_grant_token(token: &str) -> Result<(String, String), ApiError> {
    pkms_lib::model::policy::parse_grant_token(token).ok_or_else(|| {
        ApiError::new("InvalidGrantTokenException", "The grant token is not one this endpoint issued")
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_foreign_grant_token_is_an_invalid_grant_token() {
        assert_eq!(parse_grant_token("0123abcd").unwrap_err().kind, "InvalidGrantTokenException");
    }

    #[test]
    fn every_other_kms_operation_is_unsupported_with_an_alternative() {
        for op in ["ImportKeyMaterial", "CreateCustomKeyStore", "ReplicateKey"] {
            assert!(unsupported(op).is_some(), "{op}");
        }
        for op in SERVED {
            assert!(unsupported(op).is_none(), "{op}");
        }
    }
}
