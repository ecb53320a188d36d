//! The wire bytes of every request and response, frozen: one frame of each operation with fixed
//! contents, encoded (postcard + COBS, as on the link) and compared with
//! `fixtures/golden_frames.txt`. That file was written by this test before the protocol's
//! declarations were restructured; it must never be regenerated to make a change pass — a
//! difference means old hosts and tokens no longer understand each other. Operations added later
//! append their frames (requests after the last request, responses after the last response), so
//! every earlier line keeps its bytes.
//!
//! Each line is `NAME HEX`. On a mismatch the encoded frames are written to
//! `target/golden_frames.actual.txt` for comparison.

use pkms_protocol::access::{AuditFullMode, Condition, ConditionKind, GrantEntry, PrincipalEntry, Role};
use pkms_protocol::framing;
use pkms_protocol::messages::{Request, RequestFrame, Response, ResponseFrame, WireError};
use pkms_protocol::*;
use pkms_protocol::{reply, request};

fn key() -> KeyId {
    KeyId([0x11; 16])
}

fn material() -> KeyMaterialId {
    KeyMaterialId([0x22; 32])
}

fn ctx<'a>() -> context::EncryptionContext<'a> {
    let mut c = context::EncryptionContext::new();
    c.push(("app", "golden")).unwrap();
    c.push(("tier", "1")).unwrap();
    c
}

fn tags<'a>() -> Tags<'a> {
    let mut t = Tags::new();
    t.push(Tag { tag_key: "team", tag_value: "ops" }).unwrap();
    t
}

fn condition<'a>() -> Condition<'a> {
    let mut pairs = heapless::Vec::new();
    pairs.push(("app", "golden")).unwrap();
    Condition { kind: ConditionKind::Subset, pairs }
}

const K: &str = "11111111-1111-1111-1111-111111111111";

