//! The audit log's size: each platform's capacity (half its store: the QEMU board's 3,696
//! entries beside the most keys and aliases the token holds), a log the keys leave less flash
//! than that (full sooner, never a withheld answer), the fill level a login is told, and power
//! cuts while a log of the QEMU board's size drops or trims entries.

use pkms_protocol::access::{AuditFullMode, AuditLogStatus};
use pkms_protocol::framing::decode_response_with_status;
use pkms_protocol::messages::{Request, Response};
use pkms_protocol::{ErrorCode, KeySpec};

use super::auth::{check_stored_log, encrypt_code, init, login, read_all, verify_chain, CAPACITY, PIN};
use super::*;
use crate::audit::DROP_CHUNK;
use crate::records::{Kind, MAX_ALIASES, MAX_KEYS};
use crate::Platform;

const QEMU_CAPACITY: usize = <QemuSized as Platform>::AUDIT_CAPACITY;

fn random<P: HarnessPlatform>(h: &mut Harness<P>) -> Reply {
    h.ok(Request::GenerateRandom(pkms_protocol::request::GenerateRandom { number_of_bytes: 1 }))
}

fn held<P: HarnessPlatform>(h: &Harness<P>) -> usize {
    h.token.core.entries(Kind::Audit).len()
}

/// A new session, logged in as the administrator; returns what the answer to Authenticate said
/// of the audit log.
fn login_status<P: HarnessPlatform>(h: &mut Harness<P>) -> AuditLogStatus {
    h.close_session();
    h.open_session();
    let answer =
        h.ok(Request::Authenticate(pkms_protocol::request::Authenticate { principal: "admin", pin: PIN }));
    let (frame, status) = decode_response_with_status(&answer.0).unwrap();
    assert!(matches!(frame.result, Ok(Response::Done(_))));
    status.expect("the answer to a login carries no audit log status")
}

/// Runs `test` on a thread with a 64 MiB stack: a token of the QEMU board's size (its index is
/// 137 KiB) is moved several times on the stack while it is built, which overflows a test
/// thread's 2 MiB in unoptimised builds.
fn on_a_big_stack(test: impl FnOnce() + Send + 'static) {
    let thread = std::thread::Builder::new().stack_size(64 << 20).spawn(test).expect("spawn a test thread");
    if let Err(panic) = thread.join() {
        std::panic::resume_unwind(panic);
    }
}

fn a_qemu_sized_token() -> Harness<QemuSized> {
    Harness::on(crate::mock_flash::MockFlash::new(QEMU_FLASH), 1)
}

#[test]
fn a_token_of_the_qemu_boards_size_holds_its_full_log_beside_the_most_keys_and_aliases() {
    on_a_big_stack(|| {
        assert_eq!(QEMU_CAPACITY, 3696);
        let mut h = a_qemu_sized_token();
        init(&mut h, AuditFullMode::Overwrite);
        while held(&h) < QEMU_CAPACITY {
            random(&mut h);
        }
        // The login's own entries (the session closed, Authenticate) went in behind a drop.
        let status = login_status(&mut h);
        assert_eq!((status.capacity, status.entries + status.room), (3696, 3696));
        assert!(status.room < DROP_CHUNK as u32, "{status:?}");
        // The keys' half: every key and alias the token holds at most, while the log stays full.
        let mut first_key = None;
        for _ in 0..MAX_KEYS {
            let id = h.create(KeySpec::SymmetricDefault);
            first_key.get_or_insert(id);
        }
        let target = s(&first_key.unwrap());
        for i in 0..MAX_ALIASES {
            let name = std::format!("alias/a{i}");
            h.ok(Request::CreateAlias(pkms_protocol::request::CreateAlias {
                alias_name: &name,
                target_key_id: &target,
            }));
        }
        assert_eq!(super::basics::info(&mut h).key_count as usize, MAX_KEYS);
        let entries = held(&h);
        assert!(entries <= QEMU_CAPACITY && entries > QEMU_CAPACITY - DROP_CHUNK, "{entries} entries");
        let (entries, seq, hash, sig, pk, first, base) = read_all(&mut h);
        assert!(first > 1);
        verify_chain(&entries, seq, &hash, &sig, &pk, first, &base);
        // And a restart finds it all.
        let mut h = h.restart();
        assert!(check_stored_log(&mut h) > 1);
        login(&mut h, "admin", PIN);
        let blob = h.encrypt(&target, b"x", &[]);
        assert_eq!(h.decrypt(&blob, &[]).unwrap(), b"x");
    });
}

