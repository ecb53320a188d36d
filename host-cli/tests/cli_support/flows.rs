//! CLI flows run against both tokens (`cli_inprocess.rs`, `cli_qemu.rs`): symmetric keys,
//! rotation, signing and HMAC, and key lifecycle through the built binary, with the exit
//! statuses and error types.

use super::{error_type, field, key_arn, unb64, Env};

/// Symmetric keys: create, encrypt/decrypt with context, every bad input, data keys, random, lists,
/// text output and --query.
pub fn symmetric(env: &Env) {
    let info = env.json(&["info"]);
    assert_eq!(field(&info, "Platform"), "EMULATED");
    assert!(!field(&info, "FirmwareVersion").is_empty());
    assert_eq!(field(&info, "SelfTests"), "Passed", "the power-on self-tests");

    let created = env.json(&["create-key", "--description", "bar"]);
    let key = field(&created, "KeyMetadata.KeyId");
    assert_eq!(field(&created, "KeyMetadata.Description"), "bar");
    assert_eq!(field(&created, "KeyMetadata.KeyState"), "Enabled");
    assert_eq!(field(&created, "KeyMetadata.KeySpec"), "SYMMETRIC_DEFAULT");
    assert_eq!(field(&created, "KeyMetadata.KeyUsage"), "ENCRYPT_DECRYPT");
    assert_eq!(field(&created, "KeyMetadata.Enabled"), "true");
    assert!(field(&created, "KeyMetadata.CreationDate").ends_with("+00:00"), "ISO-8601 dates");
    assert_eq!(field(&created, "KeyMetadata.CurrentKeyMaterialId").len(), 64);

    let msg = env.fileb("msg", b"attack at dawn");
    let ctx = ["--encryption-context", "app=bar", "--encryption-context", "env=test"];
    let swapped = ["--encryption-context", "env=test", "--encryption-context", "app=bar"];
    let enc = env.json(&[&["encrypt", "--key-id", &key, "--plaintext", &msg][..], &ctx].concat());
    let blob = field(&enc, "CiphertextBlob");
    assert_eq!(field(&enc, "KeyId"), key_arn(&key), "Encrypt answers the key ARN, as KMS");
    assert_eq!(field(&enc, "EncryptionAlgorithm"), "SYMMETRIC_DEFAULT");
    let dec = env.json(&[&["decrypt", "--ciphertext-blob", &blob][..], &swapped].concat());
    assert_eq!(unb64(&field(&dec, "Plaintext")), b"attack at dawn");
    assert_eq!(field(&dec, "KeyId"), key_arn(&key));
    // A JSON context works as well as repeated pairs.
    env.json(&[
        "decrypt",
        "--ciphertext-blob",
        &blob,
        "--encryption-context",
        r#"{"env":"test","app":"bar"}"#,
    ]);

    // Wrong, missing context; tampered blob; unknown key: typed errors, status 254.
    let e = env.fails(
        &[
            "decrypt",
            "--ciphertext-blob",
            &blob,
            "--encryption-context",
            "app=other",
            "--encryption-context",
            "env=test",
        ],
        254,
    );
    assert_eq!(error_type(&e), "InvalidCiphertextException");
    assert!(e.contains("encryption-context"), "the message says what to check: {e}");
    assert_eq!(
        error_type(&env.fails(&["decrypt", "--ciphertext-blob", &blob], 254)),
        "InvalidCiphertextException"
    );
    let mut raw = unb64(&blob);
    let mid = raw.len() / 2;
    raw[mid] ^= 1;
    let bad = env.fileb("bad.blob", &raw);
    let e = env.fails(&[&["decrypt", "--ciphertext-blob", &bad][..], &ctx].concat(), 254);
    assert_eq!(error_type(&e), "InvalidCiphertextException");
    let e =
        env.fails(&["encrypt", "--key-id", "00000000-0000-0000-0000-000000000000", "--plaintext", &msg], 254);
    assert_eq!(error_type(&e), "NotFoundException");
    assert!(e.contains("list-keys"), "{e}");
    let other = field(&env.json(&["create-key"]), "KeyMetadata.KeyId");
    let e =
        env.fails(&[&["decrypt", "--ciphertext-blob", &blob, "--key-id", &other][..], &ctx].concat(), 254);
    assert_eq!(error_type(&e), "IncorrectKeyException");

    // Size limits.
    let max = env.fileb("max", &[7u8; 4096]);
    env.json(&["encrypt", "--key-id", &key, "--plaintext", &max]);
    let big = env.fileb("big", &[7u8; 4097]);
    let e = env.fails(&["encrypt", "--key-id", &key, "--plaintext", &big], 252);
    assert!(e.contains("4096") && e.contains("encrypt-file"), "{e}");

    // Data keys and random bytes.
    let dk = env.json(&["generate-data-key", "--key-id", &key, "--key-spec", "AES_256"]);
    let dk_plain = unb64(&field(&dk, "Plaintext"));
    assert_eq!(dk_plain.len(), 32);
    let back = env.json(&["decrypt", "--ciphertext-blob", &field(&dk, "CiphertextBlob")]);
    assert_eq!(unb64(&field(&back, "Plaintext")), dk_plain);
    let dk128 = env.json(&["generate-data-key", "--key-id", &key, "--key-spec", "AES_128"]);
    assert_eq!(unb64(&field(&dk128, "Plaintext")).len(), 16);
    let dk_n = env.json(&["generate-data-key", "--key-id", &key, "--number-of-bytes", "48"]);
    assert_eq!(unb64(&field(&dk_n, "Plaintext")).len(), 48);
    let wp = env.json(&["generate-data-key-without-plaintext", "--key-id", &key, "--key-spec", "AES_256"]);
    assert!(wp.get("Plaintext").is_none());
    assert_eq!(unb64(&field(&wp, "CiphertextBlob")).len(), 32 + 51);
    let rnd = env.json(&["generate-random", "--number-of-bytes", "32"]);
    assert_eq!(unb64(&field(&rnd, "Plaintext")).len(), 32);
    assert_eq!(
        error_type(&env.fails(&["generate-random", "--number-of-bytes", "0"], 254)),
        "ValidationException"
    );

    let keys = env.json(&["list-keys"]);
    let ids: Vec<String> = keys["Keys"].as_array().expect("Keys").iter().map(|k| field(k, "KeyId")).collect();
    assert!(ids.contains(&key) && ids.contains(&other));
    assert_eq!(field(&keys, "Truncated"), "false");
    let page = env.json(&["list-keys", "--limit", "1"]);
    assert_eq!(page["Keys"].as_array().map(Vec::len), Some(1));
    assert_eq!(field(&page, "Truncated"), "true");
    let rest = env.json(&["list-keys", "--limit", "1", "--starting-token", &field(&page, "NextMarker")]);
    assert_eq!(rest["Keys"].as_array().map(Vec::len), Some(1));
    assert_ne!(page["Keys"][0], rest["Keys"][0]);

    // --output text with --query prints a bare value that scripts can pass back.
    let out = env.run(
        &[
            &[
                "encrypt",
                "--key-id",
                &key,
                "--plaintext",
                &msg,
                "--query",
                "CiphertextBlob",
                "--output",
                "text",
            ][..],
            &ctx,
        ]
        .concat(),
    );
    assert!(out.status.success());
    let text_blob = String::from_utf8_lossy(&out.stdout).trim().to_owned();
    assert!(!text_blob.contains('\t') && !text_blob.contains('"'));
    let out = env.run(
        &[
            &["decrypt", "--ciphertext-blob", &text_blob, "--query", "Plaintext", "--output", "text"][..],
            &ctx,
        ]
        .concat(),
    );
    assert_eq!(unb64(&String::from_utf8_lossy(&out.stdout)), b"attack at dawn");
    let out =
        env.run(&["describe-key", "--key-id", &key, "--output", "text", "--query", "KeyMetadata.KeyState"]);
    assert_eq!(String::from_utf8_lossy(&out.stdout), "Enabled\n");
    // --quiet prints nothing but keeps the status.
    let out = env.run(&["describe-key", "--key-id", &key, "--quiet"]);
    assert!(out.status.success() && out.stdout.is_empty());
}

