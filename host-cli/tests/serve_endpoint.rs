//! `pkms serve` driven by AWS's own Rust SDK (aws-sdk-kms), on the in-process token and on the
//! QEMU token: every served operation with KMS's shapes (key ARNs, epoch dates), typed errors,
//! SigV4 refusals (wrong secret, unknown key, other region, expired), principals mapped from
//! access keys on an initialised token, refusals of unsafe start options, and a load of 32
//! concurrent clients.

mod cli_support;

use std::io::{BufRead, BufReader};
use std::process::{Child, Stdio};
use std::time::{Duration, SystemTime};

use aws_credential_types::Credentials;
use aws_sdk_kms::error::ProvideErrorMetadata;
use aws_sdk_kms::primitives::Blob;
use aws_sdk_kms::types::{
    DataKeySpec, GrantOperation, KeySpec, KeyUsageType, MacAlgorithmSpec, MessageType, SigningAlgorithmSpec,
    Tag,
};
use aws_sdk_kms::Client;
use cli_support::Env;

/// A running `pkms serve`; killed when dropped.
struct Server {
    child: Child,
    url: String,
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Starts `pkms serve --listen 127.0.0.1:0 EXTRA…` in `env` and waits for its export line.
fn serve(env: &Env, extra: &[&str], envs: &[(&str, &str)]) -> Server {
    let mut args = vec!["serve", "--listen", "127.0.0.1:0"];
    args.extend_from_slice(extra);
    let mut cmd = env.command(&args);
    for (k, v) in envs {
        cmd.env(k, v);
    }
    let mut child = cmd.stdout(Stdio::piped()).stderr(Stdio::inherit()).spawn().expect("start pkms serve");
    let stdout = child.stdout.take().expect("stdout");
    let mut lines = BufReader::new(stdout).lines();
    let url = loop {
        match lines.next() {
            Some(Ok(line)) => {
                if let Some(u) = line.strip_prefix("export AWS_ENDPOINT_URL_KMS=") {
                    break u.to_owned();
                }
            }
            _ => {
                let status = child.wait();
                panic!("pkms serve ended before printing its URL: {status:?}");
            }
        }
    };
    // Keep draining stdout so the server never blocks on a full pipe.
    std::thread::spawn(move || for _ in lines {});
    Server { child, url }
}

fn client_with(url: &str, akid: &str, secret: &str, region: &str, clock: Option<SystemTime>) -> Client {
    let mut b = aws_sdk_kms::Config::builder()
        .endpoint_url(url)
        .region(aws_sdk_kms::config::Region::new(region.to_owned()))
        .credentials_provider(Credentials::new(akid, secret, None, None, "test"))
        .http_client(aws_smithy_http_client::Builder::new().build_http())
        .retry_config(aws_sdk_kms::config::retry::RetryConfig::disabled());
    if let Some(t) = clock {
        b = b.time_source(aws_smithy_async::time::StaticTimeSource::new(t));
    }
    Client::from_conf(b.build())
}

fn client(url: &str) -> Client {
    client_with(url, "AKIDTEST", "test-secret", "us-east-1", None)
}

fn rt() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().expect("runtime")
}

/// The exception name of a failed call.
fn code<T, E: ProvideErrorMetadata + std::fmt::Debug, R: std::fmt::Debug>(
    r: Result<T, aws_sdk_kms::error::SdkError<E, R>>,
) -> String {
    match r {
        Ok(_) => "succeeded".to_owned(),
        Err(e) => match e.as_service_error() {
            Some(s) => s.code().unwrap_or("no code").to_owned(),
            None => format!("not a service error: {e:?}"),
        },
    }
}