#[test]
fn the_answer_to_a_login_tells_how_full_the_log_is_and_no_other_answer_does() {
    for mode in [AuditFullMode::Overwrite, AuditFullMode::Refuse] {
        let mut h = Harness::new();
        init(&mut h, mode);
        for _ in 0..10 {
            random(&mut h);
        }
        let status = login_status(&mut h);
        // The login's own entry is counted.
        let entries = held(&h);
        assert_eq!(
            status,
            AuditLogStatus {
                entries: entries as u32,
                capacity: CAPACITY as u32,
                room: (CAPACITY - entries) as u32,
                when_full: mode
            }
        );
        for answer in [
            random(&mut h),
            h.ok(Request::GetInfo(pkms_protocol::request::GetInfo {})),
            h.call(Request::Authenticate(pkms_protocol::request::Authenticate {
                principal: "admin",
                pin: b"999999",
            })),
        ] {
            assert_eq!(decode_response_with_status(&answer.0).unwrap().1, None);
        }
        h.close_session();
        let clear = h.outer(Request::GetInfo(pkms_protocol::request::GetInfo {}));
        assert_eq!(decode_response_with_status(&clear.0).unwrap().1, None);
    }
}

/// Fills a 16-page store with keys and their log until the keys leave the log less flash than
/// its capacity.
fn crowded(mode: AuditFullMode) -> Harness {
    let mut h = Harness::with_flash(crate::mock_flash::MockFlash::new(16 * 4096));
    init(&mut h, mode);
    for _ in 0..130 {
        h.ok(Request::CreateKey(pkms_protocol::request::CreateKey {
            key_spec: KeySpec::Hmac512,
            key_usage: Some(pkms_protocol::KeyUsage::GenerateVerifyMac),
            description: "",
            tags: pkms_protocol::Tags::new(),
            user_presence_required: false,
        }));
    }
    assert!(held(&h) < CAPACITY);
    h
}

#[test]
fn an_overwriting_log_the_keys_leave_less_flash_drops_entries_sooner_and_never_withholds_an_answer() {
    let mut h = crowded(AuditFullMode::Overwrite);
    let mut most = 0;
    for _ in 0..3 * CAPACITY {
        random(&mut h);
        most = most.max(held(&h));
    }
    assert!(most < CAPACITY, "the log grew to {most} entries in a store the keys crowd");
    let status = login_status(&mut h);
    assert!(status.room < DROP_CHUNK as u32 && status.entries + status.room < CAPACITY as u32, "{status:?}");
    let (entries, seq, hash, sig, pk, first, base) = read_all(&mut h);
    assert!(first > 1);
    verify_chain(&entries, seq, &hash, &sig, &pk, first, &base);
    // The keys still work, and another one fits where the log gives way.
    h.create(KeySpec::SymmetricDefault);
}

#[test]
fn a_refusing_log_the_keys_leave_less_flash_refuses_sooner_and_a_trim_frees_it() {
    let mut h = crowded(AuditFullMode::Refuse);
    let k = s(&h.create(KeySpec::SymmetricDefault));
    let mut refused = false;
    for _ in 0..CAPACITY {
        if let Some(code) = encrypt_code(&mut h, &k, &[]) {
            assert_eq!(code, ErrorCode::AuditLogFull);
            refused = true;
            break;
        }
    }
    assert!(refused, "never refused");
    assert!(held(&h) < CAPACITY, "{} entries: the capacity, not the flash, filled it", held(&h));
    assert!(h.token.log.is_full(&h.token.core));
    let status = login_status(&mut h);
    assert_eq!(status.room, 0);
    assert_eq!(status.when_full, AuditFullMode::Refuse);
    let (entries, seq, ..) = read_all(&mut h);
    assert!(!entries.is_empty());
    h.ok(Request::TrimAuditLog(pkms_protocol::request::TrimAuditLog { through_sequence: seq }));
    assert_eq!(encrypt_code(&mut h, &k, &[]), None);
    assert!(login_status(&mut h).room > 0);
}

#[test]
fn a_refusing_log_records_every_request_it_admitted_even_when_its_writes_took_the_last_room() {
    let mut h = crowded(AuditFullMode::Refuse);
    let seq = h.token.log.head_sequence;
    h.ok(Request::TrimAuditLog(pkms_protocol::request::TrimAuditLog { through_sequence: seq }));
    // Keys until the log has no room: each CreateKey takes flash the log would have had.
    let (created, code, message) = keys_until_full(&mut h);
    assert_eq!(code, ErrorCode::AuditLogFull, "{message}");
    assert!(created > 0 && held(&h) < CAPACITY);
    // Every key made is in the log (GetAuditCheckpoint and ReadAuditLog are served while full).
    let (entries, ..) = read_all(&mut h);
    let logged = entries
        .iter()
        .filter(|e| pkms_protocol::access::audit_operation_name(e.operation) == Some("CreateKey"))
        .count();
    assert_eq!(logged, created, "a key made with the log's last room went unlogged");
}

