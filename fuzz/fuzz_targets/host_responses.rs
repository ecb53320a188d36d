//! The host's response decoding, as `pkms` runs it: a `pkms_lib::Client` over a transport whose
//! bytes come from the fuzzer — COBS reassembly, frame decoding, matching answers to requests,
//! and turning each kind of reply into the library's owned model. Each call gets the fuzzed rest
//! of a response frame behind the right id (so the fuzzer need not guess ids); stray bytes and
//! garbage frames between calls are fuzzed too. Never panics; every call ends in a value or an
//! error.
#![no_main]

use std::collections::VecDeque;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use libfuzzer_sys::fuzz_target;
use pkms_lib::transport::Transport;
use pkms_lib::{Client, LinkError};
use pkms_protocol::context::EncryptionContext;
use pkms_protocol::{
    framing, request, DataKeyPairSpec, DataKeySpec, EncapsulationAlgorithm, KeyAgreementAlgorithm, KeySpec,
    MacAlgorithm, MessageType, SigningAlgorithm, PROTOCOL_VERSION,
};

const K: &str = "11111111-1111-1111-1111-111111111111";

#[derive(Clone, Default)]
struct Pipe(Arc<Mutex<VecDeque<u8>>>);

impl Transport for Pipe {
    fn send(&mut self, _bytes: &[u8]) -> Result<(), LinkError> {
        Ok(())
    }
    fn recv(&mut self, buf: &mut [u8], _timeout: Duration) -> Result<usize, LinkError> {
        let mut q = self.0.lock().expect("lock");
        if q.is_empty() {
            return Err(LinkError::Closed);
        }
        let n = buf.len().min(q.len()).min(4096);
        for b in buf.iter_mut().take(n) {
            *b = q.pop_front().expect("checked");
        }
        Ok(n)
    }
}

/// COBS-encodes `id` (varint) followed by `rest`, with its delimiter.
fn frame(id: u32, rest: &[u8]) -> Vec<u8> {
    let mut out = postcard::to_allocvec(&id).expect("a varint");
    out.extend_from_slice(rest);
    let n = out.len();
    out.resize(n + n / 254 + 2, 0);
    let mut scratch = vec![0u8; out.len()];
    match framing::cobs_frame_via(&mut out, n, &mut scratch) {
        Ok(m) => {
            out.truncate(m);
            out
        }
        Err(_) => Vec::new(),
    }
}