/// Every served operation through the SDK, with KMS's shapes and typed errors.
async fn every_operation(kms: &Client) {
    // Keys and their metadata.
    let meta = kms
        .create_key()
        .description("sdk")
        .tags(Tag::builder().tag_key("team").tag_value("a").build().unwrap())
        .send()
        .await
        .unwrap()
        .key_metadata
        .unwrap();
    let kid = meta.key_id().to_owned();
    let arn = meta.arn().unwrap().to_owned();
    assert_eq!(arn, format!("arn:aws:kms:us-east-1:111122223333:key/{kid}"));
    assert_eq!(meta.aws_account_id(), Some("111122223333"));
    assert_eq!(meta.origin().map(|o| o.as_str()), Some("AWS_KMS"));
    assert_eq!(meta.key_manager().map(|o| o.as_str()), Some("CUSTOMER"));
    assert_eq!(meta.multi_region(), Some(false));
    assert_eq!(meta.key_spec(), Some(&KeySpec::SymmetricDefault));
    let created = meta.creation_date().unwrap().secs();
    let now = SystemTime::now().duration_since(SystemTime::UNIX_EPOCH).unwrap().as_secs() as i64;
    assert!((created - now).abs() < 300, "CreationDate {created} is an epoch date near {now}");
    let d = kms.describe_key().key_id(&arn).send().await.unwrap().key_metadata.unwrap();
    assert_eq!(d.description(), Some("sdk"));
    kms.update_key_description().key_id(&kid).description("renamed").send().await.unwrap();
    assert_eq!(
        kms.describe_key().key_id(&kid).send().await.unwrap().key_metadata.unwrap().description(),
        Some("renamed")
    );
    let keys = kms.list_keys().send().await.unwrap();
    assert!(keys
        .keys()
        .iter()
        .any(|k| k.key_id() == Some(kid.as_str()) && k.key_arn() == Some(arn.as_str())));
    assert_eq!(
        code(kms.describe_key().key_id("11111111-2222-3333-4444-555555555555").send().await),
        "NotFoundException"
    );
    let typed = kms.describe_key().key_id("11111111-2222-3333-4444-555555555555").send().await.unwrap_err();
    assert!(typed.into_service_error().is_not_found_exception(), "a typed NotFoundException");

    // Aliases: every KeyId form where KMS takes them.
    let alias = format!("alias/sdk-{}", &kid[..8]);
    kms.create_alias().alias_name(&alias).target_key_id(&arn).send().await.unwrap();
    let alias_arn = format!("arn:aws:kms:us-east-1:111122223333:{alias}");
    let aliases = kms.list_aliases().key_id(&kid).send().await.unwrap();
    assert_eq!(aliases.aliases()[0].alias_arn(), Some(alias_arn.as_str()));
    assert_eq!(aliases.aliases()[0].target_key_id(), Some(kid.as_str()));
    let ctx = |k: &str, v: &str| std::collections::HashMap::from([(k.to_owned(), v.to_owned())]);
    for form in [&kid, &arn, &alias, &alias_arn] {
        let e = kms
            .encrypt()
            .key_id(form)
            .plaintext(Blob::new(b"attack at dawn".to_vec()))
            .set_encryption_context(Some(ctx("app", "sdk")))
            .send()
            .await
            .unwrap();
        assert_eq!(e.key_id(), Some(arn.as_str()), "Encrypt answers the key ARN");
        let p = kms
            .decrypt()
            .ciphertext_blob(e.ciphertext_blob().unwrap().clone())
            .set_encryption_context(Some(ctx("app", "sdk")))
            .key_id(form)
            .send()
            .await
            .unwrap();
        assert_eq!(p.plaintext().unwrap().as_ref(), b"attack at dawn");
        assert_eq!(p.key_id(), Some(arn.as_str()));
    }
    assert_ne!(code(kms.disable_key().key_id(&alias).send().await), "succeeded", "DisableKey takes no alias");
    let blob = kms
        .encrypt()
        .key_id(&kid)
        .plaintext(Blob::new(b"x".to_vec()))
        .send()
        .await
        .unwrap()
        .ciphertext_blob
        .unwrap();
    assert_eq!(
        code(
            kms.decrypt()
                .ciphertext_blob(blob.clone())
                .set_encryption_context(Some(ctx("a", "b")))
                .send()
                .await
        ),
        "InvalidCiphertextException"
    );
    assert_eq!(
        code(kms.encrypt().key_id(&kid).plaintext(Blob::new(vec![0; 4097])).send().await),
        "ValidationException"
    );
    kms.update_alias().alias_name(&alias).target_key_id(&kid).send().await.unwrap();

    // Data keys, random, re-encryption.
    let dk = kms.generate_data_key().key_id(&alias).key_spec(DataKeySpec::Aes256).send().await.unwrap();
    assert_eq!(dk.plaintext().unwrap().as_ref().len(), 32);
    assert_eq!(dk.key_id(), Some(arn.as_str()));
    let back = kms.decrypt().ciphertext_blob(dk.ciphertext_blob().unwrap().clone()).send().await.unwrap();
    assert_eq!(back.plaintext(), dk.plaintext());
    let nk = kms.generate_data_key_without_plaintext().key_id(&kid).number_of_bytes(16).send().await.unwrap();
    assert!(nk.ciphertext_blob().is_some());
    assert_eq!(code(kms.generate_data_key().key_id(&kid).send().await), "ValidationException");
    assert_eq!(
        kms.generate_random().number_of_bytes(64).send().await.unwrap().plaintext().unwrap().as_ref().len(),
        64
    );
    assert_eq!(code(kms.generate_random().number_of_bytes(1025).send().await), "ValidationException");
    let kid2 = kms.create_key().send().await.unwrap().key_metadata.unwrap().key_id().to_owned();
    let re = kms.re_encrypt().ciphertext_blob(blob.clone()).destination_key_id(&kid2).send().await.unwrap();
    assert!(re.key_id().unwrap().ends_with(&kid2) && re.source_key_id() == Some(arn.as_str()));

    // Key states.
    kms.disable_key().key_id(&arn).send().await.unwrap();
    let disabled = kms.encrypt().key_id(&kid).plaintext(Blob::new(b"x".to_vec())).send().await.unwrap_err();
    assert!(disabled.into_service_error().is_disabled_exception(), "a typed DisabledException");
    kms.enable_key().key_id(&kid).send().await.unwrap();
    let sched = kms.schedule_key_deletion().key_id(&kid2).pending_window_in_days(7).send().await.unwrap();
    assert!(sched.key_id().unwrap().ends_with(&kid2));
    assert!(sched.deletion_date().unwrap().secs() > now);
    assert_eq!(
        code(kms.schedule_key_deletion().key_id(&kid).pending_window_in_days(6).send().await),
        "ValidationException"
    );
    let cancelled = kms.cancel_key_deletion().key_id(&kid2).send().await.unwrap();
    assert_eq!(cancelled.key_id(), Some(format!("arn:aws:kms:us-east-1:111122223333:key/{kid2}").as_str()));

    // Rotation.
    kms.enable_key_rotation().key_id(&kid).rotation_period_in_days(90).send().await.unwrap();
    let st = kms.get_key_rotation_status().key_id(&kid).send().await.unwrap();
    assert!(st.key_rotation_enabled() && st.rotation_period_in_days() == Some(90));
    kms.disable_key_rotation().key_id(&kid).send().await.unwrap();
    assert_eq!(code(kms.enable_key_rotation().key_id(&alias).send().await), "NotFoundException");
    kms.rotate_key_on_demand().key_id(&kid).send().await.unwrap();
    let rot = kms.list_key_rotations().key_id(&kid).send().await.unwrap();
    assert_eq!(rot.rotations().len(), 1, "the default listing leaves the original material out");
    let all = kms
        .list_key_rotations()
        .key_id(&kid)
        .include_key_material(aws_sdk_kms::types::IncludeKeyMaterial::AllKeyMaterial)
        .send()
        .await
        .unwrap();
    assert_eq!(all.rotations().len(), 2);
    let old = kms.decrypt().ciphertext_blob(blob).send().await.unwrap();
    assert_eq!(old.plaintext().unwrap().as_ref(), b"x");

    // Tags.
    kms.tag_resource()
        .key_id(&kid)
        .tags(Tag::builder().tag_key("env").tag_value("ci").build().unwrap())
        .send()
        .await
        .unwrap();
    kms.untag_resource().key_id(&kid).tag_keys("team").send().await.unwrap();
    let tags = kms.list_resource_tags().key_id(&kid).send().await.unwrap();
    assert_eq!(tags.tags().iter().map(|t| t.tag_key()).collect::<Vec<_>>(), vec!["env"]);

    // Signing.
    let s = kms
        .create_key()
        .key_spec(KeySpec::EccNistP256)
        .key_usage(KeyUsageType::SignVerify)
        .send()
        .await
        .unwrap()
        .key_metadata
        .unwrap()
        .key_id()
        .to_owned();
    let public = kms.get_public_key().key_id(&s).send().await.unwrap();
    assert_eq!(public.key_spec(), Some(&KeySpec::EccNistP256));
    let sig = kms
        .sign()
        .key_id(&s)
        .message(Blob::new(b"release".to_vec()))
        .message_type(MessageType::Raw)
        .signing_algorithm(SigningAlgorithmSpec::EcdsaSha256)
        .send()
        .await
        .unwrap()
        .signature
        .unwrap();
    {
        use p256::ecdsa::signature::Verifier;
        use p256::pkcs8::DecodePublicKey;
        let vk =
            p256::ecdsa::VerifyingKey::from_public_key_der(public.public_key().unwrap().as_ref()).unwrap();
        let sig = p256::ecdsa::Signature::from_der(sig.as_ref()).unwrap();
        vk.verify(b"release", &sig).expect("the signature verifies offline");
    }
    let v = kms
        .verify()
        .key_id(&s)
        .message(Blob::new(b"release".to_vec()))
        .signature(sig.clone())
        .signing_algorithm(SigningAlgorithmSpec::EcdsaSha256)
        .send()
        .await
        .unwrap();
    assert!(v.signature_valid());
    let bad = kms
        .verify()
        .key_id(&s)
        .message(Blob::new(b"other".to_vec()))
        .signature(sig)
        .signing_algorithm(SigningAlgorithmSpec::EcdsaSha256)
        .send()
        .await
        .unwrap_err();
    assert!(bad.into_service_error().is_kms_invalid_signature_exception());
    let usage = kms.encrypt().key_id(&s).plaintext(Blob::new(b"x".to_vec())).send().await.unwrap_err();
    assert!(usage.into_service_error().is_invalid_key_usage_exception());

    // MACs.
    let m = kms
        .create_key()
        .key_spec(KeySpec::Hmac256)
        .key_usage(KeyUsageType::GenerateVerifyMac)
        .send()
        .await
        .unwrap()
        .key_metadata
        .unwrap()
        .key_id()
        .to_owned();
    let mac = kms
        .generate_mac()
        .key_id(&m)
        .message(Blob::new(b"msg".to_vec()))
        .mac_algorithm(MacAlgorithmSpec::HmacSha256)
        .send()
        .await
        .unwrap()
        .mac
        .unwrap();
    let ok = kms
        .verify_mac()
        .key_id(&m)
        .message(Blob::new(b"msg".to_vec()))
        .mac_algorithm(MacAlgorithmSpec::HmacSha256)
        .mac(mac.clone())
        .send()
        .await
        .unwrap();
    assert!(ok.mac_valid());
    let wrong = kms
        .verify_mac()
        .key_id(&m)
        .message(Blob::new(b"msh".to_vec()))
        .mac_algorithm(MacAlgorithmSpec::HmacSha256)
        .mac(mac)
        .send()
        .await
        .unwrap_err();
    assert!(wrong.into_service_error().is_kms_invalid_mac_exception());

    // Policies and grants.
    let policy = kms.get_key_policy().key_id(&kid).send().await.unwrap();
    assert_eq!(policy.policy_name(), Some("default"));
    assert!(policy.policy().unwrap().contains("Statement"));
    kms.put_key_policy()
        .key_id(&kid)
        .policy(r#"{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Principal":{"Pkms":["role/admin"]},"Action":"kms:*","Resource":"*"}]}"#)
        .send()
        .await
        .unwrap();
    assert_eq!(
        code(kms.put_key_policy().key_id(&kid).policy("{not a policy").send().await),
        "MalformedPolicyDocumentException"
    );
    assert_eq!(kms.list_key_policies().key_id(&kid).send().await.unwrap().policy_names(), ["default"]);
    // Grants name principals, which only an initialised token has (access_keys_act_as_their_principals).
    let nobody = kms
        .create_grant()
        .key_id(&kid)
        .grantee_principal("nobody")
        .operations(GrantOperation::Encrypt)
        .send()
        .await;
    assert_eq!(code(nobody), "NotFoundException");
    kms.delete_alias().alias_name(&alias).send().await.unwrap();

    key_specs(kms, &kid).await;
}

/// The key specs beyond P-256 and their operations, as an SDK calls them.
async fn key_specs(kms: &Client, symmetric: &str) {
    use aws_sdk_kms::types::{DataKeyPairSpec, EncapsulationAlgorithmSpec, KeyAgreementAlgorithmSpec};
    let create = |spec: KeySpec, usage: KeyUsageType| async move {
        let meta =
            kms.create_key().key_spec(spec).key_usage(usage).send().await.unwrap().key_metadata.unwrap();
        meta.key_id().to_owned()
    };
    // A data key pair: the blob decrypts to the private key.
    let pair = kms
        .generate_data_key_pair()
        .key_id(symmetric)
        .key_pair_spec(DataKeyPairSpec::EccNistP256)
        .send()
        .await
        .unwrap();
    assert_eq!(pair.key_pair_spec(), Some(&DataKeyPairSpec::EccNistP256));
    let back = kms
        .decrypt()
        .ciphertext_blob(pair.private_key_ciphertext_blob().unwrap().clone())
        .send()
        .await
        .unwrap();
    assert_eq!(back.plaintext().unwrap().as_ref(), pair.private_key_plaintext().unwrap().as_ref());
    {
        use p256::pkcs8::{DecodePrivateKey, EncodePublicKey};
        let sk = p256::SecretKey::from_pkcs8_der(pair.private_key_plaintext().unwrap().as_ref()).unwrap();
        let der = sk.public_key().to_public_key_der().unwrap();
        assert_eq!(der.as_bytes(), pair.public_key().unwrap().as_ref());
    }
    // Ed25519: Sign and Verify.
    let ed = create(KeySpec::EccNistEdwards25519, KeyUsageType::SignVerify).await;
    let sig = kms
        .sign()
        .key_id(&ed)
        .message(Blob::new(b"release".to_vec()))
        .message_type(MessageType::Raw)
        .signing_algorithm(SigningAlgorithmSpec::Ed25519Sha512)
        .send()
        .await
        .unwrap()
        .signature
        .unwrap();
    assert_eq!(sig.as_ref().len(), 64);
    let v = kms
        .verify()
        .key_id(&ed)
        .message(Blob::new(b"release".to_vec()))
        .signature(sig)
        .signing_algorithm(SigningAlgorithmSpec::Ed25519Sha512)
        .send()
        .await
        .unwrap();
    assert!(v.signature_valid());
    // A signing key does not rotate, as in KMS, until tagged to (the token decides, so the
    // endpoint agrees with the CLI).
    assert_eq!(code(kms.rotate_key_on_demand().key_id(&ed).send().await), "UnsupportedOperationException");
    assert_eq!(code(kms.enable_key_rotation().key_id(&ed).send().await), "UnsupportedOperationException");
    let opt_in = Tag::builder().tag_key("pkms:AllowSigningKeyRotation").tag_value("true").build().unwrap();
    kms.tag_resource().key_id(&ed).tags(opt_in).send().await.unwrap();
    kms.enable_key_rotation().key_id(&ed).send().await.unwrap();
    let wrong = kms
        .sign()
        .key_id(&ed)
        .message(Blob::new(b"release".to_vec()))
        .signing_algorithm(SigningAlgorithmSpec::EcdsaSha256)
        .send()
        .await;
    assert_eq!(code(wrong), "InvalidKeyUsageException");
    // ML-KEM-768: Encapsulate, then Decapsulate to the same secret.
    let kem = create(KeySpec::MlKem768, KeyUsageType::EncapsulateDecapsulate).await;
    let enc = kms
        .encapsulate()
        .key_id(&kem)
        .encapsulation_algorithm(EncapsulationAlgorithmSpec::MlKem)
        .send()
        .await
        .unwrap();
    let dec = kms
        .decapsulate()
        .key_id(&kem)
        .encapsulation_algorithm(EncapsulationAlgorithmSpec::MlKem)
        .shared_secret_ciphertext_blob(enc.shared_secret_ciphertext_blob().unwrap().clone())
        .send()
        .await
        .unwrap();
    assert_eq!(dec.shared_secret().unwrap().as_ref(), enc.shared_secret().unwrap().as_ref());
    // ECDH between two KEY_AGREEMENT keys agrees both ways.
    let a = create(KeySpec::EccSecgP256K1, KeyUsageType::KeyAgreement).await;
    let b = create(KeySpec::EccSecgP256K1, KeyUsageType::KeyAgreement).await;
    let pub_of =
        |k: String| async move { kms.get_public_key().key_id(k).send().await.unwrap().public_key.unwrap() };
    let derive = |k: String, peer: Blob| async move {
        kms.derive_shared_secret()
            .key_id(k)
            .key_agreement_algorithm(KeyAgreementAlgorithmSpec::Ecdh)
            .public_key(peer)
            .send()
            .await
            .unwrap()
            .shared_secret
            .unwrap()
    };
    let ab = derive(a.clone(), pub_of(b.clone()).await).await;
    let ba = derive(b.clone(), pub_of(a.clone()).await).await;
    assert_eq!(ab.as_ref(), ba.as_ref());
    assert_eq!(ab.as_ref().len(), 32);
}

#[test]
fn every_operation_on_the_in_process_token() {
    let env = Env::in_process();
    let server = serve(&env, &[], &[]);
    rt().block_on(every_operation(&client(&server.url)));
}

#[test]
fn every_operation_on_the_qemu_token() {
    let env = Env::qemu();
    let server = serve(&env, &[], &[]);
    rt().block_on(every_operation(&client(&server.url)));
    drop(server);
}

const CREDENTIALS: &str = r#"{"Credentials": [
  {"AccessKeyId": "AKIDADMIN", "SecretAccessKey": "admin-secret", "Principal": "admin", "PinEnv": "TEST_ADMIN_PIN"},
  {"AccessKeyId": "AKIDBOB", "SecretAccessKey": "bob-secret", "Principal": "bob", "PinFile": "PINFILE"}
]}"#;

