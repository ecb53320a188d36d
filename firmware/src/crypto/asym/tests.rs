//! The key specs checked against independent implementations: python `cryptography` 48 (OpenSSL)
//! for public keys, PKCS#8, signatures, ML-KEM and ECDH, a transcription of RFC 8032's reference
//! code for Ed25519ph, and `openssl pkeyutl -derive` for ECDH. Then every refusal the API promises.

use std::io::Write as _;
use std::process::{Command, Stdio};

use rand_chacha::rand_core::SeedableRng;
use rand_chacha::ChaCha20Rng;

use super::*;

const SCRIPT: &str = include_str!("independent_check.py");

pub(crate) fn hex(b: &[u8]) -> String {
    b.iter().map(|x| format!("{x:02x}")).collect()
}

pub(crate) fn unhex(s: &str) -> Vec<u8> {
    (0..s.len()).step_by(2).map(|i| u8::from_str_radix(&s[i..i + 2], 16).unwrap()).collect()
}

/// Runs the python checker over `requests` (one per line); returns its output lines. Fails loudly
/// when python3 or `cryptography` is missing: these tests are the independent check.
pub(crate) fn python(requests: &str) -> Vec<String> {
    let mut child = Command::new("python3")
        .args(["-c", SCRIPT])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("python3 is needed for the independent checks of crypto::asym (install python3)");
    child.stdin.take().unwrap().write_all(requests.as_bytes()).unwrap();
    let out = child.wait_with_output().unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        !stderr.contains("ModuleNotFoundError"),
        "python `cryptography` >= 48 is needed for the independent checks (pip install cryptography): {stderr}"
    );
    assert!(out.status.success(), "the independent check failed:\n{stderr}");
    String::from_utf8(out.stdout).unwrap().lines().map(str::to_string).collect()
}

fn rng(seed: u64) -> ChaCha20Rng {
    ChaCha20Rng::seed_from_u64(seed)
}

fn key(spec: AsymSpec, seed: u64) -> Vec<u8> {
    let mut stored = [0u8; MAX_STORED];
    let n = generate(spec, &mut rng(seed), &mut stored).unwrap();
    assert_eq!(n, spec.stored_len());
    stored[..n].to_vec()
}

fn spki(spec: AsymSpec, stored: &[u8]) -> Vec<u8> {
    let mut out = [0u8; MAX_PUBLIC_KEY_DER];
    let n = public_key_der(spec, stored, &mut out).unwrap();
    assert_eq!(n, spec.public_key_der_len(), "{}", spec.as_str());
    out[..n].to_vec()
}

fn signature(
    spec: AsymSpec,
    stored: &[u8],
    alg: SigningAlg,
    kind: MessageKind,
    msg: &[u8],
    seed: u64,
) -> Vec<u8> {
    let mut out = [0u8; MAX_SIGNATURE];
    let n = sign(spec, stored, alg, kind, msg, &mut rng(seed), &mut out).unwrap();
    assert!(n <= spec.max_signature_len());
    assert!(verify(spec, stored, alg, kind, msg, &out[..n]).unwrap(), "own signature verifies");
    out[..n].to_vec()
}

const SIGNING: &[AsymSpec] = &[
    AsymSpec::EccNistP256,
    AsymSpec::EccSecgP256k1,
    AsymSpec::EccNistP384,
    AsymSpec::EccNistEdwards25519,
    AsymSpec::MlDsa44,
    AsymSpec::MlDsa65,
    AsymSpec::MlDsa87,
];

fn digest_of(alg: SigningAlg, msg: &[u8]) -> Vec<u8> {
    match alg {
        SigningAlg::EcdsaSha256 => Sha256::digest(msg).to_vec(),
        SigningAlg::EcdsaSha384 => Sha384::digest(msg).to_vec(),
        SigningAlg::Ed25519PhSha512 => Sha512::digest(msg).to_vec(),
        SigningAlg::Ed25519Sha512 | SigningAlg::MlDsaShake256 => unreachable!(),
    }
}

