//! The token's whole request path over a mock flash, driven by sequences of requests: raw frames
//! (COBS framing, frame decoding, the dispatcher), well-formed requests of every key-changing
//! kind with fuzzed arguments, restarts, time jumps and power cuts. Checks, besides "never
//! panics": every complete frame gets exactly one answer that decodes, and a model — a key the
//! token created stays until its deletion was scheduled (or the token was reset), across
//! restarts and power cuts.
#![no_main]

use std::collections::BTreeSet;

use libfuzzer_sys::fuzz_target;
use pkms_firmware::mock_flash::MockFlash;
use pkms_firmware::{FrameServer, Parts, TestBoard, Token};
use pkms_protocol::context::EncryptionContext;
use pkms_protocol::limits::{MAX_ENCODED_FRAME, MAX_FRAME};
use pkms_protocol::messages::{Request, RequestFrame, Response};
use pkms_protocol::{
    framing, request, DataKeyPairSpec, EncapsulationAlgorithm, KeyAgreementAlgorithm, KeyId, KeySpec,
    KeyState, KeyUsage, MacAlgorithm, MessageType, SigningAlgorithm, Tags,
};
use rand_chacha::rand_core::SeedableRng;
use rand_chacha::ChaCha20Rng;

type FuzzToken = Token<Parts<MockFlash, ChaCha20Rng, TestBoard>>;

const T0: u64 = 1_750_000_000;
const ALIASES: [&str; 2] = ["alias/x", "alias/y"];

struct Input<'a>(&'a [u8]);

impl<'a> Input<'a> {
    fn byte(&mut self) -> Option<u8> {
        let (&b, rest) = self.0.split_first()?;
        self.0 = rest;
        Some(b)
    }
    fn bytes(&mut self, n: usize) -> &'a [u8] {
        let n = n.min(self.0.len());
        let (a, b) = self.0.split_at(n);
        self.0 = b;
        a
    }
}

struct World {
    token: Option<FuzzToken>,
    boots: u64,
    now: u64,
    /// Keys created and not scheduled for deletion.
    keys: Vec<KeyId>,
    /// Keys whose deletion was scheduled (they may be gone).
    doomed: BTreeSet<KeyId>,
    blob: Vec<u8>,
    /// The last signature, public key (DER SPKI) and ML-KEM ciphertext the token gave.
    signature: Vec<u8>,
    public_key: Vec<u8>,
    kem_ciphertext: Vec<u8>,
    /// Once initialised (or reset by a raw frame), the model is not checked any more.
    model_valid: bool,
}

fn boot(flash: MockFlash, boots: u64) -> FuzzToken {
    Token::new(flash, ChaCha20Rng::seed_from_u64(boots), TestBoard::new())
}

impl World {
    fn token(&mut self) -> &mut FuzzToken {
        self.token.as_mut().expect("a token")
    }

    fn restart(&mut self) {
        let mut flash = self.token.take().expect("a token").into_flash();
        flash.restore_power();
        self.boots += 1;
        self.token = Some(boot(flash, self.boots));
    }

    /// Sends a well-formed request; returns the decoded answer's bytes (a frame payload).
    fn call(&mut self, request: Request<'_>) -> Vec<u8> {
        let frame = RequestFrame { id: 7, now: Some(self.now), request };
        let mut payload = vec![0u8; MAX_FRAME];
        let n = match postcard::to_slice(&frame, &mut payload) {
            Ok(s) => s.len(),
            Err(_) => return Vec::new(),
        };
        payload.truncate(n);
        let mut out = vec![0u8; MAX_ENCODED_FRAME];
        let m = self.token().handle_payload(&mut payload, &mut out);
        assert!(m > 0 && out[m - 1] == 0, "an answer is one COBS frame");
        let mut answer = out[..m - 1].to_vec();
        let len = framing::cobs_decode_in_place(&mut answer).expect("the answer is valid COBS").len();
        answer.truncate(len);
        let id = framing::decode_response(&answer).expect("the answer decodes").id;
        assert_eq!(id, 7, "the answer carries the request's id");
        answer
    }