fn credentials_file(env: &Env) -> String {
    let pin_file = env.file("bob.pin");
    std::fs::write(&pin_file, "135790\n").unwrap();
    let path = env.file("credentials.json");
    std::fs::write(&path, CREDENTIALS.replace("PINFILE", &pin_file.display().to_string())).unwrap();
    path.display().to_string()
}

/// Signatures are verified against the credentials file: a wrong secret, an unknown access
/// key, another region and a request from 10 minutes ago are refused with AWS's exceptions.
#[test]
fn sigv4_failures_get_the_exceptions_aws_gives_in_process() {
    sigv4_failures(&Env::in_process());
}

#[test]
fn sigv4_failures_get_the_exceptions_aws_gives_qemu() {
    sigv4_failures(&Env::qemu());
}

fn sigv4_failures(env: &Env) {
    let creds = credentials_file(env);
    let server = serve(env, &["--credentials", &creds], &[]);
    rt().block_on(async {
        let good = client_with(&server.url, "AKIDADMIN", "admin-secret", "us-east-1", None);
        good.list_keys().send().await.expect("the right secret is accepted");
        let wrong = client_with(&server.url, "AKIDADMIN", "not-the-secret", "us-east-1", None);
        assert_eq!(code(wrong.list_keys().send().await), "InvalidSignatureException");
        let unknown = client_with(&server.url, "AKIDNOBODY", "admin-secret", "us-east-1", None);
        assert_eq!(code(unknown.list_keys().send().await), "UnrecognizedClientException");
        let region = client_with(&server.url, "AKIDADMIN", "admin-secret", "eu-west-1", None);
        assert_eq!(code(region.list_keys().send().await), "InvalidSignatureException");
        let past = SystemTime::now() - Duration::from_secs(600);
        let expired = client_with(&server.url, "AKIDADMIN", "admin-secret", "us-east-1", Some(past));
        let err = expired.list_keys().send().await.unwrap_err();
        let msg = err.as_service_error().and_then(|e| e.message()).unwrap_or_default().to_owned();
        assert_eq!(err.as_service_error().and_then(|e| e.code()), Some("InvalidSignatureException"));
        assert!(msg.contains("Signature expired"), "{msg}");
    });
}

