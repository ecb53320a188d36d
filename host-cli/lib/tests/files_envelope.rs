//! Envelope encryption of files: round trips at every size that matters, and every kind of
//! tampering detected with a message naming what failed, with no unverified plaintext released.
//! Both paths are covered: the streaming pipeline (pipes, stdin/stdout) and positional file I/O
//! (file to file), which must read and write the same format and fail with the same messages.

mod files_support;

use std::io::{Seek, Write};
use std::time::Duration;

use files_support::{data, FakeToken, SYM_KEY};
use pkms_lib::datakey_cache::{CacheLimits, DataKeyCache};
use pkms_lib::envelope::format::{FIXED_LEN, HEADER_TAG_LEN, SEGMENT_TAG_LEN};
use pkms_lib::envelope::output::AtomicFile;
use pkms_lib::envelope::{DecryptPolicy, Envelope, EnvelopeError, Options, PendingHeader};

const SEG: u32 = 1024;

fn opts(threads: usize, batch: usize) -> Options {
    Options { segment_size: SEG, threads, batch_segments: batch }
}

fn ctx() -> Vec<(String, String)> {
    vec![("purpose".into(), "test".into()), ("file".into(), "a.bin".into())]
}

fn encrypt_with(token: &mut FakeToken, plain: &[u8], o: Options) -> Vec<u8> {
    let mut cache = DataKeyCache::disabled();
    let mut out = Vec::new();
    let s = Envelope::new(token, &mut cache, o)
        .encrypt(SYM_KEY, &ctx(), &mut &plain[..], Some(plain.len() as u64), &mut out)
        .unwrap();
    assert_eq!(s.plaintext_bytes, plain.len() as u64);
    assert_eq!(s.segments, plain.len() as u64 / u64::from(o.segment_size) + 1);
    out
}

fn decrypt_with(token: &mut FakeToken, file: &[u8], o: Options) -> (Result<Vec<u8>, EnvelopeError>, Vec<u8>) {
    let mut cache = DataKeyCache::disabled();
    let mut out = Vec::new();
    let r = Envelope::new(token, &mut cache, o).decrypt(&mut &file[..], &mut out, &DecryptPolicy::default());
    (r.map(|_| out.clone()), out)
}

/// A temporary file holding `bytes`, opened for reading at offset 0.
fn temp_input(bytes: &[u8]) -> std::fs::File {
    let mut f = tempfile::tempfile().unwrap();
    f.write_all(bytes).unwrap();
    f.rewind().unwrap();
    f
}

/// Encrypts through positional file I/O, as the CLI does from a file to a file.
fn encrypt_positional(token: &mut FakeToken, plain: &[u8], o: Options) -> Vec<u8> {
    let mut cache = DataKeyCache::disabled();
    let dir = tempfile::tempdir().unwrap();
    let dest = dir.path().join("out.pkms");
    let input = temp_input(plain);
    let out = AtomicFile::create(&dest).unwrap();
    let s = Envelope::new(token, &mut cache, o)
        .start_encrypt(SYM_KEY, &ctx(), Some(plain.len() as u64))
        .unwrap()
        .run_file(&input, plain.len() as u64, out.file(), &pkms_lib::progress::NoProgress)
        .unwrap();
    out.commit().unwrap();
    assert_eq!(s.plaintext_bytes, plain.len() as u64);
    assert_eq!(s.segments, plain.len() as u64 / u64::from(o.segment_size) + 1);
    std::fs::read(&dest).unwrap()
}

/// Decrypts through positional file I/O into a file that appears only on success; checks that
/// a failure leaves no output behind.
fn decrypt_positional(token: &mut FakeToken, file: &[u8], o: Options) -> Result<Vec<u8>, EnvelopeError> {
    let mut cache = DataKeyCache::disabled();
    let dir = tempfile::tempdir().unwrap();
    let dest = dir.path().join("out.bin");
    let mut input = temp_input(file);
    let result = (|| {
        let pending = PendingHeader::read(&mut input)?;
        let body_start = input.stream_position().unwrap();
        let d = Envelope::new(token, &mut cache, o).start_decrypt(pending, &DecryptPolicy::default())?;
        let out = AtomicFile::create(&dest).unwrap();
        d.run_file(&input, body_start, out.file(), &pkms_lib::progress::NoProgress)?;
        out.commit().unwrap();
        Ok(std::fs::read(&dest).unwrap())
    })();
    if result.is_err() {
        assert_eq!(
            std::fs::read_dir(dir.path()).unwrap().count(),
            0,
            "a failed decryption left output behind"
        );
    }
    result
}