    fn key(&self, b: u8) -> Option<String> {
        (!self.keys.is_empty()).then(|| self.keys[b as usize % self.keys.len()].to_string())
    }

    fn check_model(&mut self) {
        if !self.model_valid {
            return;
        }
        let keys = self.keys.clone();
        for k in keys {
            let id = k.to_string();
            let answer = self.call(Request::DescribeKey(request::DescribeKey { key_id: &id }));
            match described(&answer) {
                Ok(described) => assert_eq!(described, k),
                Err(e) => panic!("a created key is gone: {e}"),
            }
        }
    }

    /// After a power cut the command may have happened although its answer was an error (the
    /// cut came after its own write, during a later one such as the audit entry's): a key whose
    /// deletion it scheduled is doomed now, as if the answer had said so.
    fn reconcile_after_cut(&mut self) {
        if !self.model_valid {
            return;
        }
        for k in self.keys.clone() {
            let id = k.to_string();
            let answer = self.call(Request::DescribeKey(request::DescribeKey { key_id: &id }));
            if key_state(&answer) == Some(KeyState::PendingDeletion) {
                self.keys.retain(|x| *x != k);
                self.doomed.insert(k);
            }
        }
    }

    /// Runs one command from `input`; false when the input is used up.
    fn step(&mut self, input: &mut Input<'_>) -> bool {
        let Some(op) = input.byte() else { return false };
        let arg = input.byte().unwrap_or(0);
        match op % 20 {
            0 => {
                // Every spec, with each usage KMS allows for it (and, from the high bit, one it
                // may not: the token refuses those).
                let spec = KeySpec::ALL[arg as usize % KeySpec::ALL.len()];
                let usage = match input.byte() {
                    Some(u) if u & 0x80 != 0 => Some(KeyUsage::ALL[u as usize % KeyUsage::ALL.len()]),
                    Some(u) => Some(spec.allowed_usages()[u as usize % spec.allowed_usages().len()]),
                    None => None,
                };
                let answer = self.call(Request::CreateKey(request::CreateKey {
                    key_spec: spec,
                    key_usage: usage,
                    description: "fuzz",
                    tags: Tags::new(),
                    user_presence_required: false,
                }));
                if let Ok(id) = described(&answer) {
                    self.keys.push(id);
                }
            }
            1 => {
                if let Some(k) = self.key(arg) {
                    let plaintext = input.bytes(64).to_vec();
                    let answer = self.call(Request::Encrypt(request::Encrypt {
                        key_id: &k,
                        plaintext: &plaintext,
                        encryption_context: EncryptionContext::new(),
                    }));
                    if let Some(blob) = ciphertext(&answer) {
                        self.blob = blob;
                    }
                }
            }
            2 => {
                let mut blob = self.blob.clone();
                if let (Some(at), false) = (input.byte(), blob.is_empty()) {
                    let i = at as usize % blob.len();
                    blob[i] ^= arg;
                }
                self.call(Request::Decrypt(request::Decrypt {
                    ciphertext_blob: &blob,
                    encryption_context: EncryptionContext::new(),
                    key_id: None,
                }));
            }
            3 => {
                if let Some(k) = self.key(arg) {
                    self.call(Request::RotateKeyOnDemand(request::RotateKeyOnDemand { key_id: &k }));
                }
            }
            4 => {
                if let Some(k) = self.key(arg) {
                    let window = input.byte().map(|w| u16::from(w % 40));
                    let answer = self.call(Request::ScheduleKeyDeletion(request::ScheduleKeyDeletion {
                        key_id: &k,
                        pending_window_in_days: window,
                    }));
                    if succeeded(&answer) {
                        let id = KeyId::parse(&k).expect("a key id");
                        self.keys.retain(|x| *x != id);
                        self.doomed.insert(id);
                    }
                }
            }
            5 => {
                if let Some(k) = self.key(arg) {
                    let alias = ALIASES[arg as usize % ALIASES.len()];
                    self.call(Request::CreateAlias(request::CreateAlias {
                        alias_name: alias,
                        target_key_id: &k,
                    }));
                    self.call(Request::Encrypt(request::Encrypt {
                        key_id: alias,
                        plaintext: b"via alias",
                        encryption_context: EncryptionContext::new(),
                    }));
                }
            }
            6 => {
                if let Some(k) = self.key(arg) {
                    let raw = input.bytes(24);
                    let text = String::from_utf8_lossy(raw);
                    let mid = (0..=text.len() / 2).rev().find(|&i| text.is_char_boundary(i)).unwrap_or(0);
                    let (key, value) = text.split_at(mid);
                    let mut tags = Tags::new();
                    let _ = tags.push(pkms_protocol::Tag { tag_key: key, tag_value: value });
                    self.call(Request::TagResource(request::TagResource { key_id: &k, tags }));
                }
            }
            7 => {
                if let Some(k) = self.key(arg) {
                    let len = input.byte().unwrap_or(0) as usize;
                    let policy = input.bytes(len).to_vec();
                    self.call(Request::PutKeyPolicy(request::PutKeyPolicy { key_id: &k, policy: &policy }));
                    self.call(Request::GetKeyPolicy(request::GetKeyPolicy { key_id: &k }));
                }
            }
            8 => {
                if let Some(k) = self.key(arg) {
                    if arg & 0x80 == 0 {
                        self.call(Request::DisableKey(request::DisableKey { key_id: &k }));
                    } else {
                        self.call(Request::EnableKey(request::EnableKey { key_id: &k }));
                    }
                }
            }
            9 => self.now += u64::from(arg) * 86_400 / 4,
            10 => {
                if let Some(k) = self.key(arg) {
                    // Any algorithm and message type against any key: the token answers what
                    // KMS would (a signature, or InvalidKeyUsage / Validation).
                    let how = input.byte().unwrap_or(0);
                    let algorithm = SigningAlgorithm::ALL[how as usize % SigningAlgorithm::ALL.len()];
                    let message_type = MessageType::ALL[(how >> 4) as usize % MessageType::ALL.len()];
                    let len = input.byte().map_or(4, |l| l as usize);
                    let message = input.bytes(len).to_vec();
                    let answer = self.call(Request::Sign(request::Sign {
                        key_id: &k,
                        message: &message,
                        message_type,
                        signing_algorithm: algorithm,
                    }));
                    if let Some(signature) = signature(&answer) {
                        self.signature = signature;
                    }
                    // Verify the last signature (possibly another key's, possibly changed).
                    let mut signature = self.signature.clone();
                    if let (Some(at), false) = (input.byte(), signature.is_empty()) {
                        let i = at as usize % signature.len();
                        signature[i] ^= how | 1;
                    }
                    self.call(Request::Verify(request::Verify {
                        key_id: &k,
                        message: &message,
                        message_type,
                        signature: &signature,
                        signing_algorithm: algorithm,
                        key_version: None,
                    }));
                    self.call(Request::GenerateMac(request::GenerateMac {
                        key_id: &k,
                        message: b"fuzz",
                        mac_algorithm: MacAlgorithm::HmacSha256,
                    }));
                }
            }
            11 => {
                if let Some(k) = self.key(arg) {
                    let below = u32::from(input.byte().unwrap_or(0) % 8);
                    self.call(Request::RetireKeyVersions(request::RetireKeyVersions {
                        key_id: &k,
                        below_version: below,
                    }));
                }
            }
            12 => self.restart(),
            13 => {
                // Power is cut after `n` cut points of the next command, then the token restarts:
                // the command may or may not have happened, every key made before it stays
                // (check_model after this step).
                let n = u64::from(arg) * 8 + u64::from(input.byte().unwrap_or(0));
                self.token().flash_mut().cut_power_after(n);
                let more = self.step(input);
                self.restart();
                self.reconcile_after_cut();
                return more;
            }
            14 => {
                // Raw bytes through the frame server, as a board feeds them.
                let len = usize::from(arg) * 4 + usize::from(input.byte().unwrap_or(0) % 4);
                let raw = input.bytes(len).to_vec();
                let complete_frames = raw.iter().filter(|&&b| b == 0).count();
                let mut answers = 0usize;
                let mut server = Box::new(FrameServer::new());
                let token = self.token.as_mut().expect("a token");
                server.feed(token, &raw, |frame| {
                    answers += frame.iter().filter(|&&b| b == 0).count();
                    let mut copy = frame[..frame.len() - 1].to_vec();
                    let n = framing::cobs_decode_in_place(&mut copy).expect("valid COBS").len();
                    framing::decode_response(&copy[..n]).expect("every answer decodes");
                });
                assert!(answers <= complete_frames, "more answers than frames");
                // A raw frame that changes keys or the token (initialisation, a reset, a
                // deletion) ends the model's checks.
                if raw.split(|&b| b == 0).any(changes_state) {
                    self.model_valid = false;
                }
            }
            15 => {
                // A public key of any key (it becomes the peer of the next agreement).
                if let Some(k) = self.key(arg) {
                    let answer = self.call(Request::GetPublicKey(request::GetPublicKey {
                        key_id: &k,
                        key_version: input.byte().map(|v| u32::from(v % 4)).filter(|&v| v > 0),
                    }));
                    if let Some(public_key) = public_key(&answer) {
                        self.public_key = public_key;
                    }
                }
            }
            16 => {
                // ECDH with the last public key (any curve, any spec), possibly changed.
                if let Some(k) = self.key(arg) {
                    let mut peer = self.public_key.clone();
                    if let (Some(at), false) = (input.byte(), peer.is_empty()) {
                        let i = at as usize % peer.len();
                        peer[i] ^= arg | 1;
                    }
                    self.call(Request::DeriveSharedSecret(request::DeriveSharedSecret {
                        key_id: &k,
                        key_agreement_algorithm: KeyAgreementAlgorithm::Ecdh,
                        public_key: &peer,
                    }));
                }
            }
            17 => {
                // ML-KEM: encapsulate, then decapsulate the last ciphertext (possibly changed,
                // shortened or another key's): a ciphertext of the right length always gives a
                // secret (implicit rejection), never an error.
                if let Some(k) = self.key(arg) {
                    let answer = self.call(Request::Encapsulate(request::Encapsulate {
                        key_id: &k,
                        encapsulation_algorithm: EncapsulationAlgorithm::MlKem,
                    }));
                    if let Some(ciphertext) = kem_ciphertext(&answer) {
                        self.kem_ciphertext = ciphertext;
                    }
                    let mut ciphertext = self.kem_ciphertext.clone();
                    match input.byte() {
                        Some(at) if at & 0x80 != 0 && !ciphertext.is_empty() => {
                            let i = at as usize % ciphertext.len();
                            ciphertext[i] ^= 1;
                        }
                        Some(at) if at & 0x40 != 0 => ciphertext.truncate(at as usize),
                        _ => {}
                    }
                    self.call(Request::Decapsulate(request::Decapsulate {
                        key_id: &k,
                        shared_secret_ciphertext_blob: &ciphertext,
                        encapsulation_algorithm: EncapsulationAlgorithm::MlKem,
                        key_version: None,
                    }));
                }
            }
            18 => {
                if let Some(k) = self.key(arg) {
                    let spec =
                        DataKeyPairSpec::ALL[input.byte().unwrap_or(0) as usize % DataKeyPairSpec::ALL.len()];
                    let answer = if arg & 0x80 == 0 {
                        self.call(Request::GenerateDataKeyPair(request::GenerateDataKeyPair {
                            key_id: &k,
                            encryption_context: EncryptionContext::new(),
                            key_pair_spec: spec,
                        }))
                    } else {
                        self.call(Request::GenerateDataKeyPairWithoutPlaintext(
                            request::GenerateDataKeyPairWithoutPlaintext {
                                key_id: &k,
                                encryption_context: EncryptionContext::new(),
                                key_pair_spec: spec,
                            },
                        ))
                    };
                    if let Some(blob) = data_key_pair_blob(&answer) {
                        self.blob = blob;
                    }
                }
            }
            _ => {
                if let Some(k) = self.key(arg) {
                    self.call(Request::GenerateDataKey(request::GenerateDataKey {
                        key_id: &k,
                        encryption_context: EncryptionContext::new(),
                        key_spec: Some(pkms_protocol::DataKeySpec::Aes256),
                        number_of_bytes: None,
                    }));
                }
            }
        }
        true
    }
}