/// Rotation: rotations, ReEncrypt, rotation settings and retirement.
pub fn rotation(env: &Env) {
    let key = field(&env.json(&["create-key"]), "KeyMetadata.KeyId");
    let m1 = env.fileb("m1", b"v1 secret");
    let b1 = field(
        &env.json(&["encrypt", "--key-id", &key, "--plaintext", &m1, "--encryption-context", "t=1"]),
        "CiphertextBlob",
    );
    for v in 2..=4 {
        let r = env.json(&["rotate-key-on-demand", "--key-id", &key]);
        assert_eq!(field(&r, "KeyId"), key);
        assert_eq!(field(&r, "KeyVersion"), v.to_string());
    }
    // As KMS (IncludeKeyMaterial ROTATIONS_ONLY by default): the rotations, not the material the
    // key was created with.
    let rotations = env.json(&["list-key-rotations", "--key-id", &key]);
    let list = rotations["Rotations"].as_array().expect("Rotations");
    let versions: Vec<String> = list.iter().map(|r| field(r, "KeyVersion")).collect();
    assert_eq!(versions, ["2", "3", "4"]);
    assert!(list.iter().all(|r| r.get("RotationType").is_some()));
    assert_eq!(field(&list[2], "KeyMaterialState"), "CURRENT");
    assert_eq!(field(&list[2], "RotationType"), "ON_DEMAND");
    assert_eq!(field(&list[2], "KeyMaterialId").len(), 64);
    let all =
        env.json(&["list-key-rotations", "--key-id", &key, "--include-key-material", "ALL_KEY_MATERIAL"]);
    let all = all["Rotations"].as_array().expect("Rotations");
    assert_eq!(all.len(), 4);
    assert_eq!(field(&all[0], "KeyVersion"), "1");
    assert!(all[0].get("RotationType").is_none(), "the original material was made by no rotation");
    let only =
        env.json(&["list-key-rotations", "--key-id", &key, "--include-key-material", "ROTATIONS_ONLY"]);
    assert_eq!(only["Rotations"], rotations["Rotations"]);
    env.fails(&["list-key-rotations", "--key-id", &key, "--include-key-material", "ALL"], 2);
    let b2 = field(
        &env.json(&["encrypt", "--key-id", &key, "--plaintext", &m1, "--encryption-context", "t=1"]),
        "CiphertextBlob",
    );
    for b in [&b1, &b2] {
        let d = env.json(&["decrypt", "--ciphertext-blob", b, "--encryption-context", "t=1"]);
        assert_eq!(unb64(&field(&d, "Plaintext")), b"v1 secret");
    }
    let key2 = field(&env.json(&["create-key"]), "KeyMetadata.KeyId");
    let re = env.json(&[
        "re-encrypt",
        "--ciphertext-blob",
        &b1,
        "--source-encryption-context",
        "t=1",
        "--destination-key-id",
        &key2,
        "--destination-encryption-context",
        "t=2",
    ]);
    assert_eq!(field(&re, "SourceKeyId"), key_arn(&key));
    assert_eq!(field(&re, "KeyId"), key_arn(&key2));
    let d = env.json(&[
        "decrypt",
        "--ciphertext-blob",
        &field(&re, "CiphertextBlob"),
        "--encryption-context",
        "t=2",
    ]);
    assert_eq!(unb64(&field(&d, "Plaintext")), b"v1 secret");

    let out = env.run(&["enable-key-rotation", "--key-id", &key, "--rotation-period-in-days", "90"]);
    assert!(out.status.success() && out.stdout.is_empty(), "no output, as aws-cli");
    let e = env.fails(&["enable-key-rotation", "--key-id", &key, "--rotation-period-in-days", "89"], 254);
    assert_eq!(error_type(&e), "ValidationException");
    let s = env.json(&["get-key-rotation-status", "--key-id", &key]);
    assert_eq!(field(&s, "KeyRotationEnabled"), "true");
    assert_eq!(field(&s, "RotationPeriodInDays"), "90");
    assert!(field(&s, "NextRotationDate").ends_with("+00:00"));

    let r = env.json(&["retire-key-versions", "--key-id", &key, "--below-version", "4", "--yes"]);
    assert_eq!(field(&r, "RetiredCount"), "3");
    // A retired version is KMS's KMSInvalidStateException, as `pkms serve` answers it; the
    // message says what happened.
    let e = env.fails(&["decrypt", "--ciphertext-blob", &b1, "--encryption-context", "t=1"], 254);
    assert_eq!(error_type(&e), "KMSInvalidStateException");
    assert!(e.contains("key version retired"), "{e}");
    env.json(&["decrypt", "--ciphertext-blob", &b2, "--encryption-context", "t=1"]);
}