fn header_len(file: &[u8]) -> usize {
    let n = u16::from_be_bytes([file[58], file[59]]) as usize;
    let m = u16::from_be_bytes([file[60 + n], file[61 + n]]) as usize;
    FIXED_LEN + n + 2 + m + HEADER_TAG_LEN
}

const FULL: usize = SEG as usize + SEGMENT_TAG_LEN;

#[test]
fn round_trips_at_every_interesting_size() {
    let mut token = FakeToken::new();
    let seg = SEG as usize;
    for len in [0, 1, seg - 1, seg, seg + 1, 2 * seg, 3 * seg - 1, 3 * seg, 3 * seg + 1, 40 * seg + 17] {
        for (threads, batch) in [(1, 1), (1, 3), (2, 4), (3, 32)] {
            let plain = data(len, len as u64 + 1);
            let file = encrypt_with(&mut token, &plain, opts(threads, batch));
            let segments = len / seg + 1;
            assert_eq!(file.len(), header_len(&file) + len + segments * SEGMENT_TAG_LEN, "len {len}");
            let (r, _) = decrypt_with(&mut token, &file, opts(threads, batch));
            assert_eq!(r.unwrap(), plain, "len {len} threads {threads} batch {batch}");
            // A reader with other tuning reads the same file.
            let (r, _) = decrypt_with(&mut token, &file, opts(1, 1));
            assert_eq!(r.unwrap(), plain);
            // Positional I/O reads what the stream wrote, and the reverse.
            assert_eq!(decrypt_positional(&mut token, &file, opts(threads, batch)).unwrap(), plain);
            let pfile = encrypt_positional(&mut token, &plain, opts(threads, batch));
            assert_eq!(pfile.len(), file.len(), "len {len}: same layout");
            assert_eq!(header_len(&pfile), header_len(&file));
            let (r, _) = decrypt_with(&mut token, &pfile, opts(2, 3));
            assert_eq!(r.unwrap(), plain, "len {len} threads {threads} batch {batch}: positional file");
            assert_eq!(decrypt_positional(&mut token, &pfile, opts(threads, batch)).unwrap(), plain);
        }
    }
}

#[test]
fn default_options_round_trip_a_multi_segment_file() {
    let mut token = FakeToken::new();
    let plain = data(1_000_000, 7);
    let file = {
        let mut cache = DataKeyCache::disabled();
        let mut out = Vec::new();
        Envelope::new(&mut token, &mut cache, Options::default())
            .encrypt(SYM_KEY, &[], &mut &plain[..], None, &mut out)
            .unwrap();
        out
    };
    let (r, _) = decrypt_with(&mut token, &file, Options::default());
    assert_eq!(r.unwrap(), plain);
    assert_eq!(token.generated, 1, "one GenerateDataKey per file");
    assert_eq!(token.decrypted, 1);
}

#[test]
fn each_encryption_is_different() {
    let mut token = FakeToken::new();
    let plain = data(5000, 1);
    let a = encrypt_with(&mut token, &plain, opts(1, 4));
    let b = encrypt_with(&mut token, &plain, opts(1, 4));
    assert_ne!(a, b);
    assert_eq!(a.len(), b.len());
}

/// Decrypts a tampered file; returns the error text and how much plaintext the stream
/// released. Positional decryption (1 and 2 workers, small and large batches) must fail with the
/// same message and leave no output file.
fn tampered(token: &mut FakeToken, file: &[u8]) -> (String, usize) {
    let mut first: Option<(String, usize)> = None;
    for (threads, batch) in [(1, 1), (2, 8)] {
        let (r, released) = decrypt_with(token, file, opts(threads, batch));
        match r {
            Ok(_) => panic!("tampered file decrypted"),
            Err(e) => {
                let got = (e.to_string(), released.len());
                if let Some(f) = &first {
                    assert_eq!(f, &got, "threads {threads} batch {batch}");
                }
                first.get_or_insert(got);
            }
        }
    }
    let (msg, released) = first.unwrap();
    for (threads, batch) in [(1, 1), (2, 1), (2, 3), (3, 32)] {
        match decrypt_positional(token, file, opts(threads, batch)) {
            Ok(_) => panic!("tampered file decrypted (positional, threads {threads} batch {batch})"),
            Err(e) => assert_eq!(e.to_string(), msg, "positional, threads {threads} batch {batch}"),
        }
    }
    (msg, released)
}

