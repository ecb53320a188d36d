//! SSHSIG (OpenSSH's PROTOCOL.sshsig): the armored detached signatures of `ssh-keygen -Y sign`,
//! which `ssh-keygen -Y verify` and git (`gpg.format=ssh`) check.
//!
//! The signed data is `"SSHSIG" || string namespace || string reserved || string hash_alg ||
//! string H(message)`: the file is hashed on the host (SHA-512, as ssh-keygen does), and only
//! that short blob goes to the token ([`super::PublicKey::token_request`]).

use std::io::{self, Read};

use sha2::{Digest, Sha256, Sha512};
use ssh_encoding::Encode as _;
use ssh_key::{HashAlg, LineEnding, SshSig};

use super::{FormatError, PublicKey};

/// The namespace of `ssh-keygen -Y sign -n file` and of `pkms sign-file --format ssh`.
pub const DEFAULT_NAMESPACE: &str = "file";
/// The hash of the message: SHA-512, ssh-keygen's default.
pub const HASH: HashAlg = HashAlg::Sha512;
/// The longest namespace accepted.
pub const MAX_NAMESPACE: usize = 256;
const MAGIC: &[u8; 6] = b"SSHSIG";
const READ_CHUNK: usize = 256 * 1024;

/// Checks a namespace. ssh-keygen signs with any non-empty namespace, but an allowed_signers
/// file names the namespaces a key may sign in as a `namespaces="a,b"` pattern list, which
/// cannot name one holding whitespace, control characters, non-ASCII, or any of `,` `"` `*`
/// `?` `!` `\`: those are refused so every signature can be pinned to its namespace.
pub fn check_namespace(namespace: &str) -> Result<(), FormatError> {
    let refuse = |why| Err(FormatError::Namespace(namespace.to_owned(), why));
    if namespace.is_empty() {
        return refuse("it is empty (ssh-keygen needs one, e.g. \"file\" or \"git\")");
    }
    if namespace.len() > MAX_NAMESPACE {
        return refuse("it is longer than 256 bytes");
    }
    if !namespace.bytes().all(|b| b.is_ascii_graphic()) {
        return refuse("only printable ASCII without spaces is allowed");
    }
    if namespace.contains([',', '"', '*', '?', '!', '\\']) {
        return refuse(
            "an allowed_signers namespaces=\"…\" list cannot name it (, \" * ? ! \\ are pattern syntax)",
        );
    }
    Ok(())
}