/// HMAC_512 keys made until the store refuses one; the error of the refusal.
fn keys_until_full(h: &mut Harness) -> (usize, ErrorCode, String) {
    let mut made = 0;
    loop {
        let r = h.call(Request::CreateKey(pkms_protocol::request::CreateKey {
            key_spec: KeySpec::Hmac512,
            key_usage: None,
            description: "",
            tags: pkms_protocol::Tags::new(),
            user_presence_required: false,
        }));
        if let Err(e) = r.get() {
            return (made, e.code, String::from(e.message));
        }
        made += 1;
    }
}

#[test]
fn keys_always_come_before_the_old_entries_of_an_overwriting_log() {
    let flash = || crate::mock_flash::MockFlash::new(16 * 4096);
    let (open, ..) = keys_until_full(&mut Harness::with_flash(flash()));
    let mut h = Harness::with_flash(flash());
    init(&mut h, AuditFullMode::Overwrite);
    while held(&h) < CAPACITY {
        random(&mut h);
    }
    let (made, code, message) = keys_until_full(&mut h);
    assert_eq!(code, ErrorCode::LimitExceeded, "{message}");
    // The log gave way: a handful of keys fewer than on an open token (the administrator's
    // records, the checkpoint, the entries of the last requests).
    assert!(made + 8 >= open && made < open, "{made} keys beside the log, {open} on an open token");
    assert!(held(&h) < 2 * DROP_CHUNK, "{} entries left", held(&h));
    // What is left still chains behind a signed checkpoint.
    if held(&h) > 0 {
        assert!(check_stored_log(&mut h) > 1);
    }
}

#[test]
fn a_refusing_log_keeps_its_entries_when_keys_fill_the_store_until_it_is_trimmed() {
    let mut h = Harness::with_flash(crate::mock_flash::MockFlash::new(16 * 4096));
    init(&mut h, AuditFullMode::Refuse);
    for _ in 0..CAPACITY / 2 {
        random(&mut h);
    }
    let (made, code, message) = keys_until_full(&mut h);
    assert!(made > 0);
    // Refused either as the log's (no room for the next entry) or the store's (no room for the key).
    assert!(
        code == ErrorCode::AuditLogFull || message.contains("pkms audit export --out FILE --trim"),
        "{code:?}: {message}"
    );
    let before = held(&h);
    assert!(before > CAPACITY / 2, "entries were dropped from a refusing log");
    let (entries, seq, ..) = read_all(&mut h);
    assert_eq!(entries.first().map(|e| e.sequence), Some(1), "entries were dropped from a refusing log");
    h.ok(Request::TrimAuditLog(pkms_protocol::request::TrimAuditLog { through_sequence: seq }));
    let (more, ..) = keys_until_full(&mut h);
    assert!(more > 0, "the trim freed no room for keys");
}

#[test]
fn a_store_the_keys_filled_before_the_log_held_anything_is_not_a_full_log() {
    let mut h = Harness::with_flash(crate::mock_flash::MockFlash::new(16 * 4096));
    init(&mut h, AuditFullMode::Refuse);
    let seq = h.token.log.head_sequence;
    h.ok(Request::TrimAuditLog(pkms_protocol::request::TrimAuditLog { through_sequence: seq }));
    // Planted straight into the store: key-side records until the flash has no room for an entry.
    let mut n = 0u32;
    while h.token.core.storage_free_bytes() >= crate::platform::AUDIT_ENTRY_BYTES {
        let mut id = [0u8; 16];
        id[..4].copy_from_slice(&n.to_be_bytes());
        if h.token.core.store_mut().put(Kind::Alias.byte(), &id, &[0x55; 100]).is_err() {
            break;
        }
        n += 1;
    }
    let entries = held(&h);
    for _ in 0..entries {
        let first = h.token.core.entries(Kind::Audit)[0].id;
        h.token.core.store_mut().remove(Kind::Audit.byte(), &first).unwrap();
    }
    assert_eq!(h.token.log.room(&h.token.core), 0);
    assert!(!h.token.log.is_full(&h.token.core), "an empty log counts as full");
}