/// The key a KeyMetadata answer describes, or the error.
fn described(answer: &[u8]) -> Result<KeyId, String> {
    let frame = framing::decode_response(answer).expect("decodes");
    let out = match &frame.result {
        Ok(Response::KeyMetadata(m)) => Ok(m.key_metadata.key_id),
        Ok(other) => Err(format!("answered {other:?}")),
        Err(e) => Err(format!("{:?} {}", e.code, e.message)),
    };
    out
}

/// The state of the key a KeyMetadata answer describes.
fn key_state(answer: &[u8]) -> Option<KeyState> {
    let frame = framing::decode_response(answer).expect("decodes");
    let out = match &frame.result {
        Ok(Response::KeyMetadata(m)) => Some(m.key_metadata.key_state),
        _ => None,
    };
    out
}

/// The ciphertext of an Encrypt answer.
fn ciphertext(answer: &[u8]) -> Option<Vec<u8>> {
    let frame = framing::decode_response(answer).expect("decodes");
    let out = match &frame.result {
        Ok(Response::Encrypt(e)) => Some(e.ciphertext_blob.to_vec()),
        _ => None,
    };
    out
}

/// The signature of a Sign answer.
fn signature(answer: &[u8]) -> Option<Vec<u8>> {
    let frame = framing::decode_response(answer).expect("decodes");
    let out = match &frame.result {
        Ok(Response::Sign(s)) => Some(s.signature.to_vec()),
        _ => None,
    };
    out
}