/// One request of every operation, in wire order.
fn requests() -> Vec<(&'static str, Request<'static>)> {
    let mut untag = heapless::Vec::new();
    untag.push("team").unwrap();
    vec![
        ("Hello", Request::Hello(request::Hello { protocol_version: PROTOCOL_VERSION })),
        ("GetInfo", Request::GetInfo(request::GetInfo {})),
        ("GenerateRandom", Request::GenerateRandom(request::GenerateRandom { number_of_bytes: 32 })),
        (
            "CreateKey",
            Request::CreateKey(request::CreateKey {
                key_spec: KeySpec::EccNistP256,
                key_usage: Some(KeyUsage::SignVerify),
                description: "golden",
                tags: tags(),
                user_presence_required: true,
            }),
        ),
        ("DescribeKey", Request::DescribeKey(request::DescribeKey { key_id: K })),
        ("ListKeys", Request::ListKeys(request::ListKeys { limit: Some(10), marker: Some("m") })),
        (
            "Encrypt",
            Request::Encrypt(request::Encrypt {
                key_id: "alias/golden",
                plaintext: b"plain",
                encryption_context: ctx(),
            }),
        ),
        (
            "Decrypt",
            Request::Decrypt(request::Decrypt {
                ciphertext_blob: &[1, 2, 3],
                encryption_context: ctx(),
                key_id: Some(K),
            }),
        ),
        (
            "ReEncrypt",
            Request::ReEncrypt(request::ReEncrypt {
                ciphertext_blob: &[4, 5],
                source_encryption_context: ctx(),
                source_key_id: None,
                destination_key_id: K,
                destination_encryption_context: context::EncryptionContext::new(),
            }),
        ),
        (
            "GenerateDataKey",
            Request::GenerateDataKey(request::GenerateDataKey {
                key_id: K,
                encryption_context: ctx(),
                key_spec: Some(DataKeySpec::Aes256),
                number_of_bytes: None,
            }),
        ),
        (
            "GenerateDataKeyWithoutPlaintext",
            Request::GenerateDataKeyWithoutPlaintext(request::GenerateDataKeyWithoutPlaintext {
                key_id: K,
                encryption_context: ctx(),
                key_spec: None,
                number_of_bytes: Some(64),
            }),
        ),
        (
            "EnableKeyRotation",
            Request::EnableKeyRotation(request::EnableKeyRotation {
                key_id: K,
                rotation_period_in_days: Some(90),
            }),
        ),
        ("DisableKeyRotation", Request::DisableKeyRotation(request::DisableKeyRotation { key_id: K })),
        ("GetKeyRotationStatus", Request::GetKeyRotationStatus(request::GetKeyRotationStatus { key_id: K })),
        ("RotateKeyOnDemand", Request::RotateKeyOnDemand(request::RotateKeyOnDemand { key_id: K })),
        (
            "ListKeyRotations",
            Request::ListKeyRotations(request::ListKeyRotations {
                key_id: K,
                limit: None,
                marker: Some("3"),
            }),
        ),
        (
            "RetireKeyVersions",
            Request::RetireKeyVersions(request::RetireKeyVersions { key_id: K, below_version: 3 }),
        ),
        (
            "Sign",
            Request::Sign(request::Sign {
                key_id: K,
                message: &[9; 32],
                message_type: MessageType::Digest,
                signing_algorithm: SigningAlgorithm::EcdsaSha256,
            }),
        ),
        (
            "Verify",
            Request::Verify(request::Verify {
                key_id: K,
                message: b"msg",
                message_type: MessageType::Raw,
                signature: &[0x30, 0x06, 2, 1, 1, 2, 1, 1],
                signing_algorithm: SigningAlgorithm::EcdsaSha256,
                key_version: Some(2),
            }),
        ),
        ("GetPublicKey", Request::GetPublicKey(request::GetPublicKey { key_id: K, key_version: None })),
        (
            "GenerateMac",
            Request::GenerateMac(request::GenerateMac {
                key_id: K,
                message: b"msg",
                mac_algorithm: MacAlgorithm::HmacSha384,
            }),
        ),
        (
            "VerifyMac",
            Request::VerifyMac(request::VerifyMac {
                key_id: K,
                message: b"msg",
                mac_algorithm: MacAlgorithm::HmacSha256,
                mac: &[7; 32],
                key_version: Some(1),
            }),
        ),
        ("EnableKey", Request::EnableKey(request::EnableKey { key_id: K })),
        ("DisableKey", Request::DisableKey(request::DisableKey { key_id: K })),
        (
            "ScheduleKeyDeletion",
            Request::ScheduleKeyDeletion(request::ScheduleKeyDeletion {
                key_id: K,
                pending_window_in_days: Some(7),
            }),
        ),
        ("CancelKeyDeletion", Request::CancelKeyDeletion(request::CancelKeyDeletion { key_id: K })),
        (
            "CreateAlias",
            Request::CreateAlias(request::CreateAlias { alias_name: "alias/golden", target_key_id: K }),
        ),
        (
            "UpdateAlias",
            Request::UpdateAlias(request::UpdateAlias { alias_name: "alias/golden", target_key_id: K }),
        ),
        ("DeleteAlias", Request::DeleteAlias(request::DeleteAlias { alias_name: "alias/golden" })),
        (
            "ListAliases",
            Request::ListAliases(request::ListAliases { key_id: Some(K), limit: Some(5), marker: None }),
        ),
        (
            "UpdateKeyDescription",
            Request::UpdateKeyDescription(request::UpdateKeyDescription { key_id: K, description: "new" }),
        ),
        ("TagResource", Request::TagResource(request::TagResource { key_id: K, tags: tags() })),
        ("UntagResource", Request::UntagResource(request::UntagResource { key_id: K, tag_keys: untag })),
        ("ListResourceTags", Request::ListResourceTags(request::ListResourceTags { key_id: K })),
        (
            "Initialize",
            Request::Initialize(request::Initialize {
                pin: b"123456",
                puk: b"12345678",
                audit_full: AuditFullMode::Refuse,
            }),
        ),
        ("Authenticate", Request::Authenticate(request::Authenticate { principal: "admin", pin: b"123456" })),
        (
            "CreatePrincipal",
            Request::CreatePrincipal(request::CreatePrincipal {
                name: "bob",
                pin: b"654321",
                role: Role::User,
            }),
        ),
        ("DeletePrincipal", Request::DeletePrincipal(request::DeletePrincipal { name: "bob" })),
        ("ListPrincipals", Request::ListPrincipals(request::ListPrincipals {})),
        (
            "UnblockPin",
            Request::UnblockPin(request::UnblockPin {
                principal: "bob",
                puk: b"12345678",
                new_pin: b"111111",
            }),
        ),
        (
            "FactoryReset",
            Request::FactoryReset(request::FactoryReset { confirm: access::FACTORY_RESET_CONFIRMATION }),
        ),
        ("GetAuditCheckpoint", Request::GetAuditCheckpoint(request::GetAuditCheckpoint {})),
        ("ReadAuditLog", Request::ReadAuditLog(request::ReadAuditLog { start_sequence: 300, limit: 40 })),
        ("TrimAuditLog", Request::TrimAuditLog(request::TrimAuditLog { through_sequence: 299 })),
        ("GetKeyPolicy", Request::GetKeyPolicy(request::GetKeyPolicy { key_id: K })),
        (
            "PutKeyPolicy",
            Request::PutKeyPolicy(request::PutKeyPolicy { key_id: K, policy: &[1, 0, 1, 1, b'x', 1, 0] }),
        ),
        (
            "CreateGrant",
            Request::CreateGrant(request::CreateGrant {
                key_id: K,
                grantee: "bob",
                operations: Action::Encrypt.bit() | Action::Decrypt.bit(),
                constraint: Some(condition()),
                name: "g",
            }),
        ),
        ("ListGrants", Request::ListGrants(request::ListGrants { key_id: K })),
        ("RetireGrant", Request::RetireGrant(request::RetireGrant { key_id: K, grant_id: "00ff" })),
        ("RevokeGrant", Request::RevokeGrant(request::RevokeGrant { key_id: K, grant_id: "00ff" })),
        ("GetDeviceKey", Request::GetDeviceKey(request::GetDeviceKey {})),
        (
            "OpenSession",
            Request::OpenSession(request::OpenSession { ephemeral: &[4; 65], payload: &[5; 16] }),
        ),
        (
            "SessionFrame",
            Request::SessionFrame(request::SessionFrame { session_id: 7, counter: 3, sealed: &[6; 20] }),
        ),
        ("CloseSession", Request::CloseSession(request::CloseSession {})),
        ("BackupInit", Request::BackupInit(request::BackupInit { replace: true })),
        (
            "BackupExportBegin",
            Request::BackupExportBegin(request::BackupExportBegin { peer_device_key: Some(&[3; 91]) }),
        ),
        ("BackupExportChunk", Request::BackupExportChunk(request::BackupExportChunk {})),
        (
            "BackupRestoreBegin",
            Request::BackupRestoreBegin(request::BackupRestoreBegin {
                header: &[1; 180],
                secret: Some(&[2; 32]),
            }),
        ),
        (
            "BackupRestoreChunk",
            Request::BackupRestoreChunk(request::BackupRestoreChunk { sealed: &[4; 40], last: true }),
        ),
        (
            "CreateKey.MlKem1024",
            Request::CreateKey(request::CreateKey {
                key_spec: KeySpec::MlKem1024,
                key_usage: Some(KeyUsage::EncapsulateDecapsulate),
                description: "",
                tags: Tags::new(),
                user_presence_required: false,
            }),
        ),
        (
            "Sign.MlDsa",
            Request::Sign(request::Sign {
                key_id: "alias/golden",
                message: &[0x11; 64],
                message_type: MessageType::ExternalMu,
                signing_algorithm: SigningAlgorithm::MlDsaShake256,
            }),
        ),
        (
            "DeriveSharedSecret",
            Request::DeriveSharedSecret(request::DeriveSharedSecret {
                key_id: "alias/golden",
                key_agreement_algorithm: KeyAgreementAlgorithm::Ecdh,
                public_key: &[0x30, 0x59],
            }),
        ),
        (
            "Encapsulate",
            Request::Encapsulate(request::Encapsulate {
                key_id: "alias/golden",
                encapsulation_algorithm: EncapsulationAlgorithm::MlKem,
            }),
        ),
        (
            "Decapsulate",
            Request::Decapsulate(request::Decapsulate {
                key_id: "alias/golden",
                shared_secret_ciphertext_blob: &[0x22; 8],
                encapsulation_algorithm: EncapsulationAlgorithm::MlKem,
                key_version: Some(2),
            }),
        ),
        (
            "GenerateDataKeyPair",
            Request::GenerateDataKeyPair(request::GenerateDataKeyPair {
                key_id: "alias/golden",
                encryption_context: ctx(),
                key_pair_spec: DataKeyPairSpec::EccNistEdwards25519,
            }),
        ),
        (
            "GenerateDataKeyPairWithoutPlaintext",
            Request::GenerateDataKeyPairWithoutPlaintext(request::GenerateDataKeyPairWithoutPlaintext {
                key_id: "alias/golden",
                encryption_context: ctx(),
                key_pair_spec: DataKeyPairSpec::MlKem768,
            }),
        ),
        ("ChangePin", Request::ChangePin(request::ChangePin { pin: b"246810", new_pin: b"13579135" })),
    ]
}