struct Fixture {
    token: FakeToken,
    plain: Vec<u8>,
    file: Vec<u8>,
    body: usize,
}

/// Five segments: four full ones and a final one of 100 bytes.
fn fixture() -> Fixture {
    let mut token = FakeToken::new();
    let plain = data(4 * SEG as usize + 100, 99);
    let file = encrypt_with(&mut token, &plain, opts(1, 4));
    let body = header_len(&file);
    Fixture { token, plain, file, body }
}

fn segment_range(f: &Fixture, i: usize) -> std::ops::Range<usize> {
    let start = f.body + i * FULL;
    start..(start + FULL).min(f.file.len())
}

#[test]
fn a_flipped_bit_in_the_header_is_detected_as_a_header_failure() {
    let mut f = fixture();
    let hl = f.body;
    // Every byte of the header, one at a time.
    for pos in 0..hl {
        let mut file = f.file.clone();
        file[pos] ^= 0x04;
        let (msg, released) = tampered(&mut f.token, &file);
        assert!(msg.starts_with("header:"), "byte {pos}: {msg}");
        assert_eq!(released, 0, "byte {pos}");
    }
    // The salt and the tag are covered by the header tag itself.
    let mut file = f.file.clone();
    file[20] ^= 1;
    assert_eq!(tampered(&mut f.token, &file).0, "header: authentication failed (the header was modified)");
    let mut file = f.file.clone();
    file[0] = b'X';
    assert_eq!(tampered(&mut f.token, &file).0, "header: not a pkms encrypted file (bad magic)");
}

#[test]
fn a_flipped_bit_in_a_segment_names_the_segment_and_releases_only_earlier_ones() {
    let mut f = fixture();
    for i in 0..5 {
        let r = segment_range(&f, i);
        for pos in [r.start, r.start + 500 % (r.len() - 1), r.end - 1] {
            let mut file = f.file.clone();
            file[pos] ^= 0x80;
            let (msg, released) = tampered(&mut f.token, &file);
            if i < 4 {
                assert_eq!(
                    msg,
                    format!(
                        "segment {i}: authentication failed (the segment was modified, moved or duplicated)"
                    )
                );
            } else {
                assert!(
                    msg.starts_with("segment 4 (the final one, 116 bytes): authentication failed"),
                    "{msg}"
                );
            }
            assert_eq!(released, i * SEG as usize, "only verified segments before {i} are written");
        }
    }
    let _ = f.plain;
}

#[test]
fn truncation_is_detected_at_and_between_segment_boundaries() {
    let mut f = fixture();
    // At a boundary: after 0..=4 complete segments (the final one dropped or more).
    for kept in 0..=4 {
        let file = &f.file[..f.body + kept * FULL];
        let (msg, _) = tampered(&mut f.token, file);
        assert_eq!(
            msg,
            format!("truncated: the file ends after {kept} complete segment(s) without its final segment")
        );
    }
    // Inside a segment: the cut segment is read as the final one and fails.
    for cut in [1, 15, 16, 17, 600, FULL - 1] {
        let file = &f.file[..f.body + 2 * FULL + cut];
        let (msg, released) = tampered(&mut f.token, file);
        if cut < SEGMENT_TAG_LEN {
            assert!(msg.starts_with("truncated:"), "cut {cut}: {msg}");
        } else {
            assert!(msg.starts_with("segment 2 (the final one"), "cut {cut}: {msg}");
            assert!(msg.contains("truncated"), "{msg}");
        }
        assert_eq!(released, 2 * SEG as usize);
    }
    // Inside the header.
    let (msg, _) = tampered(&mut f.token, &f.file[..f.body - 1]);
    assert!(msg.starts_with("header: the file ends inside the header"), "{msg}");
}