/// On an initialised token each access key acts as its principal: bob cannot use the
/// administrator's key until granted, and then can.
#[test]
fn access_keys_act_as_their_principals_in_process() {
    access_keys_act_as_their_principals(&Env::in_process());
}

#[test]
fn access_keys_act_as_their_principals_qemu() {
    access_keys_act_as_their_principals(&Env::qemu());
}

fn access_keys_act_as_their_principals(env: &Env) {
    let init = env.command(&["init"]).env("PKMS_PIN", "246810").env("PKMS_PUK", "12345678").output().unwrap();
    assert!(init.status.success(), "{}", String::from_utf8_lossy(&init.stderr));
    let bob = env
        .command(&["create-principal", "--name", "bob", "--role", "user"])
        .env("PKMS_PIN", "246810")
        .env("PKMS_NEW_PIN", "135790")
        .output()
        .unwrap();
    assert!(bob.status.success(), "{}", String::from_utf8_lossy(&bob.stderr));
    // Without a credentials file an initialised token is not served.
    let refused = env.command(&["serve", "--listen", "127.0.0.1:0"]).output().unwrap();
    assert!(!refused.status.success());
    assert!(String::from_utf8_lossy(&refused.stderr).contains("--credentials"));
    let creds = credentials_file(env);
    let server = serve(env, &["--credentials", &creds], &[("TEST_ADMIN_PIN", "246810")]);
    rt().block_on(async {
        let admin = client_with(&server.url, "AKIDADMIN", "admin-secret", "us-east-1", None);
        let bob = client_with(&server.url, "AKIDBOB", "bob-secret", "us-east-1", None);
        let kid = admin.create_key().send().await.unwrap().key_metadata.unwrap().key_id().to_owned();
        let denied = bob.encrypt().key_id(&kid).plaintext(Blob::new(b"x".to_vec())).send().await;
        assert_eq!(code(denied), "AccessDeniedException");
        admin
            .create_grant()
            .key_id(&kid)
            .grantee_principal("bob")
            .operations(GrantOperation::Encrypt)
            .send()
            .await
            .unwrap();
        bob.encrypt().key_id(&kid).plaintext(Blob::new(b"x".to_vec())).send().await.expect("granted");
        let own = bob.create_key().send().await.unwrap().key_metadata.unwrap().key_id().to_owned();
        bob.encrypt().key_id(&own).plaintext(Blob::new(b"y".to_vec())).send().await.expect("bob's own key");
        let other = admin.create_key().send().await.unwrap().key_metadata.unwrap();
        grants(&admin, other.key_id(), other.arn().unwrap()).await;
    });
}