/// The hash of everything `input` yields with `alg`, in constant memory.
pub fn hash_reader<R: Read + ?Sized>(alg: HashAlg, input: &mut R) -> io::Result<Vec<u8>> {
    enum H {
        S256(Sha256),
        S512(Sha512),
    }
    let mut h = match alg {
        HashAlg::Sha256 => H::S256(Sha256::new()),
        HashAlg::Sha512 => H::S512(Sha512::new()),
        // HashAlg is non-exhaustive in ssh-key; SSHSIG defines only these two.
        _ => return Err(io::Error::new(io::ErrorKind::Unsupported, "unsupported SSHSIG hash")),
    };
    let mut buf = vec![0u8; READ_CHUNK];
    loop {
        match input.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => match &mut h {
                H::S256(s) => s.update(&buf[..n]),
                H::S512(s) => s.update(&buf[..n]),
            },
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(match h {
        H::S256(s) => s.finalize().to_vec(),
        H::S512(s) => s.finalize().to_vec(),
    })
}

/// The blob a key signs for an SSHSIG over a message whose `hash_alg` hash is `hash`.
pub fn signed_data(namespace: &str, hash_alg: HashAlg, hash: &[u8]) -> Vec<u8> {
    let mut out = MAGIC.to_vec();
    // Encoding into a Vec cannot fail.
    let _ = namespace.encode(&mut out);
    let _ = [0u8; 0].as_slice().encode(&mut out);
    let _ = hash_alg.as_str().encode(&mut out);
    let _ = hash.encode(&mut out);
    out
}

/// The armored SSHSIG (`-----BEGIN SSH SIGNATURE-----`).
pub fn armor(key: &PublicKey, namespace: &str, signature: ssh_key::Signature) -> Result<String, FormatError> {
    let sig = SshSig::new(key.ssh_key_data(), namespace, HASH, signature)
        .map_err(|e| FormatError::Malformed(format!("cannot encode the SSHSIG: {e}")))?;
    sig.to_pem(LineEnding::LF).map_err(|e| FormatError::Malformed(format!("cannot encode the SSHSIG: {e}")))
}

/// Whether a signature file looks like an armored SSHSIG.
pub fn is_armored(bytes: &[u8]) -> bool {
    bytes.trim_ascii_start().starts_with(b"-----BEGIN SSH SIGNATURE-----")
}

/// Reads an armored SSHSIG.
pub fn parse(bytes: &[u8]) -> Result<SshSig, FormatError> {
    SshSig::from_pem(bytes.trim_ascii())
        .map_err(|e| FormatError::Malformed(format!("not a valid SSH signature (SSHSIG): {e}")))
}

/// The signer's key of an SSHSIG (ECDSA P-256 or Ed25519).
pub fn signer(sig: &SshSig) -> Result<PublicKey, FormatError> {
    PublicKey::from_ssh(sig.public_key())
}

/// Verifies an SSHSIG over a message whose hash (with the signature's own hash algorithm,
/// [`SshSig::hash_alg`]) is `hash`: the namespace must be `namespace`, the signer `key` when
/// given (else the key the signature carries is taken, which proves only integrity).
pub fn verify(
    sig: &SshSig,
    namespace: &str,
    hash: &[u8],
    key: Option<&PublicKey>,
) -> Result<PublicKey, FormatError> {
    if sig.namespace() != namespace {
        return Err(FormatError::Invalid(format!(
            "the signature is for namespace {:?}, not {namespace:?} (give --namespace {:?} if that is meant)",
            sig.namespace(),
            sig.namespace()
        )));
    }
    let carried = signer(sig)?;
    if let Some(k) = key {
        if *k != carried {
            return Err(FormatError::Invalid("the signature was made by another key".into()));
        }
    }
    let data = signed_data_of(sig, hash);
    if !carried.verify_ssh(&data, sig.signature()) {
        return Err(FormatError::Invalid("the signature does not match the file and key".into()));
    }
    Ok(carried)
}

/// The signed data of `sig` over a message hashed to `hash` (with the signature's reserved
/// field as it is).
fn signed_data_of(sig: &SshSig, hash: &[u8]) -> Vec<u8> {
    let mut out = MAGIC.to_vec();
    let _ = sig.namespace().encode(&mut out);
    let _ = sig.reserved().encode(&mut out);
    let _ = sig.hash_alg().as_str().encode(&mut out);
    let _ = hash.encode(&mut out);
    out
}

#[cfg(test)]
mod tests {
    use super::super::tests::{ed_key, p256_key};
    use super::*;

    #[test]
    fn signed_data_matches_ssh_key() {
        let msg = b"artifact bytes\n";
        let hash = hash_reader(HASH, &mut &msg[..]).unwrap();
        assert_eq!(signed_data("file", HASH, &hash), SshSig::signed_data("file", HASH, msg).unwrap());
        let h256 = hash_reader(HashAlg::Sha256, &mut &msg[..]).unwrap();
        assert_eq!(
            signed_data("git", HashAlg::Sha256, &h256),
            SshSig::signed_data("git", HashAlg::Sha256, msg).unwrap()
        );
    }

    fn sign_p256(sk: &p256::ecdsa::SigningKey, pk: &PublicKey, ns: &str, msg: &[u8]) -> SshSig {
        use p256::ecdsa::signature::Signer as _;
        let hash = hash_reader(HASH, &mut &msg[..]).unwrap();
        let der: p256::ecdsa::Signature = sk.sign(&signed_data(ns, HASH, &hash));
        let text = armor(pk, ns, pk.ssh_signature(der.to_der().as_bytes()).unwrap()).unwrap();
        assert!(is_armored(text.as_bytes()));
        assert!(text.ends_with("-----END SSH SIGNATURE-----\n"), "{text}");
        parse(text.as_bytes()).unwrap()
    }

    #[test]
    fn armored_signatures_verify_and_bind_namespace_key_and_file() {
        let (sk, pk) = p256_key(11);
        let sig = sign_p256(&sk, &pk, "file", b"one");
        let hash = hash_reader(HASH, &mut &b"one"[..]).unwrap();
        assert_eq!(verify(&sig, "file", &hash, Some(&pk)).unwrap(), pk);
        assert_eq!(verify(&sig, "file", &hash, None).unwrap(), pk);
        let e = verify(&sig, "git", &hash, Some(&pk)).unwrap_err().to_string();
        assert!(e.contains("namespace \"file\""), "{e}");
        let other = hash_reader(HASH, &mut &b"two"[..]).unwrap();
        assert!(verify(&sig, "file", &other, Some(&pk)).is_err());
        let (_, pk2) = p256_key(12);
        assert!(verify(&sig, "file", &hash, Some(&pk2)).unwrap_err().to_string().contains("another key"));

        let (esk, epk) = ed_key(13);
        let data = signed_data("file", HASH, &hash);
        let esig = ed25519_dalek::Signer::sign(&esk, &data);
        let text = armor(&epk, "file", epk.ssh_signature(&esig.to_bytes()).unwrap()).unwrap();
        let parsed = parse(text.as_bytes()).unwrap();
        assert_eq!(verify(&parsed, "file", &hash, Some(&epk)).unwrap(), epk);
        assert!(verify(&parsed, "file", &other, None).is_err());
    }

    #[test]
    fn hashes_retry_interrupted_reads() {
        let data = b"artifact bytes, read three at a time";
        for alg in [HashAlg::Sha256, HashAlg::Sha512] {
            let mut r = super::super::tests::Interrupting(data, false);
            assert_eq!(hash_reader(alg, &mut r).unwrap(), hash_reader(alg, &mut &data[..]).unwrap());
        }
        assert_eq!(hash_reader(HashAlg::Sha256, &mut &data[..]).unwrap(), Sha256::digest(data).to_vec());
        let mut failing = super::super::tests::Failing;
        assert_eq!(hash_reader(HASH, &mut failing).unwrap_err().kind(), io::ErrorKind::BrokenPipe);
    }

    #[test]
    fn garbage_is_not_a_signature() {
        assert!(!is_armored(b"\x30\x45"));
        assert!(parse(b"-----BEGIN SSH SIGNATURE-----\nAAAA\n-----END SSH SIGNATURE-----\n").is_err());
    }

    #[test]
    fn namespaces_follow_the_allowed_signers_rules() {
        for ok in ["file", "git", "release@example.com", "a-b_c.d/e:f"] {
            check_namespace(ok).unwrap();
        }
        for bad in ["", "a b", "a,b", "a\"b", "a*", "a?", "!a", "a\\b", "é", "a\tb", "a\nb"] {
            assert!(matches!(check_namespace(bad), Err(FormatError::Namespace(..))), "{bad:?}");
        }
        assert!(check_namespace(&"n".repeat(257)).is_err());
        check_namespace(&"n".repeat(256)).unwrap();
    }
}
