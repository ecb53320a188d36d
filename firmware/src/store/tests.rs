//! Store tests: the map contract, garbage collection, full store, corrupt flash, power cuts.

use super::*;
use crate::mock_flash::MockFlash;

/// The store as the tests run it: an index of 1,300 records.
type Store<F> = super::Store<F, Index<1300>>;
use std::collections::BTreeMap;
use std::vec::Vec;

const KIND: u8 = 3;

fn id(n: u32) -> RecordId {
    let mut id = [0u8; ID_LEN];
    id[..4].copy_from_slice(&n.to_be_bytes());
    id
}

/// A body unique to (n, gen): no 24 bytes of it occur in another.
fn body(n: u32, gen: u32, len: usize) -> Vec<u8> {
    (0..len)
        .map(|i| {
            // SplitMix64's finaliser over (n, gen, i).
            let mut x = (u64::from(n) << 40) ^ (u64::from(gen) << 20) ^ i as u64;
            x = (x ^ (x >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
            x = (x ^ (x >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
            (x ^ (x >> 31)) as u8
        })
        .collect()
}

fn read(s: &mut Store<MockFlash>, n: u32) -> Option<Vec<u8>> {
    let mut out = [0u8; MAX_PAYLOAD];
    s.get(KIND, &id(n), &mut out).unwrap().map(|len| out[..len].to_vec())
}

#[test]
fn put_get_replace_remove_and_remount() {
    let mut s = Store::mount(MockFlash::new(16 * 4096));
    assert_eq!(s.health(), Health::Ok);
    assert!(s.is_empty());
    s.put(KIND, &id(1), b"one").unwrap();
    s.put(KIND, &id(2), b"two").unwrap();
    s.put(KIND, &id(1), b"uno").unwrap();
    assert_eq!(read(&mut s, 1).unwrap(), b"uno");
    assert_eq!(read(&mut s, 2).unwrap(), b"two");
    assert!(s.remove(KIND, &id(2)).unwrap());
    assert!(!s.remove(KIND, &id(2)).unwrap());
    assert_eq!(read(&mut s, 2), None);
    let flash = s.into_flash();
    // The replaced and removed records are zeroed: their bytes are not on flash any more.
    let raw = flash.as_bytes();
    assert!(!raw.windows(3).any(|w| w == b"one" || w == b"two"));
    let mut s = Store::mount(flash);
    assert_eq!(read(&mut s, 1).unwrap(), b"uno");
    assert_eq!(read(&mut s, 2), None);
    assert_eq!(s.entries(KIND).len(), 1);
}

#[test]
fn entries_are_sorted_by_kind_and_id() {
    let mut s = Store::mount(MockFlash::new(16 * 4096));
    for n in [5u32, 1, 9, 3] {
        s.put(KIND, &id(n), b"x").unwrap();
    }
    s.put(KIND + 1, &id(0), b"y").unwrap();
    let ids: Vec<u32> =
        s.entries(KIND).iter().map(|e| u32::from_be_bytes([e.id[0], e.id[1], e.id[2], e.id[3]])).collect();
    assert_eq!(ids, [1, 3, 5, 9]);
    assert_eq!(s.entries(KIND + 1).len(), 1);
    assert_eq!(s.entries(KIND + 2).len(), 0);
}

#[test]
fn garbage_collection_keeps_everything_and_spreads_wear() {
    let mut s = Store::mount(MockFlash::new(8 * 4096));
    let mut model = BTreeMap::new();
    for round in 0..2000u32 {
        let n = round % 23;
        let b = body(n, round, 100 + (round as usize * 37) % 300);
        s.put(KIND, &id(n), &b).unwrap();
        model.insert(n, b);
    }
    for (n, b) in &model {
        assert_eq!(read(&mut s, *n).as_ref(), Some(b));
    }
    let flash = s.into_flash();
    let counts = flash.erase_counts().to_vec();
    let (min, max) = (counts.iter().min().unwrap(), counts.iter().max().unwrap());
    assert!(max - min <= 2, "uneven wear: {counts:?}");
    let mut s = Store::mount(flash);
    for (n, b) in &model {
        assert_eq!(read(&mut s, *n).as_ref(), Some(b));
    }
}

#[test]
fn full_store_refuses_and_keeps_what_it_has() {
    let mut s = Store::mount(MockFlash::new(6 * 4096));
    let mut stored = 0u32;
    loop {
        match s.put(KIND, &id(stored), &body(stored, 0, 500)) {
            Ok(()) => stored += 1,
            Err(e) => {
                assert_eq!(e, StoreError::Full);
                break;
            }
        }
        assert!(stored < 1000);
    }
    assert!(stored >= 28, "only {stored} records fit");
    // Replacing an existing record with one of equal size still works when full.
    s.put(KIND, &id(0), &body(0, 1, 500)).unwrap();
    assert_eq!(s.put(KIND, &id(999), &body(999, 0, 500)), Err(StoreError::Full));
    let mut s = Store::mount(s.into_flash());
    for n in 1..stored {
        assert_eq!(read(&mut s, n).unwrap(), body(n, 0, 500));
    }
    assert_eq!(read(&mut s, 0).unwrap(), body(0, 1, 500));
    assert_eq!(s.put(KIND, &id(0), &[0; MAX_PAYLOAD]), Err(StoreError::TooLarge));
}

#[test]
fn foreign_or_garbage_flash_is_corrupted_not_formatted() {
    let s = Store::mount(MockFlash::from_bytes(std::vec![0u8; 8 * 4096]));
    assert_eq!(s.health(), Health::Corrupted);
    let mut s = s;
    assert_eq!(s.put(KIND, &id(1), b"x"), Err(StoreError::Corrupted));
    // Nothing was written.
    assert!(s.into_flash().as_bytes().iter().all(|&b| b == 0));
    let small = Store::mount(MockFlash::new(2 * 4096));
    assert_eq!(small.health(), Health::Unsupported);
}

#[test]
fn a_record_with_a_flipped_bit_is_dropped_and_its_neighbours_kept() {
    let mut s = Store::mount(MockFlash::new(8 * 4096));
    s.put(KIND, &id(1), b"hello world").unwrap();
    s.put(KIND, &id(2), b"neighbour").unwrap();
    let mut raw = s.into_flash().into_bytes();
    let pos = raw.windows(5).position(|w| w == b"hello").unwrap();
    raw[pos] ^= 1;
    let mut s = Store::mount(MockFlash::from_bytes(raw));
    // A bad CRC reads as a torn (never committed) write: the record is gone, nothing panics.
    assert_eq!(read(&mut s, 1), None);
    assert_eq!(read(&mut s, 2).unwrap(), b"neighbour");
}

/// Cuts power after every possible byte count during a workload with replaces, removes and
/// garbage collection; after each cut, every record holds its value from before or after the
/// interrupted operation.
/// A store that has seen replaces and garbage collection, its model, and the operations the
/// power-cut tests interrupt (replaces and removes of the records in it).
type Op = (u32, Option<Vec<u8>>);
fn workload() -> (MockFlash, BTreeMap<u32, Vec<u8>>, Vec<Op>) {
    let mut base = Store::mount(MockFlash::new(5 * 4096));
    let mut model: BTreeMap<u32, Vec<u8>> = BTreeMap::new();
    for round in 0..60u32 {
        let n = round % 7;
        let b = body(n, round, 150 + (round as usize * 53) % 250);
        base.put(KIND, &id(n), &b).unwrap();
        model.insert(n, b);
        // Records that stay: garbage collection has live records to copy.
        if round % 20 == 10 {
            let m = 20 + round / 20;
            let b = body(m, 0, 64);
            base.put(KIND, &id(m), &b).unwrap();
            model.insert(m, b);
        }
    }
    let ops: Vec<Op> = (0..12u32)
        .map(|k| {
            if k % 4 == 3 {
                (k % 7, None)
            } else {
                (k % 7, Some(body(k % 7, 1000 + k, 120 + (k as usize * 91) % 400)))
            }
        })
        .collect();
    (base.into_flash(), model, ops)
}

/// The store, from `start`, churned with another record until `op` has to collect garbage
/// first (and that churn's model), or `None` if it never does.
fn about_to_collect(
    start: &MockFlash,
    model: &BTreeMap<u32, Vec<u8>>,
    op: &Op,
) -> Option<(MockFlash, BTreeMap<u32, Vec<u8>>)> {
    let mut s = Store::mount(start.clone());
    let mut model = model.clone();
    for churn in 0..200u32 {
        if probe(s.flash(), op.0, op.1.as_deref()).1 {
            return Some((s.into_flash(), model));
        }
        let b = body(50, churn, 60 + (churn as usize * 37) % 300);
        s.put(KIND, &id(50), &b).unwrap();
        model.insert(50, b);
    }
    None
}

/// Cuts power at every cut point (every byte written, every erase step) of a workload with
/// replaces, removes and garbage collection; after each cut, every record holds its value from
/// before or after the interrupted operation, a dropped value's bytes are gone from the flash,
/// and the mock flash's NOR rules held throughout (no word programmed three times, nothing
/// programmed over what an interrupted erase left).
#[test]
fn power_cut_at_every_byte_leaves_old_or_new_values() {
    let (start, model, ops) = workload();
    let mut stats = Stats::default();
    let mut collecting = 0u32;
    for (n, value) in &ops {
        cut_everywhere(&start, &model, *n, value.as_deref(), &mut stats);
        // Again from a state where this very operation has to collect garbage first.
        if let Some((flash, model2)) = about_to_collect(&start, &model, &(*n, value.clone())) {
            cut_everywhere(&flash, &model2, *n, value.as_deref(), &mut stats);
            collecting += 1;
        }
    }
    std::println!(
        "store: exercised {} power-cut points ({collecting} operations also while collecting), {} \
         also with a half-erased page; {} remounts erased a page to finish what the cut left",
        stats.cuts,
        stats.half_erases,
        stats.recoveries
    );
    assert!(stats.cuts > 1000);
    // Every put was also cut while collecting (a remove writes no record, so never collects).
    assert_eq!(collecting, ops.iter().filter(|(_, v)| v.is_some()).count() as u32);
    assert!(stats.half_erases > 0, "no cut stopped a collection before its erase");
    assert!(stats.recoveries > 0, "no remount had anything to erase or collect");
}

/// Power fails again while the store recovers from a cut, and once more during the recovery
/// after that: each time the records hold their old or new values, dropped values are gone once
/// a recovery completes, and no word is programmed a third time (the mock flash fails the test
/// if one is). Every fourth first cut that needs a recovery is tested: one in 375 of those at
/// every cut point of its recovery, the others at the recovery's first ten points (where a
/// retirement and an erase begin), its middle and a pseudo-random point; the third cut is at a
/// pseudo-random point. `PKMS_LONG_POWER_CUTS=1` tests every first cut, one in 13 of them at
/// every point of its recovery (about a million second cuts; minutes).
#[test]
fn power_cuts_during_recovery_leave_old_or_new_values() {
    let (start, model, ops) = workload();
    let long = std::env::var_os("PKMS_LONG_POWER_CUTS").is_some_and(|v| v == "1");
    let (stride, exhaustive) = if long { (1, 13) } else { (4, 1500) };
    let mut rng = 0x7265_636f_7665_7279u64;
    let (mut first_cuts, mut second_cuts, mut third_cuts) = (0u64, 0u64, 0u64);
    for (k, (n, value)) in ops.iter().enumerate() {
        let mut starts = std::vec![(start.clone(), model.clone())];
        starts.extend(about_to_collect(&start, &model, &(*n, value.clone())));
        for (base, model) in &starts {
            let (total, _) = probe(base, *n, value.as_deref());
            for first in 0..total {
                let mut flash = base.clone();
                flash.cut_power_after(first);
                let mut s = Store::mount(flash);
                assert!(apply(&mut s, *n, value.as_deref()).is_err());
                let mut cut = s.into_flash();
                cut.restore_power();
                let recovery = recovery_points(&cut);
                if recovery == 0 {
                    continue;
                }
                first_cuts += 1;
                if !first_cuts.is_multiple_of(stride) {
                    continue;
                }
                let mut next = || {
                    rng = rng.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
                    rng >> 33
                };
                // The first points (where a retirement and an erase begin), the middle and a
                // pseudo-random one; or every one.
                let seconds: Vec<u64> = if first_cuts.is_multiple_of(exhaustive) {
                    (0..recovery).collect()
                } else {
                    (0..10).chain([recovery / 2, next() % recovery]).filter(|&c| c < recovery).collect()
                };
                for second in seconds {
                    let mut flash = cut.clone();
                    flash.cut_power_after(second);
                    let mut flash = Store::mount(flash).into_flash();
                    assert!(flash.is_power_cut(), "recovery cut {second} of {recovery} not reached");
                    flash.restore_power();
                    second_cuts += 1;
                    let again = recovery_points(&flash);
                    if again > 0 {
                        flash.cut_power_after(next() % again);
                        flash = Store::mount(flash).into_flash();
                        flash.restore_power();
                        third_cuts += 1;
                    }
                    let what = std::format!("op {k}, cut {first}, recovery cut {second} of {recovery}");
                    let mut s = Store::mount(flash);
                    check_after_cut(&mut s, model, *n, value.as_deref(), &what);
                    remove_all_and_check_nothing_lingers(&mut s, model, &what);
                    churn_and_check(&mut s, &what);
                }
            }
        }
    }
    std::println!(
        "store: {second_cuts} cut points inside the recoveries of the cuts above ({first_cuts} \
         needed one, one in {stride} tested), each followed by a cut inside the next recovery \
         ({third_cuts})"
    );
    assert!(first_cuts > 1000 && second_cuts > first_cuts && third_cuts > 1000);
}

/// On an erased flash, power fails while the store writes its first record (a torn page header
/// or record), and again at every point of the next write: the flash never looks like foreign
/// data (which would make the token refuse to work), nothing half-written counts, and a third
/// write works.
#[test]
fn repeated_cuts_on_a_fresh_flash_never_make_it_look_foreign() {
    let fresh = MockFlash::new(5 * 4096);
    let cut = |flash: &MockFlash, at: u64, n: u32, value: &[u8]| {
        let mut flash = flash.clone();
        flash.cut_power_after(at);
        let mut s = Store::mount(flash);
        assert!(s.put(KIND, &id(n), value).is_err());
        let mut flash = s.into_flash();
        flash.restore_power();
        flash
    };
    let (first_total, _) = probe(&fresh, 1, Some(b"first"));
    let mut outcomes = 0;
    for first in 0..first_total {
        let once = cut(&fresh, first, 1, b"first");
        let mut s = Store::mount(once.clone());
        assert_eq!(s.health(), Health::Ok, "cut {first}");
        let one = read(&mut s, 1);
        assert!(one.is_none() || one.as_deref() == Some(&b"first"[..]), "cut {first}");
        let (second_total, _) = probe(&once, 2, Some(b"second"));
        for second in 0..second_total {
            let twice = cut(&once, second, 2, b"second");
            let mut s = Store::mount(twice);
            assert_eq!(s.health(), Health::Ok, "cuts {first}, {second}");
            assert_eq!(read(&mut s, 1), one, "cuts {first}, {second}");
            let two = read(&mut s, 2);
            assert!(two.is_none() || two.as_deref() == Some(&b"second"[..]));
            s.put(KIND, &id(3), b"third").unwrap();
            let mut s = Store::mount(s.into_flash());
            assert_eq!(read(&mut s, 3).as_deref(), Some(&b"third"[..]), "cuts {first}, {second}");
            assert_eq!(read(&mut s, 1), one);
            outcomes += 1;
        }
    }
    assert!(outcomes > 1000, "{outcomes}");
}

/// A page counts as used only once its header is complete: power cut at every point of the
/// first page header leaves either no used page or one with the sequence number meant (a cut
/// while programming the sequence number could leave any larger one, and a page numbered near
/// 2^32 would make the next pages' numbers wrap).
#[test]
fn a_page_counts_as_used_only_with_its_whole_sequence_number() {
    for cut in 0..8 {
        let mut flash = MockFlash::new(5 * 4096);
        flash.cut_power_after(cut);
        let mut s = Store::mount(flash);
        assert!(s.put(KIND, &id(1), b"x").is_err());
        let mut flash = s.into_flash();
        flash.restore_power();
        let s = Store::mount(flash);
        assert_eq!(s.health(), Health::Ok);
        for p in 0..s.n_pages {
            if s.state[p] == PageState::Used {
                assert_eq!(s.page_seq[p], 1, "cut {cut}: page {p}");
            }
        }
    }
}

/// Pages are opened in ring order (which spreads erases evenly): page 0, 1, 2, … on a fresh
/// flash, then on around the ring as garbage collection frees them.
#[test]
fn pages_are_opened_in_ring_order() {
    let mut s = Store::mount(MockFlash::new(6 * 4096));
    let mut heads = Vec::new();
    for round in 0..200u32 {
        s.put(KIND, &id(round % 5), &body(round % 5, round, 700)).unwrap();
        let head = s.head.unwrap();
        if heads.last() != Some(&head) {
            heads.push(head);
        }
    }
    assert!(heads.len() > 12, "{heads:?}");
    for (i, &h) in heads.iter().enumerate() {
        assert_eq!(h, i % 6, "heads in the order {heads:?}");
    }
}

/// A flash whose every page holds a torn page header (the sequence number written, the magic
/// not) holds no store yet: mount reports it healthy and empty, and the first record erases one
/// of those pages and goes there.
#[test]
fn a_flash_of_torn_page_headers_is_erased_as_pages_are_needed() {
    let mut bytes = std::vec![0xFFu8; 4 * 4096];
    for page in bytes.chunks_mut(4096) {
        page[4..8].copy_from_slice(&1u32.to_le_bytes());
    }
    let mut s = Store::mount(MockFlash::from_bytes(bytes));
    assert_eq!(s.health(), Health::Ok);
    assert!(s.is_empty());
    s.put(KIND, &id(1), b"first").unwrap();
    let mut s = Store::mount(s.into_flash());
    assert_eq!(read(&mut s, 1).as_deref(), Some(&b"first"[..]));
}

/// Bytes after a record header that is not sane (a write cut short) never count, even if they
/// look like a whole record with a good CRC: nothing follows a torn write in its page.
#[test]
fn what_follows_a_torn_record_header_never_counts() {
    let mut s = Store::mount(MockFlash::new(5 * 4096));
    s.put(KIND, &id(1), b"kept").unwrap();
    let mut raw = s.into_flash().into_bytes();
    // A well-formed record for id 2, to be placed behind a header with an impossible length.
    let mut s2 = Store::mount(MockFlash::new(5 * 4096));
    s2.put(KIND, &id(2), b"smuggled").unwrap();
    let other = s2.into_flash().into_bytes();
    let record = &other[PAGE_HEADER..PAGE_HEADER + record_size(ID_LEN + 8)];
    let end = PAGE_HEADER + record_size(ID_LEN + 4);
    for bad_len in [0u16, 4, 8, 15, 4073] {
        let mut raw = raw.clone();
        // State live, kind 3, marker 0x5A, length `bad_len`, then a good record where a scan that
        // trusted the length would look next.
        raw[end..end + 4].copy_from_slice(&[0xFF; 4]);
        raw[end + 4] = KIND;
        raw[end + 5] = 0x5A;
        raw[end + 6..end + 8].copy_from_slice(&bad_len.to_le_bytes());
        for at in [end + RECORD_HEADER, end + record_size(bad_len as usize).min(4096 - end - 64)] {
            let mut raw = raw.clone();
            raw[at..at + record.len()].copy_from_slice(record);
            let mut s = Store::mount(MockFlash::from_bytes(raw));
            assert_eq!(s.health(), Health::Ok);
            assert_eq!(read(&mut s, 1).as_deref(), Some(&b"kept"[..]));
            assert_eq!(read(&mut s, 2), None, "length {bad_len}, record at {at}");
        }
    }
    raw.clear();
}

/// Once a put's new record is completely written, the put has happened: power cut right
/// after it (before the old record is killed) leaves both live, and mount keeps the new one.
#[test]
fn a_put_whose_record_is_complete_survives_a_cut_before_the_old_one_dies() {
    let mut s = Store::mount(MockFlash::new(5 * 4096));
    s.put(KIND, &id(1), b"old value").unwrap();
    s.put(KIND, &id(2), b"neighbour").unwrap();
    let start = s.into_flash();
    // The new record's write is its size less the state word; the kill comes after.
    let mut flash = start.clone();
    flash.cut_power_after((record_size(ID_LEN + 9) - 4) as u64);
    let mut s = Store::mount(flash);
    assert!(s.put(KIND, &id(1), b"new value").is_err());
    let mut flash = s.into_flash();
    flash.restore_power();
    let mut s = Store::mount(flash);
    assert_eq!(read(&mut s, 1).as_deref(), Some(&b"new value"[..]));
    assert_eq!(read(&mut s, 2).as_deref(), Some(&b"neighbour"[..]));
    assert!(!s.flash().as_bytes().windows(9).any(|w| w == b"old value"), "the old record was zeroed");
}

/// Mounting a store that no power cut interrupted writes and erases nothing.
#[test]
fn mounting_a_clean_store_writes_nothing() {
    let mut s = Store::mount(MockFlash::new(8 * 4096));
    for round in 0..1500u32 {
        // Sizes in steps of 4 bytes, so pages end at every possible fill level.
        s.put(KIND, &id(round % 19), &body(round % 19, round, 20 + (round as usize * 4) % 900)).unwrap();
        if round % 97 == 0 {
            let flash = s.into_flash();
            let before = flash.cut_points();
            s = Store::mount(flash);
            assert_eq!(s.flash().cut_points(), before, "round {round}: mount wrote or erased");
        }
    }
}

#[derive(Default)]
struct Stats {
    cuts: u64,
    half_erases: u64,
    recoveries: u64,
}

/// Cut points a mount of `flash` takes (what it writes and erases to finish an interrupted
/// operation).
fn recovery_points(flash: &MockFlash) -> u64 {
    let before = flash.cut_points();
    Store::mount(flash.clone()).into_flash().cut_points() - before
}

/// Cut points of an operation from `start` (bytes written, erases), and whether it erased a page.
fn probe(start: &MockFlash, n: u32, value: Option<&[u8]>) -> (u64, bool) {
    let mut s = Store::mount(start.clone());
    let (before, erases) = (s.flash().cut_points(), s.flash().erase_counts().iter().sum::<u32>());
    apply(&mut s, n, value).unwrap();
    (s.flash().cut_points() - before, s.flash().erase_counts().iter().sum::<u32>() > erases)
}

/// After a cut and a completed remount: the store is healthy, record `n` holds its old value or
/// `value`, every other record its old value, and a dropped old value is nowhere on the flash.
fn check_after_cut(
    s: &mut Store<MockFlash>,
    model: &BTreeMap<u32, Vec<u8>>,
    n: u32,
    value: Option<&[u8]>,
    what: &str,
) {
    assert_eq!(s.health(), Health::Ok, "{what}");
    for (m, old) in model {
        let got = read(s, *m);
        if *m == n {
            assert!(got.as_ref() == Some(old) || got.as_deref() == value, "{what}: record {m}");
        } else {
            assert_eq!(got.as_ref(), Some(old), "{what}: record {m}");
        }
    }
    // Crypto-erase: once the value is dropped, its bytes are nowhere on the flash (a kill cut
    // short is finished by collecting its page).
    if let Some(old) = model.get(&n).filter(|old| read(s, n).as_ref() != Some(*old)) {
        assert!(!lingers(s.flash(), old), "{what}: dropped value still on flash");
    }
}

/// Whether any part of `value` (its first, middle or last 24 bytes, at the word-aligned places
/// a payload puts them) is on the flash.
fn lingers(flash: &MockFlash, value: &[u8]) -> bool {
    let raw = flash.as_bytes();
    let mid = (value.len() / 2) & !3;
    let tail = (value.len() - 24) & !3;
    [0, mid, tail].iter().any(|&k| {
        let part = &value[k..k + 24];
        (0..raw.len() - 24).step_by(4).any(|at| raw[at..at + 24] == *part)
    })
}

/// Removes every record of `model` still in the store; then no part of any of their values may
/// be on the flash (no copy lingers in a page a cut left behind, a retired page whose erase did
/// not finish, say).
fn remove_all_and_check_nothing_lingers(
    s: &mut Store<MockFlash>,
    model: &BTreeMap<u32, Vec<u8>>,
    what: &str,
) {
    let values: Vec<Vec<u8>> = model.keys().filter_map(|&m| read(s, m)).collect();
    for &m in model.keys() {
        s.remove(KIND, &id(m)).unwrap();
    }
    for v in &values {
        assert!(!lingers(s.flash(), v), "{what}: a removed value is still on flash");
    }
}

/// Writes about three pages' worth of records (opening pages, collecting garbage) and reads
/// them back: the store keeps working after a cut, not just for one more record.
fn churn_and_check(s: &mut Store<MockFlash>, what: &str) {
    for round in 0..30u32 {
        s.put(KIND, &id(200 + round % 3), &body(200 + round % 3, round, 300 + round as usize))
            .unwrap_or_else(|e| panic!("{what}: churn {round}: {e:?}"));
    }
    for m in 0..3u32 {
        let round = 27 + m;
        assert_eq!(read(s, 200 + m), Some(body(200 + m, round, 300 + round as usize)), "{what}");
    }
}

/// Cuts power at every cut point of one operation from `start` and checks each outcome.
fn cut_everywhere(
    start: &MockFlash,
    model: &BTreeMap<u32, Vec<u8>>,
    n: u32,
    value: Option<&[u8]>,
    stats: &mut Stats,
) {
    let (total, _) = probe(start, n, value);
    for cut in 0..total {
        let mut flash = start.clone();
        flash.cut_power_after(cut);
        let mut s = Store::mount(flash);
        assert!(apply(&mut s, n, value).is_err(), "cut {cut} of {total} did not fail");
        let mut flash = s.into_flash();
        flash.restore_power();
        // A cut during a page erase can leave the page half-erased on real flash: if this cut
        // stopped a collection after its copies, try that too.
        if let Some(half) = half_erased(&flash) {
            let mut s = Store::mount(half);
            check_after_cut(&mut s, model, n, value, &std::format!("half-erased, cut {cut} of {total}"));
            stats.half_erases += 1;
        }
        let erases = flash.erase_counts().iter().sum::<u32>();
        let mut s = Store::mount(flash);
        if s.flash().erase_counts().iter().sum::<u32>() > erases {
            stats.recoveries += 1;
        }
        check_after_cut(&mut s, model, n, value, &std::format!("cut {cut} of {total}"));
        // The store keeps working after the cut.
        s.put(KIND, &id(100), b"after").unwrap();
        let mut s = Store::mount(s.into_flash());
        assert_eq!(read(&mut s, 100).as_deref(), Some(&b"after"[..]), "cut {cut} of {total}");
        let what = std::format!("cut {cut} of {total}");
        remove_all_and_check_nothing_lingers(&mut s, model, &what);
        churn_and_check(&mut s, &what);
    }
    stats.cuts += total;
}

/// If a page was retired for erasing (magic zeroed) but not erased, a copy of the flash where
/// that page is half-erased (every other byte set to 0xFF, as an interrupted erase may leave it).
fn half_erased(flash: &MockFlash) -> Option<MockFlash> {
    let mut bytes = flash.snapshot();
    let page = bytes.chunks(4096).position(|p| p[..4] == [0; 4] && p[8..].iter().any(|&b| b != 0xFF))?;
    for (i, b) in bytes[page * 4096..(page + 1) * 4096].iter_mut().enumerate() {
        if i % 2 == 1 {
            *b = 0xFF;
        }
    }
    Some(MockFlash::from_bytes(bytes))
}

fn apply(s: &mut Store<MockFlash>, n: u32, value: Option<&[u8]>) -> Result<(), StoreError> {
    match value {
        Some(v) => s.put(KIND, &id(n), v),
        None => s.remove(KIND, &id(n)).map(|_| ()),
    }
}