/// Every grant operation, by `admin` on its key `kid` (whose ARN is `arn`) for bob.
async fn grants(kms: &Client, kid: &str, arn: &str) {
    let grant = kms
        .create_grant()
        .key_id(kid)
        .grantee_principal("bob")
        .operations(GrantOperation::Encrypt)
        .operations(GrantOperation::Decrypt)
        .name("sdk-grant")
        .send()
        .await
        .unwrap();
    let gid = grant.grant_id().unwrap().to_owned();
    assert_ne!(grant.grant_token(), Some(gid.as_str()), "a grant token is not the grant id");
    let grants = kms.list_grants().key_id(kid).send().await.unwrap();
    let g = grants.grants().iter().find(|g| g.grant_id() == Some(gid.as_str())).expect("the grant is listed");
    assert_eq!(g.key_id(), Some(arn));
    assert_eq!(g.name(), Some("sdk-grant"));
    assert_eq!(g.issuing_account(), Some("arn:aws:iam::111122223333:root"));
    let retirable = kms.list_retirable_grants().retiring_principal("bob").send().await.unwrap();
    assert!(retirable.grants().iter().any(|g| g.grant_id() == Some(gid.as_str())));
    kms.retire_grant().grant_token(grant.grant_token().unwrap()).send().await.unwrap();
    let g2 = kms
        .create_grant()
        .key_id(kid)
        .grantee_principal("bob")
        .operations(GrantOperation::Encrypt)
        .send()
        .await
        .unwrap();
    kms.revoke_grant().key_id(kid).grant_id(g2.grant_id().unwrap()).send().await.unwrap();
    assert!(kms.list_grants().key_id(kid).send().await.unwrap().grants().is_empty());
}