/// One response of every kind, in wire order, and an error.
fn responses() -> Vec<(&'static str, Result<Response<'static>, WireError<'static>>)> {
    let metadata = KeyMetadata {
        key_id: key(),
        creation_date: 1_750_000_000,
        enabled: true,
        description: "golden",
        key_usage: KeyUsage::EncryptDecrypt,
        key_state: KeyState::PendingDeletion,
        key_spec: KeySpec::SymmetricDefault,
        deletion_date: Some(1_760_000_000),
        pending_deletion_window_in_days: Some(7),
        current_key_material_id: material(),
        current_key_version: 3,
        oldest_key_version: 2,
        key_rotation_enabled: true,
        rotation_period_in_days: Some(365),
        next_rotation_date: Some(1_780_000_000),
        user_presence_required: false,
    };
    let mut keys = heapless::Vec::new();
    keys.push(key()).unwrap();
    let mut rotations = heapless::Vec::new();
    rotations
        .push(RotationsListEntry {
            key_id: key(),
            key_material_id: material(),
            key_version: 2,
            key_material_state: KeyMaterialState::Current,
            rotation_date: 1_750_000_100,
            rotation_type: Some(RotationType::OnDemand),
        })
        .unwrap();
    let mut aliases = heapless::Vec::new();
    aliases
        .push(AliasListEntry {
            alias_name: "alias/golden",
            target_key_id: key(),
            creation_date: 1,
            last_updated_date: 2,
        })
        .unwrap();
    let mut principals = heapless::Vec::new();
    principals.push(PrincipalEntry { name: "admin", role: Role::Admin, pin_retries_left: 8 }).unwrap();
    let mut grants = heapless::Vec::new();
    grants
        .push(GrantEntry {
            grant_id: "00ff",
            name: "g",
            grantee: "bob",
            issuer: "admin",
            operations: Action::Sign.bit(),
            constraint: Some(condition()),
            created: 1_750_000_200,
        })
        .unwrap();
    vec![
        (
            "Hello",
            Ok(Response::Hello(reply::Hello {
                protocol_version: PROTOCOL_VERSION,
                firmware_version: "0.1.0",
            })),
        ),
        (
            "Info",
            Ok(Response::Info(reply::Info {
                info: TokenInfo {
                    firmware_version: "0.1.0",
                    protocol_version: PROTOCOL_VERSION,
                    board: "golden-board",
                    platform: Platform::Emulated,
                    entropy_source: "none",
                    key_protection: "none",
                    storage_total_bytes: 1 << 20,
                    storage_free_bytes: 1000,
                    key_count: 3,
                    time_high_water_mark: 1_750_000_000,
                    initialized: true,
                    key_versions_not_backed_up: 5,
                    backup_key: true,
                },
            })),
        ),
        ("Random", Ok(Response::Random(reply::Random { plaintext: &[5; 8] }))),
        ("KeyMetadata", Ok(Response::KeyMetadata(reply::KeyMetadata { key_metadata: metadata }))),
        ("Keys", Ok(Response::Keys(reply::Keys { keys, next_marker: Some("m"), truncated: true }))),
        (
            "Encrypt",
            Ok(Response::Encrypt(reply::Encrypt {
                ciphertext_blob: &[1, 2, 3],
                key_id: key(),
                key_version: 3,
                key_material_id: material(),
            })),
        ),
        (
            "Decrypt",
            Ok(Response::Decrypt(reply::Decrypt {
                plaintext: b"plain",
                key_id: key(),
                key_version: 1,
                key_material_id: material(),
            })),
        ),
        (
            "ReEncrypt",
            Ok(Response::ReEncrypt(reply::ReEncrypt {
                ciphertext_blob: &[4],
                source_key_id: key(),
                key_id: KeyId([0x33; 16]),
                source_key_material_id: material(),
                destination_key_material_id: KeyMaterialId([0x44; 32]),
            })),
        ),
        (
            "DataKey",
            Ok(Response::DataKey(reply::DataKey {
                ciphertext_blob: &[6, 7],
                plaintext: Some(&[8; 32]),
                key_id: key(),
                key_material_id: material(),
            })),
        ),
        ("Done", Ok(Response::Done(reply::Done {}))),
        (
            "KeyRotationStatus",
            Ok(Response::KeyRotationStatus(reply::KeyRotationStatus {
                key_id: key(),
                key_rotation_enabled: true,
                rotation_period_in_days: Some(90),
                next_rotation_date: Some(1_760_000_000),
                on_demand_rotation_start_date: None,
            })),
        ),
        (
            "Rotated",
            Ok(Response::Rotated(reply::Rotated {
                key_id: key(),
                key_version: 4,
                key_material_id: material(),
            })),
        ),
        (
            "Rotations",
            Ok(Response::Rotations(reply::Rotations { rotations, next_marker: None, truncated: false })),
        ),
        (
            "Retired",
            Ok(Response::Retired(reply::Retired { key_id: key(), retired_count: 2, oldest_key_version: 3 })),
        ),
        (
            "Sign",
            Ok(Response::Sign(reply::Sign {
                key_id: key(),
                signature: &[0x30, 0x06, 2, 1, 1, 2, 1, 1],
                signing_algorithm: SigningAlgorithm::EcdsaSha256,
                key_version: 2,
            })),
        ),
        (
            "Verify",
            Ok(Response::Verify(reply::Verify {
                key_id: key(),
                signature_valid: true,
                signing_algorithm: SigningAlgorithm::EcdsaSha256,
                key_version: 2,
            })),
        ),
        (
            "PublicKey",
            Ok(Response::PublicKey(reply::PublicKey {
                key_id: key(),
                public_key: &[0x30, 0x59],
                key_spec: KeySpec::EccNistP256,
                key_usage: KeyUsage::SignVerify,
                key_version: 1,
            })),
        ),
        (
            "Mac",
            Ok(Response::Mac(reply::Mac {
                key_id: key(),
                mac: &[3; 48],
                mac_algorithm: MacAlgorithm::HmacSha384,
                key_version: 1,
            })),
        ),
        (
            "VerifyMac",
            Ok(Response::VerifyMac(reply::VerifyMac {
                key_id: key(),
                mac_valid: true,
                mac_algorithm: MacAlgorithm::HmacSha512,
                key_version: 5,
            })),
        ),
        (
            "DeletionScheduled",
            Ok(Response::DeletionScheduled(reply::DeletionScheduled {
                key_id: key(),
                deletion_date: 1_760_000_000,
                key_state: KeyState::PendingDeletion,
                pending_window_in_days: 7,
            })),
        ),
        ("DeletionCancelled", Ok(Response::DeletionCancelled(reply::DeletionCancelled { key_id: key() }))),
        (
            "Aliases",
            Ok(Response::Aliases(reply::Aliases { aliases, next_marker: Some("x"), truncated: true })),
        ),
        ("Tags", Ok(Response::Tags(reply::Tags { tags: tags() }))),
        ("Principals", Ok(Response::Principals(reply::Principals { principals }))),
        (
            "AuditCheckpoint",
            Ok(Response::AuditCheckpoint(reply::AuditCheckpoint {
                sequence: 300,
                hash: [0x55; 32],
                signature: &[0x30, 0x06, 2, 1, 1, 2, 1, 1],
                first_sequence: 10,
                public_key: &[0x30, 0x59],
                capacity: 256,
                audit_full: AuditFullMode::Overwrite,
                base_signature: &[],
            })),
        ),
        ("AuditEntries", Ok(Response::AuditEntries(reply::AuditEntries { entries: &[0xaa; 20] }))),
        (
            "KeyPolicy",
            Ok(Response::KeyPolicy(reply::KeyPolicy { key_id: key(), policy: &[1, 0, 1, 1, b'x', 1, 0] })),
        ),
        ("Grant", Ok(Response::Grant(reply::Grant { grant_id: "00ff" }))),
        ("Grants", Ok(Response::Grants(reply::Grants { grants }))),
        ("Error", Err(WireError { code: ErrorCode::NotFound, message: "key does not exist" })),
        ("DeviceKey", Ok(Response::DeviceKey(reply::DeviceKey { public_key: &[0x30, 0x59, 0x30, 0x13] }))),
        (
            "SessionOpened",
            Ok(Response::SessionOpened(reply::SessionOpened {
                session_id: 7,
                ephemeral: &[4; 65],
                payload: &[8; 20],
            })),
        ),
        (
            "SessionFrame",
            Ok(Response::SessionFrame(reply::SessionFrame { session_id: 7, counter: 3, sealed: &[9; 20] })),
        ),
        ("SessionEnded", Err(WireError { code: ErrorCode::SessionEnded, message: "the session ended" })),
        ("BackupSecret", Ok(Response::BackupSecret(reply::BackupSecret { secret: &[7; 32] }))),
        ("BackupHeader", Ok(Response::BackupHeader(reply::BackupHeader { header: &[8; 180] }))),
        (
            "BackupChunk",
            Ok(Response::BackupChunk(reply::BackupChunk { sealed: &[9; 40], last: false, records: 12 })),
        ),
        (
            "BackupRestored",
            Ok(Response::BackupRestored(reply::BackupRestored { records: 12, complete: true })),
        ),
        (
            "SharedSecret",
            Ok(Response::SharedSecret(reply::SharedSecret {
                key_id: key(),
                shared_secret: &[0x33; 32],
                key_agreement_algorithm: KeyAgreementAlgorithm::Ecdh,
                key_version: 1,
            })),
        ),
        (
            "Encapsulated",
            Ok(Response::Encapsulated(reply::Encapsulated {
                key_id: key(),
                shared_secret: &[0x44; 32],
                shared_secret_ciphertext_blob: &[0x55; 8],
                encapsulation_algorithm: EncapsulationAlgorithm::MlKem,
                key_version: 2,
            })),
        ),
        (
            "Decapsulated",
            Ok(Response::Decapsulated(reply::Decapsulated {
                key_id: key(),
                shared_secret: &[0x66; 32],
                encapsulation_algorithm: EncapsulationAlgorithm::MlKem,
                key_version: 3,
            })),
        ),
        (
            "DataKeyPair",
            Ok(Response::DataKeyPair(reply::DataKeyPair {
                key_id: key(),
                private_key_ciphertext_blob: &[0x77; 8],
                private_key_plaintext: Some(&[0x88; 4]),
                public_key: &[0x30, 0x2a],
                key_pair_spec: DataKeyPairSpec::EccSecgP256k1,
                key_material_id: material(),
            })),
        ),
    ]
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

fn encode_all() -> String {
    let mut out = String::new();
    let mut buf = vec![0u8; limits::MAX_ENCODED_FRAME];
    for (i, (name, request)) in requests().into_iter().enumerate() {
        let frame = RequestFrame { id: 1000 + i as u32, now: Some(1_750_000_000 + i as u64), request };
        let n = framing::encode(&frame, &mut buf).expect("encode request");
        out.push_str(&format!("request.{name} {}\n", hex(&buf[..n])));
    }
    for (i, (name, result)) in responses().into_iter().enumerate() {
        let frame = ResponseFrame { id: 2000 + i as u32, result };
        let n = framing::encode(&frame, &mut buf).expect("encode response");
        out.push_str(&format!("response.{name} {}\n", hex(&buf[..n])));
    }
    let (frame, status) = login_answer();
    let n = postcard::to_slice(&frame, &mut buf).expect("encode response").len();
    let m = postcard::to_slice(&status, &mut buf[n..]).expect("encode status").len();
    let mut scratch = vec![0u8; limits::MAX_ENCODED_FRAME];
    let len = framing::cobs_frame_via(&mut buf, n + m, &mut scratch).expect("frame");
    out.push_str(&format!("status.Authenticate {}\n", hex(&buf[..len])));
    out
}

/// A successful Authenticate's answer and the audit log status that follows its frame.
fn login_answer() -> (ResponseFrame<'static>, access::AuditLogStatus) {
    let frame = ResponseFrame { id: 3000, result: Ok(Response::Done(reply::Done {})) };
    let status =
        access::AuditLogStatus { entries: 2959, capacity: 3696, room: 737, when_full: AuditFullMode::Refuse };
    (frame, status)
}

#[test]
fn the_frozen_login_answer_gives_its_frame_to_any_host_and_its_status_to_hosts_that_read_it() {
    let frozen = include_str!("fixtures/golden_frames.txt");
    let line = frozen.lines().find(|l| l.starts_with("status.Authenticate ")).expect("frozen");
    let hex = line.split_once(' ').unwrap().1;
    let mut bytes: Vec<u8> =
        (0..hex.len()).step_by(2).map(|i| u8::from_str_radix(&hex[i..i + 2], 16).unwrap()).collect();
    bytes.pop();
    let payload = framing::cobs_decode_in_place(&mut bytes).expect("COBS");
    let (frame, status) = login_answer();
    assert_eq!(framing::decode_response(payload).unwrap(), frame);
    assert_eq!(framing::decode_response_with_status(payload).unwrap(), (frame, Some(status)));
}

#[test]
fn every_frame_encodes_to_its_frozen_bytes() {
    let actual = encode_all();
    let expected = include_str!("fixtures/golden_frames.txt");
    if actual != expected {
        let path = concat!(env!("CARGO_MANIFEST_DIR"), "/../target/golden_frames.actual.txt");
        let _ = std::fs::write(path, &actual);
        for (a, e) in actual.lines().zip(expected.lines()) {
            assert_eq!(a, e, "wire bytes changed (all frames written to {path})");
        }
        assert_eq!(actual.lines().count(), expected.lines().count(), "a frame was added or removed");
    }
}

#[test]
fn every_frozen_request_decodes_back_to_its_operation() {
    let frozen = include_str!("fixtures/golden_frames.txt");
    assert_eq!(frozen.lines().filter(|l| l.starts_with("request.")).count(), requests().len());
    for (line, (name, request)) in frozen.lines().zip(requests()) {
        let (label, hex) = line.split_once(' ').expect("NAME HEX");
        assert_eq!(label, format!("request.{name}"));
        let mut bytes: Vec<u8> =
            (0..hex.len()).step_by(2).map(|i| u8::from_str_radix(&hex[i..i + 2], 16).unwrap()).collect();
        bytes.pop(); // the 0x00 delimiter
        let payload = framing::cobs_decode_in_place(&mut bytes).expect("COBS");
        let frame = framing::decode_request(payload).expect("decodes");
        assert_eq!(frame.request, request, "{name}");
    }
}