/// μ for pure ML-DSA with an empty context, computed here from the public key.
fn mu(spki_der: &[u8], msg: &[u8]) -> [u8; 64] {
    let pk = &spki_der[22..];
    let mut tr = [0u8; 64];
    pkms_pq::shake::shake256(&[pk], &mut tr);
    let mut mu = [0u8; 64];
    pkms_pq::shake::shake256(&[&tr, &[0, 0], msg], &mut mu);
    mu
}

#[test]
fn public_keys_private_keys_and_signatures_check_out_with_python_cryptography() {
    let mut requests = String::new();
    let msg = b"release 1.2.3 of the thing".to_vec();
    for (i, &spec) in SIGNING.iter().enumerate() {
        let stored = key(spec, 100 + i as u64);
        let public = spki(spec, &stored);
        requests += &format!("spki {} {}\n", spec.as_str(), hex(&public));
        let mut pkcs8 = [0u8; MAX_PRIVATE_KEY_PKCS8];
        let n = private_key_pkcs8(spec, &stored, &mut pkcs8).unwrap();
        assert_eq!(n, spec.private_key_pkcs8_len(), "{}", spec.as_str());
        requests += &format!("pkcs8 {} {} {}\n", spec.as_str(), hex(&pkcs8[..n]), hex(&public));
        if spec.ml_dsa().is_some() {
            requests += &format!("seedpub {} {} {}\n", spec.as_str(), hex(&stored), hex(&public));
        }
        for &alg in spec.signing_algorithms() {
            for &kind in alg.message_kinds() {
                let given = match kind {
                    MessageKind::Raw => msg.clone(),
                    MessageKind::Digest => digest_of(alg, &msg),
                    MessageKind::ExternalMu => mu(&public, &msg).to_vec(),
                };
                for round in 0..3u64 {
                    let sig = signature(spec, &stored, alg, kind, &given, round);
                    // What python verifies is the message (or its digest, for DIGEST).
                    let checked = match kind {
                        MessageKind::ExternalMu => &msg,
                        MessageKind::Raw | MessageKind::Digest => &given,
                    };
                    let python_kind = match kind {
                        MessageKind::ExternalMu => "RAW",
                        MessageKind::Raw | MessageKind::Digest => kind.as_str(),
                    };
                    let line = |cmd: &str, m: &[u8], s: &[u8]| {
                        format!(
                            "{cmd} {} {python_kind} {} {} {}\n",
                            alg.as_str(),
                            hex(&public),
                            hex(m),
                            hex(s)
                        )
                    };
                    requests += &line("verify", checked, &sig);
                    let mut other = checked.clone();
                    other[0] ^= 1;
                    requests += &line("reject", &other, &sig);
                }
            }
        }
    }
    let out = python(&requests);
    assert_eq!(out.len(), requests.lines().count());
    assert!(out.iter().all(|l| l == "ok"));
}

#[test]
fn ed25519ph_reproduces_the_rfc_8032_test_vector() {
    // RFC 8032 section 7.3, Ed25519ph, message "abc".
    let seed = unhex("833fe62409237b9d62ec77587520911e9a759cec1d19755b7da901b96dca3d42");
    let expected = unhex(
        "98a70222f0b8121aa9d30f813d683f809e462b469c7ff87639499bb94e6dae41\
         31f85042463c2a355a2003d062adf5aaa10b8c61e636062aaad11c2a26083406",
    );
    let spec = AsymSpec::EccNistEdwards25519;
    let raw = signature(spec, &seed, SigningAlg::Ed25519PhSha512, MessageKind::Raw, b"abc", 0);
    assert_eq!(raw, expected);
    let digest = Sha512::digest(b"abc");
    let pre = signature(spec, &seed, SigningAlg::Ed25519PhSha512, MessageKind::Digest, &digest, 0);
    assert_eq!(pre, expected);
    let public = spki(spec, &seed);
    assert_eq!(hex(&public[12..]), "ec172b93ad5e563bf4932c70e1245034c35467ef2efd4d64ebf819683467e2bf");
}

