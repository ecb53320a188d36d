//! Store tests: the map contract, garbage collection, full store, corrupt flash, power cuts.

use super::*;
use crate::mock_flash::MockFlash;
use std::collections::BTreeMap;
use std::vec::Vec;

const KIND: u8 = 3;

fn id(n: u32) -> RecordId {
    let mut id = [0u8; ID_LEN];
    id[..4].copy_from_slice(&n.to_be_bytes());
    id
}

fn body(n: u32, gen: u32, len: usize) -> Vec<u8> {
    (0..len).map(|i| (n as usize * 7 + gen as usize * 13 + i) as u8).collect()
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
#[test]
fn power_cut_at_every_byte_leaves_old_or_new_values() {
    let mut base = Store::mount(MockFlash::new(5 * 4096));
    let mut model: BTreeMap<u32, Vec<u8>> = BTreeMap::new();
    for round in 0..60u32 {
        let n = round % 7;
        let b = body(n, round, 150 + (round as usize * 53) % 250);
        base.put(KIND, &id(n), &b).unwrap();
        model.insert(n, b);
    }
    let start = base.into_flash();
    let ops: Vec<(u32, Option<Vec<u8>>)> = (0..12u32)
        .map(|k| {
            if k % 4 == 3 {
                (k % 7, None)
            } else {
                (k % 7, Some(body(k % 7, 1000 + k, 120 + (k as usize * 91) % 400)))
            }
        })
        .collect();
    let (mut cuts, mut half_erases, mut collecting) = (0u64, 0u64, 0u32);
    for (n, value) in &ops {
        let (c, h) = cut_everywhere(&start, &model, *n, value.as_deref());
        cuts += c;
        half_erases += h;
        // Again from a state where this very operation has to collect garbage first.
        let mut s = Store::mount(start.clone());
        let mut model2 = model.clone();
        for churn in 0..200u32 {
            if probe(s.flash(), *n, value.as_deref()).1 {
                let (c, h) = cut_everywhere(s.flash(), &model2, *n, value.as_deref());
                cuts += c;
                half_erases += h;
                collecting += 1;
                break;
            }
            let b = body(50, churn, 60 + (churn as usize * 37) % 300);
            s.put(KIND, &id(50), &b).unwrap();
            model2.insert(50, b);
        }
    }
    std::println!(
        "store: exercised {cuts} power-cut points ({collecting} operations also while collecting), \
         {half_erases} also with a half-erased page"
    );
    assert!(cuts > 1000);
    // Every put was also cut while collecting (a remove writes no record, so never collects).
    assert_eq!(collecting, ops.iter().filter(|(_, v)| v.is_some()).count() as u32);
    assert!(half_erases > 0, "no cut stopped a collection before its erase");
}

/// Bytes an operation writes from `start`, and whether it erased a page.
fn probe(start: &MockFlash, n: u32, value: Option<&[u8]>) -> (u64, bool) {
    let mut s = Store::mount(start.clone());
    let (before, erases) = (s.flash().bytes_written(), s.flash().erase_counts().iter().sum::<u32>());
    apply(&mut s, n, value).unwrap();
    (s.flash().bytes_written() - before, s.flash().erase_counts().iter().sum::<u32>() > erases)
}

/// Cuts power at every byte of one operation; returns (cut points, half-erase variants).
fn cut_everywhere(
    start: &MockFlash,
    model: &BTreeMap<u32, Vec<u8>>,
    n: u32,
    value: Option<&[u8]>,
) -> (u64, u64) {
    let (total, _) = probe(start, n, value);
    let mut half_erases = 0;
    for cut in 0..total {
        let mut flash = start.clone();
        flash.cut_power_after(cut);
        let mut s = Store::mount(flash);
        assert!(apply(&mut s, n, value).is_err(), "cut {cut} of {total} did not fail");
        let mut flash = s.into_flash();
        flash.restore_power();
        let check = |s: &mut Store<MockFlash>, what: &str| {
            assert_eq!(s.health(), Health::Ok);
            for (m, old) in model {
                let got = read(s, *m);
                if *m == n {
                    assert!(
                        got.as_ref() == Some(old) || got.as_deref() == value,
                        "{what}: record {m} after cut {cut}"
                    );
                } else {
                    assert_eq!(got.as_ref(), Some(old), "{what}: record {m} after cut {cut}");
                }
            }
        };
        // A cut during a page erase can leave the page half-erased on real flash: if this cut
        // stopped a collection after its copies, try that too.
        if let Some(half) = half_erased(&flash) {
            check(&mut Store::mount(half), "half-erased");
            half_erases += 1;
        }
        let mut s = Store::mount(flash);
        check(&mut s, "remounted");
        // The store keeps working after the cut.
        s.put(KIND, &id(100), b"after").unwrap();
        let mut s = Store::mount(s.into_flash());
        assert_eq!(read(&mut s, 100).as_deref(), Some(&b"after"[..]), "cut {cut} of {total}");
    }
    (total, half_erases)
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