#[test]
fn reordered_duplicated_and_dropped_segments_are_detected() {
    let mut f = fixture();
    let seg = |f: &Fixture, i: usize| f.file[segment_range(f, i)].to_vec();
    let build = |f: &Fixture, order: &[usize]| {
        let mut file = f.file[..f.body].to_vec();
        for &i in order {
            file.extend_from_slice(&seg(f, i));
        }
        file
    };
    let cases: [(&[usize], &str); 5] = [
        (&[1, 0, 2, 3, 4], "segment 0: authentication failed"),
        (&[0, 1, 3, 2, 4], "segment 2: authentication failed"),
        (&[0, 1, 1, 2, 3, 4], "segment 2: authentication failed"),
        (&[0, 1, 3, 4], "segment 2: authentication failed"),
        (&[0, 1, 2, 3, 4, 4], "segment 4 (the final one, 232 bytes): authentication failed"),
    ];
    for (order, want) in cases {
        let file = build(&f, order);
        let (msg, _) = tampered(&mut f.token, &file);
        assert!(msg.starts_with(want), "{order:?}: {msg}");
    }
    // Dropping the final segment is truncation.
    let file = build(&f, &[0, 1, 2, 3]);
    let (msg, _) = tampered(&mut f.token, &file);
    assert!(msg.starts_with("truncated:"), "{msg}");
    // Appending bytes after the final segment.
    let mut file = f.file.clone();
    file.extend_from_slice(&[0u8; 5]);
    let (msg, _) = tampered(&mut f.token, &file);
    assert!(msg.starts_with("segment 4 (the final one"), "{msg}");
    // Swapping bodies between two files under the same key fails on the first segment.
    let other = encrypt_with(&mut f.token, &f.plain, opts(1, 4));
    let mut mixed = f.file[..f.body].to_vec();
    mixed.extend_from_slice(&other[header_len(&other)..]);
    let (msg, _) = tampered(&mut f.token, &mixed);
    assert!(msg.starts_with("segment 0: authentication failed"), "{msg}");
}

#[test]
fn an_empty_file_has_one_final_segment_that_cannot_be_dropped() {
    let mut token = FakeToken::new();
    let file = encrypt_with(&mut token, b"", opts(1, 4));
    assert_eq!(file.len(), header_len(&file) + SEGMENT_TAG_LEN);
    let (r, _) = decrypt_with(&mut token, &file, opts(1, 4));
    assert_eq!(r.unwrap(), b"");
    let (msg, _) = tampered(&mut token, &file[..header_len(&file)]);
    assert_eq!(msg, "truncated: the file ends after 0 complete segment(s) without its final segment");
}

#[test]
fn decrypt_policy_is_checked_before_the_token_is_asked() {
    let mut token = FakeToken::new();
    let file = encrypt_with(&mut token, b"hello", opts(1, 4));
    let before = token.decrypted;
    let mut cache = DataKeyCache::disabled();
    let mut out = Vec::new();
    let policy = DecryptPolicy { key_id: None, required_context: vec![("purpose".into(), "other".into())] };
    let e = Envelope::new(&mut token, &mut cache, opts(1, 4))
        .decrypt(&mut &file[..], &mut out, &policy)
        .unwrap_err();
    assert_eq!(e.to_string(), "header: the file's encryption context has no pair purpose=other");
    let policy =
        DecryptPolicy { key_id: Some("99999999-2222-3333-4444-555555555555".into()), ..Default::default() };
    let e = Envelope::new(&mut token, &mut cache, opts(1, 4))
        .decrypt(&mut &file[..], &mut out, &policy)
        .unwrap_err();
    assert!(e.to_string().starts_with("header: the file is encrypted under key 11111111-"), "{e}");
    assert_eq!(token.decrypted, before);
    let policy = DecryptPolicy {
        key_id: Some(SYM_KEY.into()),
        required_context: vec![("file".into(), "a.bin".into())],
    };
    let s =
        Envelope::new(&mut token, &mut cache, opts(1, 4)).decrypt(&mut &file[..], &mut out, &policy).unwrap();
    assert_eq!(out, b"hello");
    assert_eq!(
        s.context,
        vec![("file".to_string(), "a.bin".to_string()), ("purpose".to_string(), "test".to_string())]
    );
}