#[test]
fn ml_kem_interoperates_with_python_cryptography_both_ways() {
    let mut requests = String::new();
    let mut ours = Vec::new();
    for (i, spec) in [AsymSpec::MlKem768, AsymSpec::MlKem1024].into_iter().enumerate() {
        let stored = key(spec, 200 + i as u64);
        let public = spki(spec, &stored);
        requests += &format!("spki {} {}\n", spec.as_str(), hex(&public));
        requests += &format!("seedpub {} {} {}\n", spec.as_str(), hex(&stored), hex(&public));
        let mut pkcs8 = [0u8; MAX_PRIVATE_KEY_PKCS8];
        let n = private_key_pkcs8(spec, &stored, &mut pkcs8).unwrap();
        requests += &format!("pkcs8 {} {} {}\n", spec.as_str(), hex(&pkcs8[..n]), hex(&public));
        requests += &format!("encaps {}\n", hex(&public));
        // Our encapsulation, for python to decapsulate.
        let mut ct = [0u8; MAX_CIPHERTEXT];
        let mut ss = [0u8; 32];
        let ct_len = encapsulate(spec, &stored, &mut rng(i as u64), &mut ct, &mut ss).unwrap();
        assert_eq!(Some(ct_len), spec.ciphertext_len());
        requests += &format!("decaps {} {} {}\n", spec.as_str(), hex(&stored), hex(&ct[..ct_len]));
        ours.push((spec, stored, ss));
    }
    let out = python(&requests);
    let mut encaps = out.iter().filter(|l| l.starts_with("encaps "));
    let mut decaps = out.iter().filter(|l| l.starts_with("decaps "));
    for (spec, stored, ss) in ours {
        let parts: Vec<&str> = encaps.next().unwrap().split(' ').collect();
        let (ct, expected) = (unhex(parts[1]), unhex(parts[2]));
        let mut shared = [0u8; 32];
        decapsulate(spec, &stored, &ct, &mut shared).unwrap();
        assert_eq!(shared[..], expected[..], "{} decapsulates python's encapsulation", spec.as_str());
        let theirs = unhex(decaps.next().unwrap().split(' ').nth(1).unwrap());
        assert_eq!(theirs[..], ss[..], "python decapsulates {}'s encapsulation", spec.as_str());
        // A changed ciphertext: no error, a secret that is not the real one.
        let mut bad = ct.clone();
        bad[7] ^= 0x10;
        let mut rejected = [0u8; 32];
        decapsulate(spec, &stored, &bad, &mut rejected).unwrap();
        assert_ne!(rejected[..], expected[..]);
    }
}

#[test]
fn ecdh_equals_python_cryptography() {
    let mut requests = String::new();
    let specs = [AsymSpec::EccNistP256, AsymSpec::EccSecgP256k1, AsymSpec::EccNistP384];
    let mut keys = Vec::new();
    for (i, spec) in specs.into_iter().enumerate() {
        let stored = key(spec, 300 + i as u64);
        for _ in 0..3 {
            requests += &format!("ecdh {} {}\n", spec.as_str(), hex(&spki(spec, &stored)));
            keys.push((spec, stored.clone()));
        }
    }
    let out = python(&requests);
    assert_eq!(out.len(), keys.len());
    for ((spec, stored), line) in keys.into_iter().zip(out) {
        let parts: Vec<&str> = line.split(' ').collect();
        let (peer, expected) = (unhex(parts[1]), unhex(parts[2]));
        let mut secret = [0u8; MAX_SHARED_SECRET];
        let n = derive_shared_secret(spec, &stored, &peer, &mut secret).unwrap();
        assert_eq!(Some(n), spec.shared_secret_len());
        assert_eq!(secret[..n], expected[..], "{}", spec.as_str());
    }
}

