//! Wycheproof on the token's own CPU: runs the vectors build.rs encoded (AES-256-GCM, HMAC-SHA-256/
//! 384/512, ECDSA P-256 SHA-256 DER verification) through the code the token runs, built for
//! thumbv7em as the boards build it, under `qemu-system-arm -M mps2-an386`:
//!
//! * AES-256-GCM through `pkms_firmware::crypto::gcm` (the UMULL GHASH and the fixsliced AES);
//! * HMAC through `pkms_firmware::crypto::mac`;
//! * ECDSA verification through every P-256 backend built in: the Cortex-M4 assembly (what the
//!   boards use) and the portable one.
//!
//! Prints over semihosting one line per file and backend,
//! `WYCHEPROOF <file> <backend> passed=<n> failed=<n> not_applicable=<n>`, a `FAIL <file>
//! <backend> tcId=<id>` line per failed test, then `DONE`, and exits 0 only if every test passed.
//! `cargo test -p xtask wycheproof` builds and runs it (scripts/test.sh runs that).
#![no_std]
#![no_main]

use cortex_m_rt::{entry, exception, ExceptionFrame};
use pkms_firmware::crypto::gcm::{Aes256Gcm, KEY_LEN, NONCE_LEN, TAG_LEN};
use pkms_firmware::crypto::mac;
use pkms_p256::{Backend, PublicKey};
use pkms_protocol::MacAlgorithm;
use semihosting::println;
use sha2::{Digest, Sha256};

mod vectors {
    include!(concat!(env!("OUT_DIR"), "/wycheproof.rs"));
}

/// A cursor over an encoded vector file. Every read is checked: a short file is a failure, not
/// a fault.
struct Reader<'a> {
    data: &'a [u8],
}

impl<'a> Reader<'a> {
    fn is_empty(&self) -> bool {
        self.data.is_empty()
    }

    fn take(&mut self, n: usize) -> Option<&'a [u8]> {
        if n > self.data.len() {
            return None;
        }
        let (head, rest) = self.data.split_at(n);
        self.data = rest;
        Some(head)
    }

    fn array<const N: usize>(&mut self) -> Option<&'a [u8; N]> {
        self.take(N)?.try_into().ok()
    }

    fn u8(&mut self) -> Option<u8> {
        Some(self.array::<1>()?[0])
    }

    fn u16(&mut self) -> Option<u16> {
        Some(u16::from_le_bytes(*self.array::<2>()?))
    }

    fn bytes16(&mut self) -> Option<&'a [u8]> {
        let n = self.u16()?;
        self.take(usize::from(n))
    }
}

/// What a test expects.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Expect {
    Valid,
    Invalid,
    Acceptable,
}

fn expect(byte: u8) -> Option<Expect> {
    match byte {
        0 => Some(Expect::Valid),
        1 => Some(Expect::Invalid),
        2 => Some(Expect::Acceptable),
        _ => None,
    }
}

/// Counts of one file through one backend.
#[derive(Default)]
struct Tally {
    passed: usize,
    failed: usize,
    not_applicable: usize,
}

impl Tally {
    fn record(&mut self, file: &str, backend: &str, tc_id: u16, ok: bool) {
        if ok {
            self.passed += 1;
        } else {
            self.failed += 1;
            println!("FAIL {file} {backend} tcId={tc_id}");
        }
    }

    /// Prints the summary line; true if nothing failed and `expected` tests ran.
    fn report(&self, file: &str, backend: &str, expected: usize) -> bool {
        println!(
            "WYCHEPROOF {file} {backend} passed={} failed={} not_applicable={}",
            self.passed, self.failed, self.not_applicable
        );
        if self.passed + self.failed != expected {
            println!("FAIL {file} {backend} ran {} of {expected} tests", self.passed + self.failed);
            return false;
        }
        self.failed == 0
    }
}

/// AES-256-GCM: a valid test encrypts to its ciphertext and tag and decrypts back; an invalid one
/// fails to decrypt and leaves the buffer as it was.
fn aes_gcm() -> bool {
    const FILE: &str = "aes_gcm_test.json";
    const BACKEND: &str = "crypto::gcm";
    let mut tally = Tally { not_applicable: vectors::AES_GCM_NOT_APPLICABLE, ..Tally::default() };
    let mut buf = [0u8; vectors::AES_GCM_LONGEST];
    let mut r = Reader { data: vectors::AES_GCM };
    while !r.is_empty() {
        let parsed = (|| {
            let id = r.u16()?;
            let want = expect(r.u8()?)?;
            let key: &[u8; KEY_LEN] = r.array()?;
            let nonce: &[u8; NONCE_LEN] = r.array()?;
            let tag: &[u8; TAG_LEN] = r.array()?;
            let aad = r.bytes16()?;
            let pt = r.bytes16()?;
            let ct = r.take(pt.len())?;
            Some((id, want, key, nonce, tag, aad, pt, ct))
        })();
        let Some((id, want, key, nonce, tag, aad, pt, ct)) = parsed else {
            println!("FAIL {FILE} {BACKEND} malformed vector data");
            return false;
        };
        let Some(buf) = buf.get_mut(..pt.len()) else {
            tally.record(FILE, BACKEND, id, false);
            continue;
        };
        let gcm = Aes256Gcm::new(key);
        buf.copy_from_slice(pt);
        let reproduces = match gcm.encrypt_in_place_detached(nonce, aad, buf) {
            Ok(ours) => ours == *tag && buf[..] == ct[..],
            Err(_) => false,
        };
        buf.copy_from_slice(ct);
        let opens = gcm.decrypt_in_place_detached(nonce, aad, buf, tag).is_ok();
        let ok = match want {
            Expect::Valid => reproduces && opens && buf[..] == pt[..],
            Expect::Invalid => !reproduces && !opens && buf[..] == ct[..],
            Expect::Acceptable => !opens || buf[..] == pt[..],
        };
        tally.record(FILE, BACKEND, id, ok);
    }
    tally.report(FILE, BACKEND, vectors::AES_GCM_APPLICABLE)
}