/// Signing: P-256 signatures that openssl verifies, HMAC, key usage.
pub fn signing(env: &Env) {
    let sk = field(
        &env.json(&["create-key", "--key-spec", "ECC_NIST_P256", "--key-usage", "SIGN_VERIFY"]),
        "KeyMetadata.KeyId",
    );
    let pem_out = env.run(&["get-public-key", "--key-id", &sk, "--output", "pem"]);
    assert!(pem_out.status.success());
    let pem = String::from_utf8_lossy(&pem_out.stdout).into_owned();
    assert!(pem.starts_with("-----BEGIN PUBLIC KEY-----\n") && pem.ends_with("-----END PUBLIC KEY-----\n"));
    std::fs::write(env.file("pub.pem"), &pem).unwrap();
    let pk = env.json(&["get-public-key", "--key-id", &sk]);
    assert_eq!(field(&pk, "KeySpec"), "ECC_NIST_P256");
    assert_eq!(pk["SigningAlgorithms"][0], "ECDSA_SHA_256");

    let artifact: Vec<u8> = (0..3000u32).map(|i| (i % 251) as u8).collect();
    let art = env.fileb("artifact", &artifact);
    let sig = env.json(&[
        "sign",
        "--key-id",
        &sk,
        "--message",
        &art,
        "--message-type",
        "RAW",
        "--signing-algorithm",
        "ECDSA_SHA_256",
    ]);
    std::fs::write(env.file("sig.der"), unb64(&field(&sig, "Signature"))).unwrap();
    let openssl = |sig: &str| {
        std::process::Command::new("openssl")
            .args(["dgst", "-sha256", "-verify"])
            .arg(env.file("pub.pem"))
            .arg("-signature")
            .arg(env.file(sig))
            .arg(env.file("artifact"))
            .output()
            .expect("openssl is installed (scripts/setup.sh installs it)")
    };
    let v = openssl("sig.der");
    assert!(v.status.success(), "openssl verifies the RAW signature: {}", String::from_utf8_lossy(&v.stderr));

    let digest = {
        use sha2::Digest;
        sha2::Sha256::digest(&artifact).to_vec()
    };
    let dig = env.fileb("digest", &digest);
    let sig2 = env.json(&["sign", "--key-id", &sk, "--message", &dig, "--message-type", "DIGEST"]);
    std::fs::write(env.file("sig2.der"), unb64(&field(&sig2, "Signature"))).unwrap();
    assert!(openssl("sig2.der").status.success(), "openssl verifies the DIGEST signature");

    let sigfile = format!("fileb://{}", env.file("sig.der").display());
    let ok = env.json(&["verify", "--key-id", &sk, "--message", &art, "--signature", &sigfile]);
    assert_eq!(field(&ok, "SignatureValid"), "true");
    let changed = env.fileb("changed", &[&artifact[..], b"x"].concat());
    let e = env.fails(&["verify", "--key-id", &sk, "--message", &changed, "--signature", &sigfile], 254);
    assert_eq!(error_type(&e), "KMSInvalidSignatureException");
    let e = env.fails(&["encrypt", "--key-id", &sk, "--plaintext", &dig], 254);
    assert_eq!(error_type(&e), "InvalidKeyUsageException");

    let mk = field(
        &env.json(&["create-key", "--key-spec", "HMAC_256", "--key-usage", "GENERATE_VERIFY_MAC"]),
        "KeyMetadata.KeyId",
    );
    let mac = field(
        &env.json(&["generate-mac", "--key-id", &mk, "--message", &dig, "--mac-algorithm", "HMAC_SHA_256"]),
        "Mac",
    );
    let ok = env.json(&[
        "verify-mac",
        "--key-id",
        &mk,
        "--message",
        &dig,
        "--mac-algorithm",
        "HMAC_SHA_256",
        "--mac",
        &mac,
    ]);
    assert_eq!(field(&ok, "MacValid"), "true");
    let e = env.fails(
        &["verify-mac", "--key-id", &mk, "--message", &art, "--mac-algorithm", "HMAC_SHA_256", "--mac", &mac],
        254,
    );
    assert_eq!(error_type(&e), "KMSInvalidMacException");
    env.json(&["create-key", "--key-spec", "HMAC_512", "--key-usage", "GENERATE_VERIFY_MAC"]);
}