fuzz_target!(|data: &[u8]| {
    let pipe = Pipe::default();
    // A sound Hello answer (id 1), so the client connects.
    let hello = {
        let mut rest = vec![0u8]; // Ok
        rest.extend(postcard::to_allocvec(&0u32).expect("variant")); // Response::Hello
        rest.extend(postcard::to_allocvec(&PROTOCOL_VERSION).expect("u16"));
        rest.extend(postcard::to_allocvec("0.1.0").expect("str"));
        frame(1, &rest)
    };
    pipe.0.lock().expect("lock").extend(hello);
    let Ok(mut client) = Client::connect(pipe.clone()) else { return };
    client.set_timeout(Duration::from_millis(1));
    let mut id = 2u32;
    let mut chunks = data.split(|&b| b == 0xFE);
    while let Some(chunk) = chunks.next() {
        let Some((&selector, rest)) = chunk.split_first() else { continue };
        {
            let mut q = pipe.0.lock().expect("lock");
            q.clear();
            if selector & 0x80 != 0 {
                // Garbage first: a raw chunk as it is (stray bytes, stale frames).
                if let Some(raw) = chunks.next() {
                    q.extend(raw.iter().copied());
                    q.push_back(0);
                }
            }
            q.extend(frame(id, rest));
        }
        id = id.wrapping_add(1);
        let ctx = EncryptionContext::new();
        let _ = match selector % 39 {
            0 => client.call(request::GetInfo {}).map(|_| ()),
            1 => client.call(request::GenerateRandom { number_of_bytes: 32 }).map(|_| ()),
            2 => client
                .call(request::CreateKey {
                    key_spec: KeySpec::SymmetricDefault,
                    key_usage: None,
                    description: "d",
                    tags: Default::default(),
                    user_presence_required: false,
                })
                .map(|_| ()),
            3 => client.call(request::DescribeKey { key_id: K }).map(|_| ()),
            4 => client.call(request::ListKeys { limit: None, marker: None }).map(|_| ()),
            5 => client
                .call(request::Encrypt { key_id: K, plaintext: b"p", encryption_context: ctx })
                .map(|_| ()),
            6 => client
                .call(request::Decrypt { ciphertext_blob: &[1, 2, 3], encryption_context: ctx, key_id: None })
                .map(|_| ()),
            7 => client
                .call(request::ReEncrypt {
                    ciphertext_blob: &[4],
                    source_encryption_context: EncryptionContext::new(),
                    source_key_id: None,
                    destination_key_id: K,
                    destination_encryption_context: ctx,
                })
                .map(|_| ()),
            8 => client
                .call(request::GenerateDataKey {
                    key_id: K,
                    encryption_context: ctx,
                    key_spec: Some(DataKeySpec::Aes256),
                    number_of_bytes: None,
                })
                .map(|_| ()),
            9 => client.call(request::GetKeyRotationStatus { key_id: K }).map(|_| ()),
            10 => client.call(request::RotateKeyOnDemand { key_id: K }).map(|_| ()),
            11 => client.call(request::ListKeyRotations { key_id: K, limit: None, marker: None }).map(|_| ()),
            12 => client.call(request::RetireKeyVersions { key_id: K, below_version: 2 }).map(|_| ()),
            13 => client
                .call(request::Sign {
                    key_id: K,
                    message: &[9; 32],
                    message_type: MessageType::Digest,
                    signing_algorithm: SigningAlgorithm::EcdsaSha256,
                })
                .map(|_| ()),
            14 => client.call(request::GetPublicKey { key_id: K, key_version: None }).map(|_| ()),
            15 => client
                .call(request::GenerateMac {
                    key_id: K,
                    message: b"m",
                    mac_algorithm: MacAlgorithm::HmacSha256,
                })
                .map(|_| ()),
            16 => client
                .call(request::ScheduleKeyDeletion { key_id: K, pending_window_in_days: None })
                .map(|_| ()),
            17 => client.call(request::ListAliases { key_id: None, limit: None, marker: None }).map(|_| ()),
            18 => client.call(request::ListResourceTags { key_id: K }).map(|_| ()),
            19 => client.call(request::ListPrincipals {}).map(|_| ()),
            20 => client.call(request::GetAuditCheckpoint {}).map(|_| ()),
            21 => client.call(request::ReadAuditLog { start_sequence: 1, limit: 10 }).map(|_| ()),
            22 => client.call(request::GetKeyPolicy { key_id: K }).map(|_| ()),
            23 => client.device_key().map(|_| ()),
            24 => client
                .call(request::Verify {
                    key_id: K,
                    message: &[9; 32],
                    message_type: MessageType::Digest,
                    signature: &[0x30, 0],
                    signing_algorithm: SigningAlgorithm::EcdsaSha256,
                    key_version: None,
                })
                .map(|_| ()),
            25 => client
                .call(request::VerifyMac {
                    key_id: K,
                    message: b"m",
                    mac_algorithm: MacAlgorithm::HmacSha256,
                    mac: &[0; 32],
                    key_version: None,
                })
                .map(|_| ()),
            26 => client.call(request::CancelKeyDeletion { key_id: K }).map(|_| ()),
            27 => client.call(request::TagResource { key_id: K, tags: Default::default() }).map(|_| ()),
            28 => client
                .call(request::CreateGrant {
                    key_id: K,
                    grantee: "bob",
                    operations: 1,
                    constraint: None,
                    name: "",
                })
                .map(|_| ()),
            29 => client.call(request::ListGrants { key_id: K }).map(|_| ()),
            30 => client.call(request::GetSelfTests {}).map(|_| ()),
            31 => client.call(request::BackupInit { replace: false }).map(|_| ()),
            32 => client.call(request::BackupExportBegin { peer_device_key: None }).map(|_| ()),
            33 => client.call(request::BackupExportChunk {}).map(|_| ()),
            34 => client.call(request::BackupRestoreChunk { sealed: &[1, 2, 3], last: true }).map(|_| ()),
            35 => client
                .call(request::DeriveSharedSecret {
                    key_id: K,
                    key_agreement_algorithm: KeyAgreementAlgorithm::Ecdh,
                    public_key: &[4; 65],
                })
                .map(|_| ()),
            36 => client
                .call(request::Encapsulate {
                    key_id: K,
                    encapsulation_algorithm: EncapsulationAlgorithm::MlKem,
                })
                .map(|_| ()),
            37 => client
                .call(request::Decapsulate {
                    key_id: K,
                    shared_secret_ciphertext_blob: &[5; 768],
                    encapsulation_algorithm: EncapsulationAlgorithm::MlKem,
                    key_version: None,
                })
                .map(|_| ()),
            _ => client
                .call(request::GenerateDataKeyPair {
                    key_id: K,
                    encryption_context: ctx,
                    key_pair_spec: DataKeyPairSpec::ALL[usize::from(selector) % DataKeyPairSpec::ALL.len()],
                })
                .map(|_| ()),
        };
    }
});
