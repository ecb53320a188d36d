//! The KMS JSON of the reply types, to the byte (what `pkms --output json` prints).

use pkms_protocol::access::{ConditionKind, Role};
use pkms_protocol::{KeyId, KeyMaterialId, KeyMaterialState, KeySpec, KeyState, RotationType};
use serde::Serialize;
use zeroize::Zeroizing;

use super::encoding::{with_style, ArnScope, Style};
use super::*;

const KEY: KeyId = KeyId([0x11; 16]);
const KEY_TEXT: &str = "11111111-1111-1111-1111-111111111111";
const KEY_ARN: &str = "arn:aws:kms:us-east-1:111122223333:key/11111111-1111-1111-1111-111111111111";

fn json<T: Serialize>(value: &T) -> String {
    serde_json::to_string(value).unwrap()
}

fn metadata(spec: KeySpec) -> KeyMetadata {
    let wire = pkms_protocol::KeyMetadata {
        key_id: KEY,
        creation_date: 1_764_333_243,
        enabled: true,
        description: "d",
        key_usage: spec.default_usage(),
        key_state: KeyState::Enabled,
        key_spec: spec,
        deletion_date: None,
        pending_deletion_window_in_days: None,
        current_key_material_id: KeyMaterialId([0xab; 32]),
        current_key_version: 2,
        oldest_key_version: 1,
        key_rotation_enabled: false,
        rotation_period_in_days: None,
        next_rotation_date: None,
        user_presence_required: false,
    };
    KeyMetadata::from(&wire)
}