/// Lifecycle: aliases, the key-state walk, tags and descriptions.
pub fn lifecycle(env: &Env) {
    let ek = field(
        &env.json(&["create-key", "--tags", "TagKey=team,TagValue=infra", "env=prod"]),
        "KeyMetadata.KeyId",
    );
    let msg = env.fileb("m", b"hello");
    assert!(env
        .run(&["create-alias", "--alias-name", "alias/bar-test", "--target-key-id", &ek])
        .status
        .success());
    let enc = env.json(&["encrypt", "--key-id", "alias/bar-test", "--plaintext", &msg]);
    assert_eq!(field(&enc, "KeyId"), key_arn(&ek));
    let e = env.fails(&["create-alias", "--alias-name", "bar-test2", "--target-key-id", &ek], 254);
    assert_eq!(error_type(&e), "InvalidAliasNameException");
    let aliases = env.json(&["list-aliases", "--key-id", &ek]);
    assert_eq!(field(&aliases["Aliases"][0], "AliasName"), "alias/bar-test");

    assert!(env.run(&["disable-key", "--key-id", &ek]).status.success());
    let e = env.fails(&["encrypt", "--key-id", &ek, "--plaintext", &msg], 254);
    assert_eq!(error_type(&e), "DisabledException");
    assert!(e.contains("enable-key"), "{e}");
    assert!(env.run(&["enable-key", "--key-id", &ek]).status.success());
    env.json(&["encrypt", "--key-id", &ek, "--plaintext", &msg]);
    assert!(env.run(&["disable-key", "--key-id", &ek]).status.success());
    let e = env.fails(&["schedule-key-deletion", "--key-id", &ek, "--pending-window-in-days", "6"], 254);
    assert_eq!(error_type(&e), "ValidationException");
    let s = env.json(&["schedule-key-deletion", "--key-id", &ek, "--pending-window-in-days", "7"]);
    assert_eq!(field(&s, "KeyState"), "PendingDeletion");
    assert_eq!(field(&s, "PendingWindowInDays"), "7");
    let d = env.json(&["describe-key", "--key-id", &ek]);
    assert_eq!(field(&d, "KeyMetadata.KeyState"), "PendingDeletion");
    assert!(field(&d, "KeyMetadata.DeletionDate").ends_with("+00:00"));
    let e = env.fails(&["encrypt", "--key-id", &ek, "--plaintext", &msg], 254);
    assert_eq!(error_type(&e), "KMSInvalidStateException");
    assert_eq!(field(&env.json(&["cancel-key-deletion", "--key-id", &ek]), "KeyId"), key_arn(&ek));
    assert_eq!(field(&env.json(&["describe-key", "--key-id", &ek]), "KeyMetadata.KeyState"), "Disabled");
    assert!(env.run(&["enable-key", "--key-id", &ek]).status.success());
    assert_eq!(field(&env.json(&["describe-key", "--key-id", &ek]), "KeyMetadata.KeyState"), "Enabled");

    let tags = env.json(&["list-resource-tags", "--key-id", &ek]);
    let mut pairs: Vec<(String, String)> = tags["Tags"]
        .as_array()
        .expect("Tags")
        .iter()
        .map(|t| (field(t, "TagKey"), field(t, "TagValue")))
        .collect();
    pairs.sort();
    assert_eq!(pairs, [("env".to_owned(), "prod".to_owned()), ("team".to_owned(), "infra".to_owned())]);
    assert!(env.run(&["untag-resource", "--key-id", &ek, "--tag-keys", "env", "team"]).status.success());
    assert!(env.run(&["tag-resource", "--key-id", &ek, "--tags", "a=1"]).status.success());
    let tags = env.json(&["list-resource-tags", "--key-id", &ek]);
    assert_eq!(tags["Tags"].as_array().map(Vec::len), Some(1));
    assert!(env
        .run(&["update-key-description", "--key-id", &ek, "--description", "renamed"])
        .status
        .success());
    assert_eq!(
        field(&env.json(&["describe-key", "--key-id", "alias/bar-test"]), "KeyMetadata.Description"),
        "renamed"
    );
    assert!(env
        .run(&["update-alias", "--alias-name", "alias/bar-test", "--target-key-id", &ek])
        .status
        .success());
    assert!(env.run(&["delete-alias", "--alias-name", "alias/bar-test"]).status.success());
    let e = env.fails(&["describe-key", "--key-id", "alias/bar-test"], 254);
    assert_eq!(error_type(&e), "NotFoundException");
}