#[test]
fn ecdh_equals_openssl_pkeyutl_derive() {
    let dir = std::env::temp_dir().join(format!("pkms-ecdh-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let run = |args: &[&str]| {
        let out = Command::new("openssl").args(args).output().expect("openssl is needed for this check");
        assert!(out.status.success(), "openssl {args:?}: {}", String::from_utf8_lossy(&out.stderr));
    };
    for (i, (spec, curve)) in [
        (AsymSpec::EccNistP256, "P-256"),
        (AsymSpec::EccSecgP256k1, "secp256k1"),
        (AsymSpec::EccNistP384, "P-384"),
    ]
    .into_iter()
    .enumerate()
    {
        let stored = key(spec, 400 + i as u64);
        let ours = dir.join("ours.der");
        std::fs::write(&ours, spki(spec, &stored)).unwrap();
        let (peer_key, peer_pub, secret) = (dir.join("peer.pem"), dir.join("peer.der"), dir.join("secret"));
        let p = |path: &std::path::Path| path.to_str().unwrap().to_string();
        run(&[
            "genpkey",
            "-algorithm",
            "EC",
            "-pkeyopt",
            &format!("ec_paramgen_curve:{curve}"),
            "-out",
            &p(&peer_key),
        ]);
        run(&["pkey", "-in", &p(&peer_key), "-pubout", "-outform", "DER", "-out", &p(&peer_pub)]);
        run(&[
            "pkeyutl",
            "-derive",
            "-inkey",
            &p(&peer_key),
            "-peerkey",
            &p(&ours),
            "-peerform",
            "DER",
            "-out",
            &p(&secret),
        ]);
        let expected = std::fs::read(&secret).unwrap();
        let mut got = [0u8; MAX_SHARED_SECRET];
        let n = derive_shared_secret(spec, &stored, &std::fs::read(&peer_pub).unwrap(), &mut got).unwrap();
        assert_eq!(got[..n], expected[..], "{curve}");
    }
    let _ = std::fs::remove_dir_all(&dir);
}

/// A peer SPKI with the given algorithm identifier and point.
fn peer_spki(alg: &[u8], point: &[u8]) -> Vec<u8> {
    let mut out = [0u8; 300];
    let n = der::write_spki(alg, point, &mut out).unwrap();
    out[..n].to_vec()
}

#[test]
fn ecdh_refuses_bad_peer_keys_with_distinct_errors() {
    for (i, (spec, alg)) in [
        (AsymSpec::EccNistP256, der::ALG_P256),
        (AsymSpec::EccSecgP256k1, der::ALG_SECP256K1),
        (AsymSpec::EccNistP384, der::ALG_P384),
    ]
    .into_iter()
    .enumerate()
    {
        let stored = key(spec, 500 + i as u64);
        let peer_key = key(spec, 600 + i as u64);
        let good = spki(spec, &peer_key);
        let point = &good[good.len() - (2 * (spec.shared_secret_len().unwrap()) + 1)..];
        let mut out = [0u8; MAX_SHARED_SECRET];
        let mut derive = |der: &[u8]| derive_shared_secret(spec, &stored, der, &mut out).map(|_| ());
        assert_eq!(derive(&good), Ok(()));
        // Compressed form of the same point: accepted, same secret.
        let coord = (point.len() - 1) / 2;
        let mut compressed = vec![0x02 | (point[point.len() - 1] & 1)];
        compressed.extend_from_slice(&point[1..1 + coord]);
        let mut a = [0u8; MAX_SHARED_SECRET];
        let mut b = [0u8; MAX_SHARED_SECRET];
        derive_shared_secret(spec, &stored, &good, &mut a).unwrap();
        derive_shared_secret(spec, &stored, &peer_spki(alg, &compressed), &mut b).unwrap();
        assert_eq!(a, b);

        let mut off_curve = point.to_vec();
        *off_curve.last_mut().unwrap() ^= 1;
        assert_eq!(derive(&peer_spki(alg, &off_curve)), Err(AsymError::PeerKeyNotOnCurve));
        let zeros = vec![0u8; point.len()];
        let mut origin = zeros.clone();
        origin[0] = 4;
        assert_eq!(derive(&peer_spki(alg, &origin)), Err(AsymError::PeerKeyNotOnCurve));
        assert_eq!(derive(&peer_spki(alg, &[0x00])), Err(AsymError::PeerKeyIdentity));
        let mut hybrid = point.to_vec();
        hybrid[0] = 0x06;
        assert_eq!(derive(&peer_spki(alg, &hybrid)), Err(AsymError::PeerKeyMalformed));
        assert_eq!(derive(&good[..good.len() - 1]), Err(AsymError::PeerKeyMalformed));
        let mut trailing = good.clone();
        trailing.push(0);
        assert_eq!(derive(&trailing), Err(AsymError::PeerKeyMalformed));
        assert_eq!(derive(&[]), Err(AsymError::PeerKeyMalformed));
        // Keys of the other curves, and of Ed25519 / ML-KEM.
        for other in [AsymSpec::EccNistP256, AsymSpec::EccSecgP256k1, AsymSpec::EccNistP384] {
            if other != spec {
                let der = spki(other, &key(other, 700));
                assert_eq!(
                    derive(&der),
                    Err(AsymError::PeerKeyWrongCurve),
                    "{} for {}",
                    other.as_str(),
                    spec.as_str()
                );
            }
        }
        for other in [AsymSpec::EccNistEdwards25519, AsymSpec::MlKem768] {
            assert_eq!(derive(&spki(other, &key(other, 701))), Err(AsymError::PeerKeyNotEc));
        }
    }
    for spec in [AsymSpec::EccNistEdwards25519, AsymSpec::MlDsa44, AsymSpec::MlKem512] {
        let good = spki(AsymSpec::EccNistP256, &key(AsymSpec::EccNistP256, 1));
        let mut out = [0u8; 64];
        assert_eq!(
            derive_shared_secret(spec, &key(spec, 2), &good, &mut out),
            Err(AsymError::OperationNotForSpec)
        );
    }
}

#[test]
fn sign_and_verify_refuse_what_kms_refuses() {
    let mut out = [0u8; MAX_SIGNATURE];
    let mut r = rng(1);
    for &spec in AsymSpec::ALL {
        let stored = key(spec, 9);
        let algs = spec.signing_algorithms();
        for alg in [
            SigningAlg::EcdsaSha256,
            SigningAlg::EcdsaSha384,
            SigningAlg::Ed25519Sha512,
            SigningAlg::Ed25519PhSha512,
            SigningAlg::MlDsaShake256,
        ] {
            for kind in [MessageKind::Raw, MessageKind::Digest, MessageKind::ExternalMu] {
                let result = sign(spec, &stored, alg, kind, &[1u8; 64], &mut r, &mut out);
                let expected = if algs.is_empty() {
                    Err(AsymError::OperationNotForSpec)
                } else if !algs.contains(&alg) {
                    Err(AsymError::AlgorithmNotForSpec)
                } else if !alg.message_kinds().contains(&kind) {
                    Err(AsymError::MessageTypeNotForAlgorithm)
                } else {
                    // Accepted combinations: only the length decides (64 bytes fits RAW, and is the
                    // digest length of SHA-512 and the length of μ).
                    let fits = !(kind == MessageKind::Digest
                        && (alg == SigningAlg::EcdsaSha256 || alg == SigningAlg::EcdsaSha384));
                    if fits {
                        continue;
                    }
                    Err(AsymError::MessageLength)
                };
                assert_eq!(result, expected, "{} {} {}", spec.as_str(), alg.as_str(), kind.as_str());
                let v = verify(spec, &stored, alg, kind, &[1u8; 64], &out[..10]);
                assert_eq!(
                    v,
                    expected.map(|_| false),
                    "verify {} {} {}",
                    spec.as_str(),
                    alg.as_str(),
                    kind.as_str()
                );
            }
            if let Some(&alg) = algs.first() {
                assert_eq!(
                    sign(spec, &stored, alg, MessageKind::Raw, &[], &mut r, &mut out),
                    Err(AsymError::MessageLength)
                );
                assert_eq!(
                    sign(spec, &stored, alg, MessageKind::Raw, &[0; MAX_MESSAGE + 1], &mut r, &mut out),
                    Err(AsymError::MessageLength)
                );
                assert!(
                    sign(spec, &stored, alg, MessageKind::Raw, &[0; MAX_MESSAGE], &mut r, &mut out).is_ok()
                );
                let mut short = [0u8; 10];
                assert_eq!(
                    sign(spec, &stored, alg, MessageKind::Raw, b"m", &mut r, &mut short),
                    Err(AsymError::BufferTooSmall)
                );
            }
        }
    }
}

#[test]
fn signatures_are_rejected_when_anything_changes() {
    for (i, &spec) in SIGNING.iter().enumerate() {
        let stored = key(spec, 800 + i as u64);
        let other_key = key(spec, 900 + i as u64);
        let alg = spec.signing_algorithms()[0];
        let sig = signature(spec, &stored, alg, MessageKind::Raw, b"message", 5);
        let check = |stored: &[u8], msg: &[u8], sig: &[u8]| {
            verify(spec, stored, alg, MessageKind::Raw, msg, sig).unwrap()
        };
        assert!(check(&stored, b"message", &sig));
        assert!(!check(&stored, b"messagf", &sig));
        assert!(!check(&other_key, b"message", &sig));
        for at in [0, sig.len() / 2, sig.len() - 1] {
            let mut bad = sig.clone();
            bad[at] ^= 0x01;
            assert!(!check(&stored, b"message", &bad), "{} byte {at}", spec.as_str());
        }
        assert!(!check(&stored, b"message", &sig[..sig.len() - 1]));
        assert!(!check(&stored, b"message", &[]));
        assert!(!check(&stored, b"message", &[0xff; 5000]));
    }
}

#[test]
fn secp256k1_and_p384_signatures_are_low_s_and_high_s_still_verifies() {
    use ::k256::ecdsa::Signature as K;
    use ::p384::ecdsa::Signature as P;
    let k = key(AsymSpec::EccSecgP256k1, 1);
    let p = key(AsymSpec::EccNistP384, 1);
    for round in 0..16 {
        let sig =
            signature(AsymSpec::EccSecgP256k1, &k, SigningAlg::EcdsaSha256, MessageKind::Raw, b"m", round);
        let parsed = K::from_der(&sig).unwrap();
        assert_eq!(parsed.normalize_s(), parsed, "low-S");
        let high = K::from_scalars(parsed.r(), -*parsed.s()).unwrap().to_der();
        assert!(verify(
            AsymSpec::EccSecgP256k1,
            &k,
            SigningAlg::EcdsaSha256,
            MessageKind::Raw,
            b"m",
            high.as_bytes()
        )
        .unwrap());
        let sig =
            signature(AsymSpec::EccNistP384, &p, SigningAlg::EcdsaSha384, MessageKind::Raw, b"m", round);
        let parsed = P::from_der(&sig).unwrap();
        assert_eq!(parsed.normalize_s(), parsed, "low-S");
    }
}

/// An RNG that only ever returns one byte value.
struct Stuck(u8);

impl RngCore for Stuck {
    fn next_u32(&mut self) -> u32 {
        u32::from_le_bytes([self.0; 4])
    }
    fn next_u64(&mut self) -> u64 {
        u64::from_le_bytes([self.0; 8])
    }
    fn fill_bytes(&mut self, dest: &mut [u8]) {
        dest.fill(self.0)
    }
    fn try_fill_bytes(&mut self, dest: &mut [u8]) -> core::result::Result<(), rand_core::Error> {
        dest.fill(self.0);
        Ok(())
    }
}

impl CryptoRng for Stuck {}

#[test]
fn a_broken_rng_makes_no_ecc_key_instead_of_hanging() {
    let mut out = [0u8; MAX_STORED];
    for spec in [AsymSpec::EccNistP256, AsymSpec::EccSecgP256k1, AsymSpec::EccNistP384] {
        for stuck in [0x00, 0xff] {
            assert_eq!(
                generate(spec, &mut Stuck(stuck), &mut out),
                Err(AsymError::RandomnessFailed),
                "{}",
                spec.as_str()
            );
        }
        // A constant that is a valid scalar is (sadly) accepted: the RNG's health is the board's job.
        assert_eq!(generate(spec, &mut Stuck(0x01), &mut out), Ok(spec.stored_len()));
    }
}

#[test]
fn stored_keys_that_are_not_keys_are_refused() {
    let mut out = [0u8; MAX_PUBLIC_KEY_DER];
    let n_k256 = unhex("fffffffffffffffffffffffffffffffebaaedce6af48a03bbfd25e8cd0364141");
    for (spec, bad) in [
        (AsymSpec::EccNistP256, vec![0u8; 32]),
        (AsymSpec::EccSecgP256k1, n_k256),
        (AsymSpec::EccSecgP256k1, vec![0u8; 32]),
        (AsymSpec::EccNistP384, vec![0xffu8; 48]),
        (AsymSpec::EccNistEdwards25519, vec![1u8; 31]),
        (AsymSpec::MlDsa65, vec![1u8; 33]),
        (AsymSpec::MlKem768, vec![1u8; 32]),
    ] {
        assert_eq!(
            public_key_der(spec, &bad, &mut out),
            Err(AsymError::StoredKeyInvalid),
            "{}",
            spec.as_str()
        );
        assert_eq!(
            private_key_pkcs8(spec, &bad, &mut out),
            Err(AsymError::StoredKeyInvalid),
            "{}",
            spec.as_str()
        );
    }
}

#[test]
fn every_output_buffer_too_small_is_an_error() {
    let mut r = rng(3);
    for &spec in AsymSpec::ALL {
        let stored = key(spec, 3);
        let mut tiny = [0u8; 8];
        assert_eq!(generate(spec, &mut r, &mut tiny[..4]), Err(AsymError::BufferTooSmall));
        assert_eq!(public_key_der(spec, &stored, &mut tiny), Err(AsymError::BufferTooSmall));
        assert_eq!(private_key_pkcs8(spec, &stored, &mut tiny), Err(AsymError::BufferTooSmall));
        if spec.ciphertext_len().is_some() {
            let mut ss = [0u8; 32];
            assert_eq!(
                encapsulate(spec, &stored, &mut r, &mut tiny, &mut ss),
                Err(AsymError::BufferTooSmall)
            );
            assert_eq!(decapsulate(spec, &stored, &tiny, &mut ss), Err(AsymError::CiphertextLength));
        }
        if spec.shared_secret_len().is_some() {
            let peer = spki(spec, &key(spec, 4));
            assert_eq!(derive_shared_secret(spec, &stored, &peer, &mut tiny), Err(AsymError::BufferTooSmall));
        }
    }
}

#[test]
fn random_bytes_as_peer_keys_signatures_and_ciphertexts_never_panic() {
    let mut r = rng(77);
    let mut junk = [0u8; 2000];
    for &spec in AsymSpec::ALL {
        let stored = key(spec, 11);
        for len in [0usize, 1, 2, 44, 88, 91, 120, 768, 1088, 1568, 2000] {
            r.fill_bytes(&mut junk[..len]);
            // A DER-looking prefix half the time.
            if len > 2 && len % 2 == 0 {
                junk[0] = 0x30;
                junk[1] = (len - 2).min(0x7f) as u8;
            }
            let mut out = [0u8; MAX_SIGNATURE];
            let _ = derive_shared_secret(spec, &stored, &junk[..len], &mut out);
            if let Some(&alg) = spec.signing_algorithms().first() {
                let _ = verify(spec, &stored, alg, MessageKind::Raw, b"m", &junk[..len]);
            }
            let mut ss = [0u8; 32];
            let _ = decapsulate(spec, &stored, &junk[..len], &mut ss);
        }
    }
}

#[test]
fn names_sizes_and_lengths_agree_with_the_encoders() {
    for &spec in AsymSpec::ALL {
        let stored = key(spec, 21);
        assert!(spec.stored_len() <= MAX_STORED);
        assert!(spec.public_key_der_len() <= MAX_PUBLIC_KEY_DER);
        assert!(spec.max_signature_len() <= MAX_SIGNATURE);
        assert!(spec.private_key_pkcs8_len() <= MAX_PRIVATE_KEY_PKCS8);
        let mut out = [0u8; MAX_PRIVATE_KEY_PKCS8];
        assert_eq!(private_key_pkcs8(spec, &stored, &mut out), Ok(spec.private_key_pkcs8_len()));
        assert_eq!(spki(spec, &stored).len(), spec.public_key_der_len());
    }
    assert_eq!(AsymSpec::ALL.iter().map(|s| s.public_key_der_len()).max(), Some(MAX_PUBLIC_KEY_DER));
    assert_eq!(AsymSpec::ALL.iter().map(|s| s.private_key_pkcs8_len()).max(), Some(MAX_PRIVATE_KEY_PKCS8));
}