#[test]
fn the_cache_reuses_a_data_key_within_its_limits_only() {
    let mut token = FakeToken::new();
    let limits = CacheLimits { max_age: Duration::from_secs(600), max_messages: 3, max_bytes: 10_000 };
    let mut cache = DataKeyCache::new(limits);
    let mut files = Vec::new();
    let mut hits = Vec::new();
    for i in 0..7 {
        let plain = data(100, i);
        let mut out = Vec::new();
        let s = Envelope::new(&mut token, &mut cache, opts(1, 4))
            .encrypt(SYM_KEY, &ctx(), &mut &plain[..], Some(100), &mut out)
            .unwrap();
        hits.push(s.cached_data_key);
        files.push((plain, out));
    }
    assert_eq!(hits, [false, true, true, false, true, true, false], "at most 3 files per data key");
    assert_eq!(token.generated, 3);
    // Same data key, yet each file has its own salt and so its own segment keys.
    assert_eq!(files[0].1[60..60 + 100], files[1].1[60..60 + 100]);
    assert_ne!(files[0].1[10..42], files[1].1[10..42]);

    // Decryption: one token Decrypt per distinct wrapped key.
    let mut dcache = DataKeyCache::new(limits);
    for (plain, file) in &files {
        let mut out = Vec::new();
        Envelope::new(&mut token, &mut dcache, opts(1, 4))
            .decrypt(&mut &file[..], &mut out, &DecryptPolicy::default())
            .unwrap();
        assert_eq!(&out, plain);
    }
    assert_eq!(token.decrypted, 3);
    assert_eq!(dcache.stats().decrypt_hits, 4);

    // Byte limit: 4000-byte files with a 10000-byte budget share a key two at a time.
    let mut token = FakeToken::new();
    let mut cache = DataKeyCache::new(CacheLimits { max_messages: 100, ..limits });
    for _ in 0..4 {
        let plain = data(4000, 3);
        Envelope::new(&mut token, &mut cache, opts(1, 4))
            .encrypt(SYM_KEY, &ctx(), &mut &plain[..], Some(4000), &mut Vec::new())
            .unwrap();
    }
    assert_eq!(token.generated, 2);
    // Unknown size (stdin) bypasses the cache; another context is another entry.
    Envelope::new(&mut token, &mut cache, opts(1, 4))
        .encrypt(SYM_KEY, &ctx(), &mut &b"x"[..], None, &mut Vec::new())
        .unwrap();
    assert_eq!(token.generated, 3);
    Envelope::new(&mut token, &mut cache, opts(1, 4))
        .encrypt(SYM_KEY, &[], &mut &b"x"[..], Some(1), &mut Vec::new())
        .unwrap();
    assert_eq!(token.generated, 4);

    // Age limit: an expired entry is not used.
    let mut token = FakeToken::new();
    let mut cache = DataKeyCache::new(CacheLimits { max_age: Duration::from_millis(30), ..limits });
    for _ in 0..2 {
        Envelope::new(&mut token, &mut cache, opts(1, 4))
            .encrypt(SYM_KEY, &[], &mut &b"x"[..], Some(1), &mut Vec::new())
            .unwrap();
        std::thread::sleep(Duration::from_millis(60));
    }
    assert_eq!(token.generated, 2);

    // Disabled cache: one data key per file.
    let mut token = FakeToken::new();
    let mut cache = DataKeyCache::disabled();
    for _ in 0..3 {
        Envelope::new(&mut token, &mut cache, opts(1, 4))
            .encrypt(SYM_KEY, &[], &mut &b"x"[..], Some(1), &mut Vec::new())
            .unwrap();
    }
    assert_eq!(token.generated, 3);
}

#[test]
fn bad_key_ids_and_contexts_fail_before_any_output() {
    let mut token = FakeToken::new();
    let mut cache = DataKeyCache::disabled();
    let mut out = Vec::new();
    let e = Envelope::new(&mut token, &mut cache, opts(1, 4))
        .encrypt("not-a-key", &[], &mut &b"x"[..], None, &mut out)
        .unwrap_err();
    assert!(e.to_string().starts_with("could not get a data key from the token"), "{e}");
    let dup = vec![("a".to_string(), "1".to_string()), ("a".to_string(), "2".to_string())];
    let e = Envelope::new(&mut token, &mut cache, opts(1, 4))
        .encrypt(SYM_KEY, &dup, &mut &b"x"[..], None, &mut out)
        .unwrap_err();
    assert!(e.to_string().contains("duplicate encryption context key"), "{e}");
    assert!(out.is_empty());
    assert_eq!(token.generated, 0);
}