/// KMS's shapes, as `aws kms` prints them and `pkms serve` answers them: key ARNs in replies, the
/// region and account of ARNs from `--region` / AWS_REGION / AWS_DEFAULT_REGION and
/// `--account-id`, aliases refused where KMS takes only a key id or key ARN.
pub fn kms_shapes(env: &Env) {
    let created = env.json(&["create-key", "--description", "shapes"]);
    let key = field(&created, "KeyMetadata.KeyId");
    let arn = key_arn(&key);
    assert!(!key.starts_with("arn:"), "KeyMetadata.KeyId stays the bare id, as in KMS");
    assert_eq!(field(&created, "KeyMetadata.Arn"), arn);
    assert_eq!(field(&created, "KeyMetadata.AWSAccountId"), "111122223333");
    assert_eq!(field(&created, "KeyMetadata.Origin"), "AWS_KMS");
    assert_eq!(field(&created, "KeyMetadata.KeyManager"), "CUSTOMER");
    assert_eq!(field(&created, "KeyMetadata.MultiRegion"), "false");
    assert_eq!(field(&created, "KeyMetadata.CustomerMasterKeySpec"), "SYMMETRIC_DEFAULT");
    assert_eq!(env.json(&["describe-key", "--key-id", &arn])["KeyMetadata"], created["KeyMetadata"]);

    let keys = env.json(&["list-keys"]);
    let entry = keys["Keys"].as_array().expect("Keys").iter().find(|k| field(k, "KeyId") == key).cloned();
    assert_eq!(entry.map(|e| field(&e, "KeyArn")), Some(arn.clone()), "ListKeys entries carry KeyArn");
    assert!(env
        .run(&["create-alias", "--alias-name", "alias/shapes", "--target-key-id", &arn])
        .status
        .success());
    let aliases = env.json(&["list-aliases", "--key-id", &key]);
    assert_eq!(field(&aliases["Aliases"][0], "AliasName"), "alias/shapes");
    assert_eq!(field(&aliases["Aliases"][0], "AliasArn"), "arn:aws:kms:us-east-1:111122223333:alias/shapes");
    assert_eq!(field(&aliases["Aliases"][0], "TargetKeyId"), key, "TargetKeyId is the bare id, as in KMS");

    // Every reply KeyId that KMS answers as an ARN.
    let msg = env.fileb("shapes-msg", b"m");
    let dk = env.json(&["generate-data-key", "--key-id", "alias/shapes", "--key-spec", "AES_256"]);
    assert_eq!(field(&dk, "KeyId"), arn);
    let wp = env.json(&["generate-data-key-without-plaintext", "--key-id", &arn, "--number-of-bytes", "8"]);
    assert_eq!(field(&wp, "KeyId"), arn);
    let alias_arn = "arn:aws:kms:us-east-1:111122223333:alias/shapes";
    assert_eq!(field(&env.json(&["encrypt", "--key-id", alias_arn, "--plaintext", &msg]), "KeyId"), arn);
    let sk = field(
        &env.json(&["create-key", "--key-spec", "ECC_NIST_P256", "--key-usage", "SIGN_VERIFY"]),
        "KeyMetadata.KeyId",
    );
    let sig = env.json(&["sign", "--key-id", &sk, "--message", &msg, "--signing-algorithm", "ECDSA_SHA_256"]);
    assert_eq!(field(&sig, "KeyId"), key_arn(&sk));
    let sigfile = env.fileb("shapes.sig", &unb64(&field(&sig, "Signature")));
    let ok = env.json(&["verify", "--key-id", &sk, "--message", &msg, "--signature", &sigfile]);
    assert_eq!(field(&ok, "KeyId"), key_arn(&sk));
    assert_eq!(field(&env.json(&["get-public-key", "--key-id", &sk]), "KeyId"), key_arn(&sk));
    let mk = field(&env.json(&["create-key", "--key-spec", "HMAC_256"]), "KeyMetadata.KeyId");
    let mac =
        env.json(&["generate-mac", "--key-id", &mk, "--message", &msg, "--mac-algorithm", "HMAC_SHA_256"]);
    assert_eq!(field(&mac, "KeyId"), key_arn(&mk));
    let grants = env.json(&["list-grants", "--key-id", &key]);
    assert_eq!(grants["Grants"].as_array().map(Vec::len), Some(0));

    // Aliases (names and ARNs) are refused where KMS takes only a key id or key ARN, with
    // KMS's NotFoundException and exit status 254, and nothing is done.
    let key_only: &[&[&str]] = &[
        &["enable-key"],
        &["disable-key"],
        &["schedule-key-deletion"],
        &["cancel-key-deletion"],
        &["enable-key-rotation"],
        &["disable-key-rotation"],
        &["get-key-rotation-status"],
        &["rotate-key-on-demand"],
        &["list-key-rotations"],
        &["retire-key-versions", "--below-version", "1"],
        &["tag-resource", "--tags", "a=1"],
        &["untag-resource", "--tag-keys", "a"],
        &["list-resource-tags"],
        &["update-key-description", "--description", "x"],
        &["get-key-policy"],
        &["create-grant", "--grantee-principal", "bob", "--operations", "Encrypt"],
        &["list-grants"],
        &["revoke-grant", "--grant-id", "g"],
        &["retire-grant", "--grant-id", "g"],
        &["list-aliases"],
    ];
    for alias in ["alias/shapes", alias_arn] {
        for cmd in key_only {
            let args = [&cmd[..1], &["--key-id", alias], &cmd[1..]].concat();
            let e = env.fails(&args, 254);
            assert_eq!(error_type(&e), "NotFoundException", "{args:?}");
            assert!(e.contains("not an alias"), "{args:?}: {e}");
        }
        for cmd in ["create-alias", "update-alias"] {
            let e = env.fails(&[cmd, "--alias-name", "alias/other", "--target-key-id", alias], 254);
            assert_eq!(error_type(&e), "NotFoundException", "{cmd}");
        }
    }
    let d = env.json(&["describe-key", "--key-id", &key]);
    assert_eq!(field(&d, "KeyMetadata.KeyState"), "Enabled", "the refused disable-key did nothing");
    assert_eq!(field(&d, "KeyMetadata.Description"), "shapes");
    // The key ARN works there.
    assert!(env.run(&["disable-key", "--key-id", &arn]).status.success());
    assert!(env.run(&["enable-key", "--key-id", &arn]).status.success());
    assert_eq!(
        field(&env.json(&["get-key-rotation-status", "--key-id", &arn]), "KeyRotationEnabled"),
        "false"
    );

    // The region and account of ARNs: --region, else AWS_REGION, else AWS_DEFAULT_REGION.
    let arn_with = |extra: &[&str], vars: &[(&str, &str)]| {
        let mut cmd = env.command(&[extra, &["describe-key", "--key-id", &key]].concat());
        for (k, v) in vars {
            cmd.env(k, v);
        }
        let out = cmd.output().expect("run pkms");
        assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
        let v: serde_json::Value = serde_json::from_slice(&out.stdout).expect("JSON");
        field(&v, "KeyMetadata.Arn")
    };
    let in_region = |region: &str, account: &str| format!("arn:aws:kms:{region}:{account}:key/{key}");
    assert_eq!(arn_with(&["--region", "eu-west-1"], &[]), in_region("eu-west-1", "111122223333"));
    assert_eq!(
        arn_with(&[], &[("AWS_DEFAULT_REGION", "eu-north-1")]),
        in_region("eu-north-1", "111122223333")
    );
    let both = [("AWS_REGION", "ap-south-1"), ("AWS_DEFAULT_REGION", "eu-north-1")];
    assert_eq!(arn_with(&[], &both), in_region("ap-south-1", "111122223333"));
    assert_eq!(arn_with(&["--region", "sa-east-1"], &both), in_region("sa-east-1", "111122223333"));
    assert_eq!(
        arn_with(&["--account-id", "444455556666"], &[("AWS_REGION", "")]),
        in_region("us-east-1", "444455556666")
    );
    // An ARN of another region or account names no key here; a malformed one is refused.
    let e = env.fails(&["describe-key", "--key-id", &in_region("eu-west-1", "111122223333")], 254);
    assert_eq!(error_type(&e), "NotFoundException");
    let out = env
        .command(&[
            "--region",
            "eu-west-1",
            "describe-key",
            "--key-id",
            &in_region("eu-west-1", "111122223333"),
        ])
        .output()
        .expect("run pkms");
    assert!(out.status.success(), "the ARN of the configured region names the key");
    let e = env.fails(
        &["encrypt", "--key-id", "arn:aws:kms:us-east-1:111122223333:grant/x", "--plaintext", &msg],
        254,
    );
    assert_eq!(error_type(&e), "InvalidArnException");
    let e = env.fails(&["--region", "not a region", "list-keys"], 252);
    assert_eq!(error_type(&e), "ValidationException");
    let e = env.fails(&["--account-id", "12", "list-keys"], 252);
    assert_eq!(error_type(&e), "ValidationException");
}