#[test]
fn a_non_loopback_listener_needs_tls() {
    let env = Env::in_process();
    let out = env.command(&["serve", "--listen", "0.0.0.0:0"]).output().unwrap();
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("--tls-cert"));
}

/// 32 clients at once, 10,000 requests in all (Encrypt then Decrypt of a distinct plaintext):
/// every answer correct, none lost.
#[test]
fn thirty_two_concurrent_clients_lose_nothing() {
    let env = Env::in_process();
    let server = serve(&env, &[], &[]);
    const CLIENTS: usize = 32;
    const REQUESTS: usize = 10_000;
    rt().block_on(async {
        let kms = client(&server.url);
        let kid = kms.create_key().send().await.unwrap().key_metadata.unwrap().key_id().to_owned();
        // Each step is an Encrypt and a Decrypt of its own plaintext; clients take steps until
        // REQUESTS requests have been made.
        let next = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(0));
        let mut tasks = Vec::new();
        for c in 0..CLIENTS {
            let kms = client(&server.url);
            let kid = kid.clone();
            let next = next.clone();
            tasks.push(tokio::spawn(async move {
                let mut answered = 0usize;
                loop {
                    let step = next.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
                    if step >= REQUESTS / 2 {
                        return answered;
                    }
                    let text = format!("client {c} step {step}");
                    let blob = kms
                        .encrypt()
                        .key_id(&kid)
                        .plaintext(Blob::new(text.clone().into_bytes()))
                        .send()
                        .await
                        .expect("Encrypt")
                        .ciphertext_blob
                        .unwrap();
                    let plain =
                        kms.decrypt().ciphertext_blob(blob).send().await.expect("Decrypt").plaintext.unwrap();
                    assert_eq!(plain.as_ref(), text.as_bytes(), "the answer to step {step}");
                    answered += 2;
                }
            }));
        }
        let mut total = 0;
        for t in tasks {
            total += tokio::time::timeout(Duration::from_secs(600), t).await.expect("in time").expect("task");
        }
        assert_eq!(total, REQUESTS, "every request answered");
    });
}

/// The QEMU token killed under the server: the next call fails within a bounded time with the
/// exception KMS gives for an unreachable dependency (HTTP 503, which SDKs retry), the server
/// stays up, and the call after it reaches the token again (started anew over the same flash: the key is still there).
#[test]
fn the_token_going_away_is_a_bounded_error_then_it_is_reached_again() {
    let env = Env::qemu();
    let server = serve(&env, &[], &[]);
    let pid_of_qemu = || {
        let out = env.run(&["token", "status", "--query", "Pid", "--output", "text"]);
        String::from_utf8_lossy(&out.stdout).trim().to_owned()
    };
    rt().block_on(async {
        let kms = client(&server.url);
        let kid = kms.create_key().send().await.unwrap().key_metadata.unwrap().key_id().to_owned();
        let blob = kms.encrypt().key_id(&kid).plaintext(Blob::new(b"kept".to_vec())).send().await.unwrap();
        let pid = pid_of_qemu();
        assert!(pid.parse::<u32>().is_ok(), "QEMU runs: {pid:?}");
        let killed = std::process::Command::new("kill").args(["-KILL", &pid]).status().unwrap();
        assert!(killed.success());
        let started = std::time::Instant::now();
        let lost = kms.describe_key().key_id(&kid).send().await;
        let took = started.elapsed();
        assert_eq!(code(lost), "DependencyTimeoutException");
        assert!(took < Duration::from_secs(40), "answered within a bounded time: {took:?}");
        let back =
            kms.decrypt().ciphertext_blob(blob.ciphertext_blob.unwrap()).send().await.expect("reconnected");
        assert_eq!(back.plaintext().unwrap().as_ref(), b"kept");
        assert_ne!(pid_of_qemu(), pid, "a new QEMU serves the same flash");
    });
}