/// HMAC: full-length tags are the applicable tests (valid ones computed and verified, invalid
/// ones refused); truncated tags are not applicable and must all be refused by verify.
fn hmac(file: &str, data: &'static [u8], tests: usize, algorithm: MacAlgorithm, full: usize) -> bool {
    const BACKEND: &str = "crypto::mac";
    let mut tally = Tally::default();
    let mut truncated_accepted = false;
    let mut r = Reader { data };
    while !r.is_empty() {
        let parsed = (|| Some((r.u16()?, expect(r.u8()?)?, r.bytes16()?, r.bytes16()?, r.bytes16()?)))();
        let Some((id, want, key, msg, tag)) = parsed else {
            println!("FAIL {file} {BACKEND} malformed vector data");
            return false;
        };
        let accepted = mac::verify(algorithm, key, msg, tag);
        if tag.len() != full {
            tally.not_applicable += 1;
            if accepted {
                truncated_accepted = true;
                println!("FAIL {file} {BACKEND} tcId={id} truncated tag accepted");
            }
            continue;
        }
        let mut out = [0u8; 64];
        let n = mac::compute(algorithm, key, msg, &mut out);
        let same = n == full && out[..n] == tag[..];
        let ok = match want {
            Expect::Valid => same && accepted,
            Expect::Invalid => !same && !accepted,
            Expect::Acceptable => same == accepted,
        };
        tally.record(file, BACKEND, id, ok);
    }
    tally.report(file, BACKEND, tests - tally.not_applicable) && !truncated_accepted
}

/// ECDSA P-256 SHA-256 verification as the token does it (SEC1 key decoded, message hashed, DER
/// signature checked), through one backend.
fn ecdsa(backend: Backend) -> bool {
    const FILE: &str = "ecdsa_secp256r1_sha256_test.json";
    let name = backend.name();
    let mut tally = Tally::default();
    let mut key: Option<PublicKey> = None;
    let mut r = Reader { data: vectors::ECDSA_P256_SHA256 };
    while !r.is_empty() {
        match r.u8() {
            Some(b'G') => {
                let Some(sec1) = r.array::<65>() else { break };
                key = PublicKey::from_sec1_bytes_with(backend, sec1).ok();
                if key.is_none() {
                    println!("FAIL {FILE} {name} a public key of the file was refused");
                }
            }
            Some(b'T') => {
                let parsed = (|| Some((r.u16()?, expect(r.u8()?)?, r.bytes16()?, r.bytes16()?)))();
                let Some((id, want, msg, sig)) = parsed else { break };
                let digest: [u8; 32] = Sha256::digest(msg).into();
                let verified = key.as_ref().is_some_and(|k| k.verify_digest_with(backend, &digest, sig));
                let ok = match want {
                    Expect::Valid => verified,
                    Expect::Invalid => !verified,
                    Expect::Acceptable => true,
                };
                tally.record(FILE, name, id, ok);
            }
            _ => break,
        }
    }
    if !r.is_empty() {
        println!("FAIL {FILE} {name} malformed vector data");
        return false;
    }
    tally.report(FILE, name, vectors::ECDSA_P256_SHA256_TESTS)
}

#[entry]
fn main() -> ! {
    let mut ok = aes_gcm();
    ok &= hmac(
        "hmac_sha256_test.json",
        vectors::HMAC_SHA256,
        vectors::HMAC_SHA256_TESTS,
        MacAlgorithm::HmacSha256,
        32,
    );
    ok &= hmac(
        "hmac_sha384_test.json",
        vectors::HMAC_SHA384,
        vectors::HMAC_SHA384_TESTS,
        MacAlgorithm::HmacSha384,
        48,
    );
    ok &= hmac(
        "hmac_sha512_test.json",
        vectors::HMAC_SHA512,
        vectors::HMAC_SHA512_TESTS,
        MacAlgorithm::HmacSha512,
        64,
    );
    for &backend in Backend::ALL {
        ok &= ecdsa(backend);
    }
    println!("DONE");
    semihosting::process::exit(if ok { 0 } else { 1 })
}

#[panic_handler]
fn panic(info: &core::panic::PanicInfo<'_>) -> ! {
    semihosting::eprintln!("PANIC {info}");
    semihosting::process::exit(101)
}

#[exception]
unsafe fn HardFault(frame: &ExceptionFrame) -> ! {
    semihosting::eprintln!("HARDFAULT pc={:#010x} lr={:#010x}", frame.pc(), frame.lr());
    semihosting::process::exit(102)
}

#[exception]
unsafe fn DefaultHandler(irqn: i16) {
    semihosting::eprintln!("UNEXPECTED IRQ {irqn}");
    semihosting::process::exit(103)
}