/// The DER SubjectPublicKeyInfo of a GetPublicKey answer.
fn public_key(answer: &[u8]) -> Option<Vec<u8>> {
    let frame = framing::decode_response(answer).expect("decodes");
    let out = match &frame.result {
        Ok(Response::PublicKey(p)) => Some(p.public_key.to_vec()),
        _ => None,
    };
    out
}

/// The ciphertext of an Encapsulate answer.
fn kem_ciphertext(answer: &[u8]) -> Option<Vec<u8>> {
    let frame = framing::decode_response(answer).expect("decodes");
    let out = match &frame.result {
        Ok(Response::Encapsulated(e)) => Some(e.shared_secret_ciphertext_blob.to_vec()),
        _ => None,
    };
    out
}

/// The sealed private key of a GenerateDataKeyPair answer (a blob Decrypt takes).
fn data_key_pair_blob(answer: &[u8]) -> Option<Vec<u8>> {
    let frame = framing::decode_response(answer).expect("decodes");
    let out = match &frame.result {
        Ok(Response::DataKeyPair(p)) => Some(p.private_key_ciphertext_blob.to_vec()),
        _ => None,
    };
    out
}

fn succeeded(answer: &[u8]) -> bool {
    let frame = framing::decode_response(answer).expect("decodes");
    let ok = frame.result.is_ok();
    ok
}