/// Cuts power at every `every`-th byte of the GenerateRandom whose entry makes a full log drop
/// its oldest chunk (mount must finish it: the entries go only behind a signed base, and only a
/// whole chunk at a time). Returns the cut points.
fn cut_through_a_drop<P: HarnessPlatform>(flash: crate::mock_flash::MockFlash, every: u64) -> u64 {
    let capacity = P::AUDIT_CAPACITY;
    let mut h = Harness::<P>::on(flash, 1);
    init(&mut h, AuditFullMode::Overwrite);
    // One short of full: the administrator's Authenticate after the restart fills it.
    while held(&h) < capacity - 1 {
        random(&mut h);
    }
    let start = h.token.into_flash();
    let total = {
        let mut h = Harness::<P>::on(start.clone(), 1);
        login(&mut h, "admin", PIN);
        assert_eq!(held(&h), capacity);
        let before = h.token.flash().cut_points();
        random(&mut h);
        h.token.flash().cut_points() - before
    };
    assert!(total > 0);
    let mut dropped_seen = false;
    for cut in (0..total).filter(|c| c % every == 0 || *c + 1 == total) {
        let mut h = Harness::<P>::on(start.clone(), 1);
        login(&mut h, "admin", PIN);
        h.token.core.flash_mut().cut_power_after(cut);
        h.call(Request::GenerateRandom(pkms_protocol::request::GenerateRandom { number_of_bytes: 1 }));
        let mut flash = h.token.into_flash();
        assert!(flash.is_power_cut());
        flash.restore_power();
        let mut h = Harness::<P>::on(flash, 2000 + cut);
        let first = check_stored_log(&mut h);
        assert!(first == 1 || first == 1 + DROP_CHUNK as u64, "cut {cut}: first {first}");
        dropped_seen |= first > 1;
        if cut % 512 == 0 {
            login(&mut h, "admin", PIN);
            let (entries, seq, hash, sig, pk, first, base) = read_all(&mut h);
            verify_chain(&entries, seq, &hash, &sig, &pk, first, &base);
        }
    }
    assert!(dropped_seen, "no cut reached the drop");
    total
}

#[test]
fn a_power_cut_at_any_byte_of_a_drop_from_a_log_of_the_qemu_boards_size_keeps_a_verifiable_log() {
    on_a_big_stack(|| {
        let total = cut_through_a_drop::<QemuSized>(crate::mock_flash::MockFlash::new(QEMU_FLASH), 1);
        std::println!("audit drop at {QEMU_CAPACITY} entries: {total} cut points");
    });
}

#[test]
fn a_power_cut_while_a_log_of_the_qemu_boards_size_is_trimmed_keeps_a_verifiable_log() {
    on_a_big_stack(|| {
        let mut h = a_qemu_sized_token();
        init(&mut h, AuditFullMode::Refuse);
        while held(&h) < QEMU_CAPACITY - 1 {
            random(&mut h);
        }
        let start = h.token.into_flash();
        let (through, total) = {
            let mut h = Harness::<QemuSized>::on(start.clone(), 1);
            login(&mut h, "admin", PIN);
            assert!(h.token.log.is_full(&h.token.core));
            let through = h.token.log.head_sequence - 1;
            let before = h.token.flash().cut_points();
            h.ok(Request::TrimAuditLog(pkms_protocol::request::TrimAuditLog { through_sequence: through }));
            (through, h.token.flash().cut_points() - before)
        };
        // Every cut point would be half a million (each removed entry is zeroed byte by byte): about
        // 300 spread over the trim, and every one of its first and last 64 bytes.
        let step = (total / 300).max(1);
        let cuts = (0..total).filter(|c| c % step == 0 || *c < 64 || *c + 64 >= total);
        let mut checked = 0;
        for cut in cuts {
            let mut h = Harness::<QemuSized>::on(start.clone(), 1);
            login(&mut h, "admin", PIN);
            h.token.core.flash_mut().cut_power_after(cut);
            h.call(Request::TrimAuditLog(pkms_protocol::request::TrimAuditLog { through_sequence: through }));
            let mut flash = h.token.into_flash();
            assert!(flash.is_power_cut(), "cut {cut} of {total}");
            flash.restore_power();
            let mut h = Harness::<QemuSized>::on(flash, 3000 + cut);
            // Nothing is gone, or everything up to `through` is (mount finishes a cut removal).
            let first = check_stored_log(&mut h);
            assert!(first == 1 || first == through + 1, "cut {cut}: first {first}");
            checked += 1;
        }
        std::println!("audit trim of {QEMU_CAPACITY} entries: {checked} of {total} cut points");
    });
}