#[test]
fn key_metadata_lists_the_algorithms_of_its_spec_and_leaves_out_absent_fields() {
    let m = metadata(KeySpec::SymmetricDefault);
    let material = "ab".repeat(32);
    let want = [
        format!(r#"{{"KeyMetadata":{{"AWSAccountId":"111122223333","KeyId":"{KEY_TEXT}","Arn":"{KEY_ARN}","#),
        r#""CreationDate":"2025-11-28T12:34:03+00:00","#.to_owned(),
        r#""Enabled":true,"Description":"d","KeyUsage":"ENCRYPT_DECRYPT","KeyState":"Enabled","#.to_owned(),
        r#""Origin":"AWS_KMS","KeyManager":"CUSTOMER","CustomerMasterKeySpec":"SYMMETRIC_DEFAULT","#
            .to_owned(),
        r#""KeySpec":"SYMMETRIC_DEFAULT","EncryptionAlgorithms":["SYMMETRIC_DEFAULT"],"MultiRegion":false,"#
            .to_owned(),
        format!(r#""CurrentKeyMaterialId":"{material}","CurrentKeyVersion":2,"OldestKeyVersion":1,"#),
        r#""KeyRotationEnabled":false,"UserPresenceRequired":false}}"#.to_owned(),
    ];
    assert_eq!(json(&DescribeKeyOutput { key_metadata: m }), want.concat());
    let ecc = serde_json::to_value(metadata(KeySpec::EccNistP256)).unwrap();
    assert_eq!(ecc["SigningAlgorithms"], serde_json::json!(["ECDSA_SHA_256"]));
    assert!(ecc.get("EncryptionAlgorithms").is_none() && ecc.get("MacAlgorithms").is_none());
    for (spec, alg) in [
        (KeySpec::Hmac256, "HMAC_SHA_256"),
        (KeySpec::Hmac384, "HMAC_SHA_384"),
        (KeySpec::Hmac512, "HMAC_SHA_512"),
    ] {
        let v = serde_json::to_value(metadata(spec)).unwrap();
        assert_eq!(v["MacAlgorithms"], serde_json::json!([alg]), "{spec}");
    }
}

#[test]
fn key_metadata_arn_and_account_follow_the_style_and_the_key_id_stays_bare() {
    let scope = ArnScope::new("eu-central-1", "444455556666").unwrap();
    let v =
        with_style(&Style::cli(scope), || serde_json::to_value(metadata(KeySpec::SymmetricDefault)).unwrap());
    assert_eq!(v["KeyId"], KEY_TEXT);
    assert_eq!(v["Arn"], format!("arn:aws:kms:eu-central-1:444455556666:key/{KEY_TEXT}"));
    assert_eq!(v["AWSAccountId"], "444455556666");
    assert_eq!(v["CreationDate"], "2025-11-28T12:34:03+00:00");
}

#[test]
fn pending_deletion_and_rotation_fields_sit_where_kms_puts_them() {
    let mut m = metadata(KeySpec::SymmetricDefault);
    m.key_state = KeyState::PendingDeletion;
    m.deletion_date = Some(0);
    m.pending_deletion_window_in_days = Some(7);
    m.rotation_period_in_days = Some(90);
    m.next_rotation_date = Some(86_400);
    let v = serde_json::to_value(&m).unwrap();
    let names: Vec<&str> = v.as_object().unwrap().keys().map(String::as_str).collect();
    assert_eq!(
        names,
        [
            "AWSAccountId",
            "KeyId",
            "Arn",
            "CreationDate",
            "Enabled",
            "Description",
            "KeyUsage",
            "KeyState",
            "DeletionDate",
            "Origin",
            "KeyManager",
            "CustomerMasterKeySpec",
            "KeySpec",
            "EncryptionAlgorithms",
            "MultiRegion",
            "PendingDeletionWindowInDays",
            "CurrentKeyMaterialId",
            "CurrentKeyVersion",
            "OldestKeyVersion",
            "KeyRotationEnabled",
            "RotationPeriodInDays",
            "NextRotationDate",
            "UserPresenceRequired",
        ]
    );
    assert_eq!(v["DeletionDate"], "1970-01-01T00:00:00+00:00");
    assert_eq!(v["NextRotationDate"], "1970-01-02T00:00:00+00:00");
}

#[test]
fn pages_list_key_ids_as_objects_and_give_a_marker_only_when_present() {
    let page = KeysPage { keys: vec![KEY], next_marker: None, truncated: false };
    assert_eq!(
        json(&page),
        format!(r#"{{"Keys":[{{"KeyId":"{KEY_TEXT}","KeyArn":"{KEY_ARN}"}}],"Truncated":false}}"#)
    );
    let page = KeysPage { keys: vec![], next_marker: Some("m".into()), truncated: true };
    assert_eq!(json(&page), r#"{"Keys":[],"NextMarker":"m","Truncated":true}"#);
}

#[test]
fn blobs_are_base64_and_a_missing_plaintext_is_left_out() {
    let key = DataKey {
        ciphertext_blob: b"blob".to_vec(),
        plaintext: None,
        key_id: KEY,
        key_material_id: KeyMaterialId([0; 32]),
    };
    let zeros = "00".repeat(32);
    assert_eq!(
        json(&key),
        format!(r#"{{"CiphertextBlob":"YmxvYg==","KeyId":"{KEY_ARN}","KeyMaterialId":"{zeros}"}}"#)
    );
    let key = DataKey { plaintext: Some(Zeroizing::new(vec![0xff; 2])), ..key };
    assert_eq!(serde_json::to_value(&key).unwrap()["Plaintext"], "//8=");
    let random = GenerateRandomOutput { plaintext: Zeroizing::new(b"hi".to_vec()) };
    assert_eq!(json(&random), r#"{"Plaintext":"aGk="}"#);
}

#[test]
fn encrypt_names_its_algorithm() {
    let out = EncryptOutput {
        ciphertext_blob: vec![1],
        key_id: KEY,
        encryption_algorithm: pkms_protocol::EncryptionAlgorithm::SymmetricDefault,
        key_material_id: KeyMaterialId([0; 32]),
        key_version: 3,
    };
    let v = serde_json::to_value(&out).unwrap();
    let names: Vec<&str> = v.as_object().unwrap().keys().map(String::as_str).collect();
    assert_eq!(names, ["CiphertextBlob", "KeyId", "EncryptionAlgorithm", "KeyMaterialId", "KeyVersion"]);
    assert_eq!(v["EncryptionAlgorithm"], "SYMMETRIC_DEFAULT");
    assert_eq!(v["KeyId"], KEY_ARN, "KMS answers the key ARN");
}

#[test]
fn rotation_entries_leave_out_the_type_of_the_first_version() {
    let first = RotationEntry {
        key_id: KEY,
        key_material_id: KeyMaterialId([0; 32]),
        key_version: 1,
        key_material_state: KeyMaterialState::NonCurrent,
        rotation_date: 0,
        rotation_type: None,
    };
    let v = serde_json::to_value(first).unwrap();
    assert!(v.get("RotationType").is_none());
    assert_eq!(v["KeyMaterialState"], "NON_CURRENT");
    let second = RotationEntry { key_version: 2, rotation_type: Some(RotationType::OnDemand), ..first };
    assert_eq!(serde_json::to_value(second).unwrap()["RotationType"], "ON_DEMAND");
}

#[test]
fn rotations_only_leaves_out_the_original_material_and_all_key_material_keeps_it() {
    let entry = |key_version, rotation_type| RotationEntry {
        key_id: KEY,
        key_material_id: KeyMaterialId([key_version as u8; 32]),
        key_version,
        key_material_state: KeyMaterialState::NonCurrent,
        rotation_date: 0,
        rotation_type,
    };
    let page = RotationsPage {
        rotations: vec![
            entry(1, None),
            entry(2, Some(RotationType::OnDemand)),
            entry(3, Some(RotationType::Automatic)),
        ],
        next_marker: None,
        truncated: false,
    };
    let versions = |p: RotationsPage| p.rotations.iter().map(|r| r.key_version).collect::<Vec<_>>();
    assert_eq!(IncludeKeyMaterial::default(), IncludeKeyMaterial::RotationsOnly, "KMS's default");
    assert_eq!(versions(page.clone().including(IncludeKeyMaterial::RotationsOnly)), [2, 3]);
    assert_eq!(versions(page.including(IncludeKeyMaterial::AllKeyMaterial)), [1, 2, 3]);
    for v in IncludeKeyMaterial::ALL {
        assert_eq!(v.as_str().parse::<IncludeKeyMaterial>(), Ok(*v));
    }
    assert!("ALL".parse::<IncludeKeyMaterial>().is_err());
}

#[test]
fn alias_entries_carry_their_arn_and_the_bare_target_key_id() {
    let page = AliasesPage {
        aliases: vec![AliasEntry {
            alias_name: "alias/app".into(),
            target_key_id: KEY,
            creation_date: 0,
            last_updated_date: 86_400,
        }],
        next_marker: None,
        truncated: false,
    };
    assert_eq!(
        json(&page),
        r#"{"Aliases":[{"AliasName":"alias/app","AliasArn":"arn:aws:kms:us-east-1:111122223333:alias/app","#
            .to_owned()
            + &format!(r#""TargetKeyId":"{KEY_TEXT}","CreationDate":"1970-01-01T00:00:00+00:00","#)
            + r#""LastUpdatedDate":"1970-01-02T00:00:00+00:00"}],"Truncated":false}"#
    );
}

#[test]
fn grants_name_their_key_operations_and_constraints() {
    let grant = Grant {
        grant_id: "g".into(),
        name: "n".into(),
        grantee: "bob".into(),
        issuer: "admin".into(),
        operations: pkms_protocol::Action::Encrypt.bit() | pkms_protocol::Action::Decrypt.bit(),
        constraint: Some(ContextConstraint {
            kind: ConditionKind::Subset,
            pairs: vec![("app".into(), "x".into())],
        }),
        created: 0,
    };
    assert_eq!(
        json(&ListGrantsOutput::complete(KEY, vec![grant])),
        format!(r#"{{"Grants":[{{"KeyId":"{KEY_ARN}","GrantId":"g","Name":"n","#)
            + r#""CreationDate":"1970-01-01T00:00:00+00:00","GranteePrincipal":"bob","#
            + r#""IssuingAccount":"arn:aws:iam::111122223333:root","#
            + r#""Operations":["Encrypt","Decrypt"],"Constraints":{"EncryptionContextSubset":{"app":"x"}}}],"#
            + r#""Truncated":false}"#
    );
    let out = CreateGrantOutput::new(KEY_TEXT, "g".into());
    assert_ne!(out.grant_token, "g", "a grant token is not the grant id");
    assert_eq!(
        super::policy::parse_grant_token(&out.grant_token),
        Some((KEY_TEXT.to_owned(), "g".to_owned()))
    );
    assert_eq!(super::policy::parse_grant_token("g"), None);
}

#[test]
fn principals_show_their_role_in_capitals() {
    let p = Principal { name: "bob".into(), role: Role::User, pin_retries_left: 8 };
    assert_eq!(
        json(&ListPrincipalsOutput { principals: vec![p] }),
        r#"{"Principals":[{"Name":"bob","Role":"USER","PinRetriesLeft":8}]}"#
    );
}

#[test]
fn token_info_names_the_platform() {
    let info = TokenInfo {
        firmware_version: "1.0.0".into(),
        protocol_version: 1,
        board: "b".into(),
        platform: pkms_protocol::Platform::Emulated,
        entropy_source: "e".into(),
        key_protection: "k".into(),
        storage_total_bytes: 10,
        storage_free_bytes: 5,
        key_count: 1,
        time_high_water_mark: 0,
        initialized: false,
        key_versions_not_backed_up: 3,
        backup_key: true,
    };
    assert_eq!(
        json(&info),
        r#"{"FirmwareVersion":"1.0.0","ProtocolVersion":1,"Board":"b","Platform":"EMULATED","EntropySource":"e","#
            .to_owned()
            + r#""KeyProtection":"k","StorageTotalBytes":10,"StorageFreeBytes":5,"KeyCount":1,"#
            + r#""TimeHighWaterMark":"1970-01-01T00:00:00+00:00","Initialized":false,"#
            + r#""KeyVersionsNotBackedUp":3,"BackupKey":true}"#
    );
}