/// Whether a raw frame is a request that could change keys or the token (initialisation, a
/// reset, a deletion…).
fn changes_state(chunk: &[u8]) -> bool {
    let mut chunk = chunk.to_vec();
    let Ok(n) = framing::cobs_decode_in_place(&mut chunk).map(|d| d.len()) else { return false };
    let Ok(frame) = framing::decode_request(&chunk[..n]) else { return false };
    let harmless = matches!(
        frame.request,
        Request::Hello(_)
            | Request::GetInfo(_)
            | Request::GetSelfTests(_)
            | Request::DescribeKey(_)
            | Request::ListKeys(_)
            | Request::Encrypt(_)
            | Request::Decrypt(_)
            | Request::GenerateRandom(_)
    );
    !harmless
}

fuzz_target!(|data: &[u8]| {
    let mut world = World {
        token: Some(boot(MockFlash::new(16 * 4096), 0)),
        boots: 0,
        now: T0,
        keys: Vec::new(),
        doomed: BTreeSet::new(),
        blob: Vec::new(),
        signature: Vec::new(),
        public_key: Vec::new(),
        kem_ciphertext: Vec::new(),
        model_valid: true,
    };
    let mut input = Input(data);
    for _ in 0..64 {
        if !world.step(&mut input) {
            break;
        }
        world.check_model();
    }
});