/// A key ARN the endpoint answers, and an alias ARN, work as `--key-id` in the CLI.
#[test]
fn the_cli_takes_the_arns_the_endpoint_answers() {
    let env = Env::in_process();
    let server = serve(&env, &[], &[]);
    let arn = rt().block_on(async {
        let kms = client(&server.url);
        let meta = kms.create_key().send().await.unwrap().key_metadata.unwrap();
        kms.create_alias().alias_name("alias/cli").target_key_id(meta.key_id()).send().await.unwrap();
        meta.arn().unwrap().to_owned()
    });
    drop(server); // one process at a time on the in-process token's flash
    let alias_arn = "arn:aws:kms:us-east-1:111122223333:alias/cli";
    for key in [arn.as_str(), alias_arn] {
        let out =
            env.run(&["describe-key", "--key-id", key, "--query", "KeyMetadata.KeyId", "--output", "text"]);
        assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
        assert!(arn.ends_with(String::from_utf8_lossy(&out.stdout).trim()), "{key}");
    }
    let bad = env.run(&["describe-key", "--key-id", "arn:aws:s3:::bucket"]);
    assert!(!bad.status.success());
}

/// Every KeyId KMS takes only as a key id or key ARN refuses alias names and alias ARNs at the
/// endpoint with KMS's NotFoundException, and the key is untouched; the key ARN is taken.
#[test]
fn aliases_are_refused_wherever_kms_takes_only_a_key_id() {
    let env = Env::in_process();
    let server = serve(&env, &[], &[]);
    rt().block_on(async {
        let kms = client(&server.url);
        let kid = kms.create_key().send().await.unwrap().key_metadata.unwrap().key_id().to_owned();
        kms.create_alias().alias_name("alias/only-keys").target_key_id(&kid).send().await.unwrap();
        for alias in ["alias/only-keys", "arn:aws:kms:us-east-1:111122223333:alias/only-keys"] {
            let codes = [
                ("EnableKey", code(kms.enable_key().key_id(alias).send().await)),
                ("DisableKey", code(kms.disable_key().key_id(alias).send().await)),
                ("EnableKeyRotation", code(kms.enable_key_rotation().key_id(alias).send().await)),
                ("DisableKeyRotation", code(kms.disable_key_rotation().key_id(alias).send().await)),
                ("GetKeyRotationStatus", code(kms.get_key_rotation_status().key_id(alias).send().await)),
                ("RotateKeyOnDemand", code(kms.rotate_key_on_demand().key_id(alias).send().await)),
                ("ListKeyRotations", code(kms.list_key_rotations().key_id(alias).send().await)),
                ("ScheduleKeyDeletion", code(kms.schedule_key_deletion().key_id(alias).send().await)),
                ("CancelKeyDeletion", code(kms.cancel_key_deletion().key_id(alias).send().await)),
                (
                    "UpdateKeyDescription",
                    code(kms.update_key_description().key_id(alias).description("x").send().await),
                ),
                (
                    "TagResource",
                    code(
                        kms.tag_resource()
                            .key_id(alias)
                            .tags(Tag::builder().tag_key("a").tag_value("1").build().unwrap())
                            .send()
                            .await,
                    ),
                ),
                ("UntagResource", code(kms.untag_resource().key_id(alias).tag_keys("a").send().await)),
                ("ListResourceTags", code(kms.list_resource_tags().key_id(alias).send().await)),
                ("GetKeyPolicy", code(kms.get_key_policy().key_id(alias).send().await)),
                ("ListKeyPolicies", code(kms.list_key_policies().key_id(alias).send().await)),
                (
                    "CreateGrant",
                    code(
                        kms.create_grant()
                            .key_id(alias)
                            .grantee_principal("bob")
                            .operations(GrantOperation::Encrypt)
                            .send()
                            .await,
                    ),
                ),
                ("ListGrants", code(kms.list_grants().key_id(alias).send().await)),
                ("RevokeGrant", code(kms.revoke_grant().key_id(alias).grant_id("g").send().await)),
                ("ListAliases", code(kms.list_aliases().key_id(alias).send().await)),
                (
                    "CreateAlias",
                    code(kms.create_alias().alias_name("alias/other").target_key_id(alias).send().await),
                ),
            ];
            for (op, c) in codes {
                assert_eq!(c, "NotFoundException", "{op} with {alias}");
            }
        }
        let meta = kms.describe_key().key_id(&kid).send().await.unwrap().key_metadata.unwrap();
        assert_eq!(meta.key_state().map(|s| s.as_str()), Some("Enabled"), "nothing was done");
        let arn = meta.arn().unwrap().to_owned();
        kms.disable_key().key_id(&arn).send().await.unwrap();
        kms.enable_key().key_id(&arn).send().await.unwrap();
    });
}