/// Runs `cmd` with `args`; asserts it succeeds (stderr in the message).
#[track_caller]
fn succeeds(cmd: &str, args: &[&std::ffi::OsStr]) -> Vec<u8> {
    let out = std::process::Command::new(cmd).args(args).output().unwrap_or_else(|e| panic!("{cmd}: {e}"));
    assert!(out.status.success(), "{cmd} {args:?}: {}", String::from_utf8_lossy(&out.stderr));
    out.stdout
}

/// The key specs beyond P-256 through the CLI, checked outside the token: Ed25519, secp256k1 and
/// P-384 signatures with openssl, ML-DSA-65 with python `cryptography`, ECDH against openssl
/// `pkeyutl -derive`, ML-KEM-768 against python's encapsulation, a data key pair whose private
/// key decrypts and matches its public key; the usages each spec refuses.
pub fn key_specs(env: &Env) {
    use std::ffi::OsStr;
    let message = env.fileb("message", b"release 1.2.3");
    let msg_path = env.file("message");
    for (spec, alg, digest) in [
        ("ECC_NIST_EDWARDS25519", "ED25519_SHA_512", None),
        ("ECC_SECG_P256K1", "ECDSA_SHA_256", Some("-sha256")),
        ("ECC_NIST_P384", "ECDSA_SHA_384", Some("-sha384")),
    ] {
        let key = field(
            &env.json(&["create-key", "--key-spec", spec, "--key-usage", "SIGN_VERIFY"]),
            "KeyMetadata.KeyId",
        );
        let described = env.json(&["describe-key", "--key-id", &key]);
        assert_eq!(described["KeyMetadata"]["SigningAlgorithms"][0], alg);
        let pem = env.file(&format!("{spec}.pem"));
        std::fs::write(&pem, env.run(&["get-public-key", "--key-id", &key, "--output", "pem"]).stdout)
            .unwrap();
        let sig = env.json(&[
            "sign",
            "--key-id",
            &key,
            "--message",
            &message,
            "--message-type",
            "RAW",
            "--signing-algorithm",
            alg,
        ]);
        let sig_path = env.file(&format!("{spec}.sig"));
        std::fs::write(&sig_path, unb64(&field(&sig, "Signature"))).unwrap();
        match digest {
            None => {
                succeeds(
                    "openssl",
                    &[
                        OsStr::new("pkeyutl"),
                        OsStr::new("-verify"),
                        OsStr::new("-pubin"),
                        OsStr::new("-inkey"),
                        pem.as_os_str(),
                        OsStr::new("-rawin"),
                        OsStr::new("-in"),
                        msg_path.as_os_str(),
                        OsStr::new("-sigfile"),
                        sig_path.as_os_str(),
                    ],
                );
            }
            Some(d) => {
                succeeds(
                    "openssl",
                    &[
                        OsStr::new("dgst"),
                        OsStr::new(d),
                        OsStr::new("-verify"),
                        pem.as_os_str(),
                        OsStr::new("-signature"),
                        sig_path.as_os_str(),
                        msg_path.as_os_str(),
                    ],
                );
            }
        }
        let sig_b64 = field(&sig, "Signature");
        let ok = env.json(&[
            "verify",
            "--key-id",
            &key,
            "--message",
            &message,
            "--signature",
            &sig_b64,
            "--signing-algorithm",
            alg,
        ]);
        assert_eq!(ok["SignatureValid"], true);
        let e = env.fails(&["encrypt", "--key-id", &key, "--plaintext", &message], 254);
        assert_eq!(error_type(&e), "InvalidKeyUsageException", "{spec}");
    }
    // ML-DSA-65 (hedged): python `cryptography` verifies the signature with GetPublicKey's key.
    let dsa = field(
        &env.json(&["create-key", "--key-spec", "ML_DSA_65", "--key-usage", "SIGN_VERIFY"]),
        "KeyMetadata.KeyId",
    );
    let der = unb64(&field(&env.json(&["get-public-key", "--key-id", &dsa]), "PublicKey"));
    std::fs::write(env.file("dsa.der"), der).unwrap();
    let sig = env.json(&[
        "sign",
        "--key-id",
        &dsa,
        "--message",
        &message,
        "--signing-algorithm",
        "ML_DSA_SHAKE_256",
    ]);
    assert_eq!(unb64(&field(&sig, "Signature")).len(), 3309);
    std::fs::write(env.file("dsa.sig"), unb64(&field(&sig, "Signature"))).unwrap();
    let script = "import sys\nfrom cryptography.hazmat.primitives.serialization import load_der_public_key\n\
                  pub = load_der_public_key(open(sys.argv[1], 'rb').read())\n\
                  pub.verify(open(sys.argv[2], 'rb').read(), open(sys.argv[3], 'rb').read())\n";
    succeeds(
        "python3",
        &[
            OsStr::new("-c"),
            OsStr::new(script),
            env.file("dsa.der").as_os_str(),
            env.file("dsa.sig").as_os_str(),
            msg_path.as_os_str(),
        ],
    );
    let e = env.fails(
        &["sign", "--key-id", &dsa, "--message", &message, "--signing-algorithm", "ECDSA_SHA_256"],
        254,
    );
    assert_eq!(error_type(&e), "InvalidKeyUsageException");

    // ECDH: the token's secret is openssl's.
    let ka = field(
        &env.json(&["create-key", "--key-spec", "ECC_NIST_P384", "--key-usage", "KEY_AGREEMENT"]),
        "KeyMetadata.KeyId",
    );
    let described = env.json(&["describe-key", "--key-id", &ka]);
    assert_eq!(described["KeyMetadata"]["KeyAgreementAlgorithms"][0], "ECDH");
    assert!(described["KeyMetadata"].get("SigningAlgorithms").is_none());
    std::fs::write(
        env.file("ka.pem"),
        env.run(&["get-public-key", "--key-id", &ka, "--output", "pem"]).stdout,
    )
    .unwrap();
    let peer = env.file("peer.pem");
    let peer_der = env.file("peer.der");
    succeeds(
        "openssl",
        &[
            OsStr::new("genpkey"),
            OsStr::new("-algorithm"),
            OsStr::new("EC"),
            OsStr::new("-pkeyopt"),
            OsStr::new("ec_paramgen_curve:P-384"),
            OsStr::new("-out"),
            peer.as_os_str(),
        ],
    );
    succeeds(
        "openssl",
        &[
            OsStr::new("pkey"),
            OsStr::new("-in"),
            peer.as_os_str(),
            OsStr::new("-pubout"),
            OsStr::new("-outform"),
            OsStr::new("DER"),
            OsStr::new("-out"),
            peer_der.as_os_str(),
        ],
    );
    let expected = succeeds(
        "openssl",
        &[
            OsStr::new("pkeyutl"),
            OsStr::new("-derive"),
            OsStr::new("-inkey"),
            peer.as_os_str(),
            OsStr::new("-peerkey"),
            env.file("ka.pem").as_os_str(),
        ],
    );
    let peer_arg = format!("fileb://{}", peer_der.display());
    let ss = env.json(&[
        "derive-shared-secret",
        "--key-id",
        &ka,
        "--key-agreement-algorithm",
        "ECDH",
        "--public-key",
        &peer_arg,
    ]);
    assert_eq!(unb64(&field(&ss, "SharedSecret")), expected);
    assert_eq!(field(&ss, "KeyAgreementAlgorithm"), "ECDH");

    // ML-KEM-768: python encapsulates to the token's key; the token decapsulates to its secret.
    let kem = field(
        &env.json(&["create-key", "--key-spec", "ML_KEM_768", "--key-usage", "ENCAPSULATE_DECAPSULATE"]),
        "KeyMetadata.KeyId",
    );
    std::fs::write(
        env.file("kem.der"),
        unb64(&field(&env.json(&["get-public-key", "--key-id", &kem]), "PublicKey")),
    )
    .unwrap();
    let script = "import sys\nfrom cryptography.hazmat.primitives.serialization import load_der_public_key\n\
                  ss, ct = load_der_public_key(open(sys.argv[1], 'rb').read()).encapsulate()\n\
                  open(sys.argv[2], 'wb').write(ct); print(ss.hex())\n";
    let ss_hex = succeeds(
        "python3",
        &[
            OsStr::new("-c"),
            OsStr::new(script),
            env.file("kem.der").as_os_str(),
            env.file("kem.ct").as_os_str(),
        ],
    );
    let ct_arg = format!("fileb://{}", env.file("kem.ct").display());
    let out = env.json(&[
        "decapsulate",
        "--key-id",
        &kem,
        "--encapsulation-algorithm",
        "ML_KEM",
        "--shared-secret-ciphertext-blob",
        &ct_arg,
    ]);
    let got: String = unb64(&field(&out, "SharedSecret")).iter().map(|b| format!("{b:02x}")).collect();
    assert_eq!(got, String::from_utf8_lossy(&ss_hex).trim());
    let enc = env.json(&["encapsulate", "--key-id", &kem, "--encapsulation-algorithm", "ML_KEM"]);
    let back = env.json(&[
        "decapsulate",
        "--key-id",
        &kem,
        "--shared-secret-ciphertext-blob",
        &field(&enc, "SharedSecretCiphertextBlob"),
    ]);
    assert_eq!(field(&back, "SharedSecret"), field(&enc, "SharedSecret"));

    // A data key pair: the blob decrypts to the plaintext private key.
    let sym = field(&env.json(&["create-key"]), "KeyMetadata.KeyId");
    let pair = env.json(&[
        "generate-data-key-pair",
        "--key-id",
        &sym,
        "--key-pair-spec",
        "ECC_NIST_EDWARDS25519",
        "--encryption-context",
        "app=t",
    ]);
    let plain = env.json(&[
        "decrypt",
        "--ciphertext-blob",
        &field(&pair, "PrivateKeyCiphertextBlob"),
        "--encryption-context",
        "app=t",
    ]);
    assert_eq!(field(&plain, "Plaintext"), field(&pair, "PrivateKeyPlaintext"));
    let without = env.json(&[
        "generate-data-key-pair-without-plaintext",
        "--key-id",
        &sym,
        "--key-pair-spec",
        "ECC_NIST_P384",
    ]);
    assert!(without.get("PrivateKeyPlaintext").is_none());
    assert_eq!(field(&without, "KeyPairSpec"), "ECC_NIST_P384");
}