/// The CLI prints what the endpoint answers: the same KeyMetadata (dates aside: ISO-8601 in the
/// CLI, epoch seconds on the wire), the same key ARNs in replies and lists, the same rotations
/// for each IncludeKeyMaterial, the same KMS exception for a retired version; both take the
/// region and account of ARNs from the same --region and --account-id.
#[test]
fn the_cli_prints_what_the_endpoint_answers() {
    use aws_sdk_kms::types::{IncludeKeyMaterial, RotationsListEntry};
    use cli_support::field;
    let env = Env::in_process();
    let scope = ["--region", "eu-west-1", "--account-id", "444455556666"];
    let server = serve(&env, &scope, &[]);
    let materials = |r: &[RotationsListEntry]| {
        r.iter().map(|e| e.key_material_id().unwrap().to_owned()).collect::<Vec<_>>()
    };
    let (meta, alias_arn, blob, encrypt_key_id, rotations, all) = rt().block_on(async {
        let kms = client_with(&server.url, "AKIDANY", "any-secret", "eu-west-1", None);
        let kid = kms
            .create_key()
            .description("both")
            .send()
            .await
            .unwrap()
            .key_metadata
            .unwrap()
            .key_id()
            .to_owned();
        kms.create_alias().alias_name("alias/both").target_key_id(&kid).send().await.unwrap();
        let alias_arn = kms.list_aliases().key_id(&kid).send().await.unwrap().aliases()[0]
            .alias_arn()
            .unwrap()
            .to_owned();
        let enc =
            kms.encrypt().key_id("alias/both").plaintext(Blob::new(b"v1".to_vec())).send().await.unwrap();
        kms.rotate_key_on_demand().key_id(&kid).send().await.unwrap();
        let rotations = kms.list_key_rotations().key_id(&kid).send().await.unwrap();
        let all = kms
            .list_key_rotations()
            .key_id(&kid)
            .include_key_material(IncludeKeyMaterial::AllKeyMaterial)
            .send()
            .await
            .unwrap();
        let meta = kms.describe_key().key_id(&kid).send().await.unwrap().key_metadata.unwrap();
        (
            meta,
            alias_arn,
            enc.ciphertext_blob().unwrap().as_ref().to_vec(),
            enc.key_id().unwrap().to_owned(),
            materials(rotations.rotations()),
            materials(all.rotations()),
        )
    });
    drop(server); // one process at a time on the in-process token's flash
    let kid = meta.key_id().to_owned();
    let arn = meta.arn().unwrap().to_owned();
    assert_eq!(arn, format!("arn:aws:kms:eu-west-1:444455556666:key/{kid}"));
    assert_eq!((rotations.len(), all.len()), (1, 2), "ROTATIONS_ONLY leaves out the original material");
    let cli = |args: &[&str]| env.json(&[&scope[..], args].concat());

    let d = cli(&["describe-key", "--key-id", &arn]);
    let m = &d["KeyMetadata"];
    assert_eq!(field(m, "KeyId"), kid);
    assert_eq!(field(m, "Arn"), arn);
    assert_eq!(Some(field(m, "AWSAccountId").as_str()), meta.aws_account_id());
    assert_eq!(Some(field(m, "Origin").as_str()), meta.origin().map(|o| o.as_str()));
    assert_eq!(Some(field(m, "KeyManager").as_str()), meta.key_manager().map(|o| o.as_str()));
    assert_eq!(
        Some(field(m, "MultiRegion").as_str()),
        meta.multi_region().map(|b| if b { "true" } else { "false" })
    );
    // CustomerMasterKeySpec: KMS's older name of KeySpec (deprecated in the SDK), the same value.
    assert_eq!(Some(field(m, "CustomerMasterKeySpec").as_str()), meta.key_spec().map(|s| s.as_str()));
    assert_eq!(Some(field(m, "KeySpec").as_str()), meta.key_spec().map(|s| s.as_str()));
    assert_eq!(Some(field(m, "CurrentKeyMaterialId").as_str()), meta.current_key_material_id());
    let created = u64::try_from(meta.creation_date().unwrap().secs()).unwrap();
    assert_eq!(field(m, "CreationDate"), pkms_lib::model::encoding::iso8601(created));

    let listed = cli(&["list-keys"]);
    assert!(listed["Keys"].as_array().unwrap().iter().any(|k| field(k, "KeyArn") == arn));
    assert_eq!(field(&cli(&["list-aliases", "--key-id", &arn])["Aliases"][0], "AliasArn"), alias_arn);
    let msg = env.fileb("both-msg", b"v2");
    assert_eq!(
        field(&cli(&["encrypt", "--key-id", "alias/both", "--plaintext", &msg]), "KeyId"),
        encrypt_key_id
    );
    let cli_materials = |extra: &[&str]| {
        let page = cli(&[&["list-key-rotations", "--key-id", &kid][..], extra].concat());
        page["Rotations"].as_array().unwrap().iter().map(|r| field(r, "KeyMaterialId")).collect::<Vec<_>>()
    };
    assert_eq!(cli_materials(&[]), rotations);
    assert_eq!(cli_materials(&["--include-key-material", "ROTATIONS_ONLY"]), rotations);
    assert_eq!(cli_materials(&["--include-key-material", "ALL_KEY_MATERIAL"]), all);

    // A retired version: the same KMS exception from both.
    cli(&["retire-key-versions", "--key-id", &kid, "--below-version", "2", "--yes"]);
    let blob_arg = env.fileb("both.blob", &blob);
    let e = env.fails(&[&scope[..], &["decrypt", "--ciphertext-blob", &blob_arg]].concat(), 254);
    assert_eq!(cli_support::error_type(&e), "KMSInvalidStateException");
    let server = serve(&env, &scope, &[]);
    rt().block_on(async {
        let kms = client_with(&server.url, "AKIDANY", "any-secret", "eu-west-1", None);
        let refused = kms.decrypt().ciphertext_blob(Blob::new(blob)).send().await;
        assert_eq!(code(refused), "KMSInvalidStateException");
    });
}
