//! The mock flash's rules and what its power cuts leave.

use super::*;

fn word(f: &MockFlash, at: usize) -> u32 {
    let b = &f.as_bytes()[at..at + 4];
    u32::from_le_bytes([b[0], b[1], b[2], b[3]])
}

#[test]
fn new_flash_is_erased_and_page_sized() {
    let f = MockFlash::new(5000);
    assert_eq!(f.capacity(), 8192);
    assert!(f.as_bytes().iter().all(|&b| b == 0xFF));
    assert_eq!(f.max_programs(), 0);
}

#[test]
fn writes_only_clear_bits() {
    let mut f = MockFlash::new(4096);
    f.write(0, &[0xF0, 0x0F, 0xAA, 0x55]).unwrap();
    // Clearing more bits is fine (e.g. zeroing a record).
    f.write(0, &[0x00, 0x00, 0x00, 0x00]).unwrap();
    assert_eq!(&f.as_bytes()[..4], &[0, 0, 0, 0]);
    assert_eq!(f.write(0, &[0x01, 0, 0, 0]), Err(MockFlashError::NotErased));
    f.erase(0, 4096).unwrap();
    assert_eq!(f.erase_counts(), &[1]);
    f.write(0, &[0x01, 0, 0, 0]).unwrap();
}

#[test]
fn alignment_and_bounds_are_checked() {
    let mut f = MockFlash::new(8192);
    assert_eq!(f.write(2, &[0; 4]), Err(MockFlashError::NotAligned));
    assert_eq!(f.write(0, &[0; 3]), Err(MockFlashError::NotAligned));
    assert_eq!(f.erase(0, 100), Err(MockFlashError::NotAligned));
    assert_eq!(f.erase(4096, 0), Err(MockFlashError::OutOfBounds));
    assert_eq!(f.write(8192, &[0; 4]), Err(MockFlashError::OutOfBounds));
    let mut b = [0u8; 3];
    f.read(1, &mut b).unwrap();
    assert_eq!(f.read(8190, &mut b), Err(MockFlashError::OutOfBounds));
}

#[test]
fn two_programs_per_word_are_allowed_and_counted_per_word() {
    let mut f = MockFlash::new(8192);
    f.write(0, &[0xF0; 8]).unwrap();
    f.write(0, &[0x00; 4]).unwrap();
    assert_eq!(f.max_programs(), 2);
    // The neighbour took one program; writing the same value again is a program too.
    f.write(4, &[0xF0; 4]).unwrap();
    assert_eq!(f.max_programs(), 2);
    // An erase starts the count again.
    f.erase(0, 4096).unwrap();
    assert_eq!(f.max_programs(), 0);
    for _ in 0..2 {
        f.write(0, &[0; 4]).unwrap();
    }
}

#[test]
#[should_panic(expected = "programmed 3 times")]
fn a_third_program_of_a_word_fails_the_test() {
    let mut f = MockFlash::new(4096);
    f.write(8, &[0xAB; 4]).unwrap();
    f.write(8, &[0x00; 4]).unwrap();
    // Zeros over zeros still programs the word.
    let _ = f.write(8, &[0x00; 4]);
}

#[test]
fn the_program_limit_can_be_lifted_for_tests_of_something_else() {
    let mut f = MockFlash::new(4096);
    f.set_program_limit(None);
    for _ in 0..10 {
        f.write(0, &[0; 4]).unwrap();
    }
}

#[test]
fn a_cut_write_programs_the_words_before_the_cut_and_leaves_the_cut_word_partly_programmed() {
    let target = [0x12u8, 0x34, 0x56, 0x78];
    let t = u32::from_le_bytes(target);
    for point in 0..4u64 {
        let mut f = MockFlash::new(8192);
        f.cut_power_after(8 + point);
        assert_eq!(f.write(0, &[target, target, target].concat()), Err(MockFlashError::PowerCut));
        assert!(f.is_power_cut());
        assert_eq!(word(&f, 0), t);
        assert_eq!(word(&f, 4), t);
        let cut = word(&f, 8);
        if point == 0 {
            assert_eq!(cut, u32::MAX, "the first cut point of a word leaves it untouched");
            assert_eq!(f.max_programs(), 1);
        } else {
            // Only bits the write was to clear were cleared: some of them, not all.
            assert_eq!(cut & t, t, "point {point}: a bit the write keeps was cleared");
            assert!(cut != u32::MAX && cut != t, "point {point}: {cut:#010x} is not partly programmed");
            assert_eq!(f.programs[2], 1, "a program cut short still counts");
        }
        assert_eq!(word(&f, 12), u32::MAX);
        assert_eq!(f.bytes_written(), 8 + point);
        assert_eq!(f.cut_points(), 8 + point);
        // Everything fails until power is back; reads work.
        assert_eq!(f.erase(4096, 8192), Err(MockFlashError::PowerCut));
        assert_eq!(f.write(4096, &[0; 4]), Err(MockFlashError::PowerCut));
        f.restore_power();
        f.write(12, &[0; 4]).unwrap();
    }
}

#[test]
fn the_three_cut_points_inside_a_word_leave_different_patterns() {
    let patterns: Vec<u32> = (1..4u64)
        .map(|point| {
            let mut f = MockFlash::new(4096);
            f.cut_power_after(point);
            let _ = f.write(0, &[0; 4]);
            word(&f, 0)
        })
        .collect();
    assert!(patterns[0] != patterns[1] || patterns[1] != patterns[2], "{patterns:x?}");
    // The seed changes them, and the same seed repeats them.
    let with_seed = |seed| {
        let mut f = MockFlash::new(4096);
        f.set_seed(seed);
        f.cut_power_after(2);
        let _ = f.write(0, &[0; 4]);
        word(&f, 0)
    };
    assert_eq!(with_seed(1), with_seed(1));
    assert_ne!(with_seed(1), with_seed(2));
}

#[test]
fn a_cut_program_of_a_single_bit_leaves_it_unprogrammed() {
    let mut f = MockFlash::new(4096);
    f.cut_power_after(3);
    let _ = f.write(0, &[0xFE, 0xFF, 0xFF, 0xFF]);
    assert_eq!(word(&f, 0), u32::MAX);
    assert_eq!(f.programs[0], 1);
}

#[test]
#[should_panic(expected = "programmed 3 times")]
fn a_program_cut_short_counts_towards_the_limit() {
    let mut f = MockFlash::new(4096);
    f.write(0, &[0x0F; 4]).unwrap();
    f.cut_power_after(2);
    let _ = f.write(0, &[0; 4]);
    f.restore_power();
    // Finishing the zeroing would be the third program.
    let _ = f.write(0, &[0; 4]);
}

/// A page full of data (every word has 0 bits) at page 1 of a 3-page flash.
fn flash_with_data_page() -> MockFlash {
    let mut f = MockFlash::new(3 * 4096);
    let data: Vec<u8> = (0..4096u32).map(|i| (i.wrapping_mul(0x9D) ^ (i >> 3)) as u8 & 0x7E).collect();
    f.write(4096, &data).unwrap();
    f
}

#[test]
fn an_erase_cut_at_its_first_point_leaves_the_page_untouched() {
    let mut f = flash_with_data_page();
    let before = f.snapshot();
    f.cut_power_after(0);
    assert_eq!(f.erase(4096, 8192), Err(MockFlashError::PowerCut));
    assert_eq!(f.as_bytes(), &before[..]);
    assert_eq!(f.erase_counts()[1], 0);
}

#[test]
fn an_interrupted_erase_leaves_a_page_barely_half_or_almost_erased_or_arbitrary() {
    let start = flash_with_data_page();
    let old = &start.as_bytes()[4096..8192];
    let old_zero_bits: u32 = old.iter().map(|b| b.count_zeros()).sum();
    let mut seen = Vec::new();
    for point in 1..MockFlash::ERASE_CUT_POINTS {
        let mut f = start.clone();
        let before = f.cut_points();
        f.cut_power_after(point);
        assert_eq!(f.erase(4096, 8192), Err(MockFlashError::PowerCut));
        assert_eq!(f.cut_points() - before, point);
        assert_eq!(f.erase_counts()[1], 1, "an interrupted erase wears the page too");
        let page = &f.as_bytes()[4096..8192];
        let only_bits_set = page.iter().zip(old).all(|(n, o)| n & o == *o);
        let zero_bits: u32 = page.iter().map(|b| b.count_zeros()).sum();
        let erased = page.iter().filter(|&&b| b == 0xFF).count();
        match point {
            1 => {
                assert!(only_bits_set, "an erase only sets bits");
                assert!(zero_bits < old_zero_bits && zero_bits > old_zero_bits * 15 / 16, "barely begun");
            }
            2 => {
                assert!(only_bits_set);
                assert!(zero_bits > old_zero_bits / 4 && zero_bits < old_zero_bits * 3 / 4, "half done");
            }
            3 => assert!(!only_bits_set, "arbitrary bytes also clear bits"),
            _ => {
                assert!(only_bits_set);
                assert!(zero_bits > 0 && zero_bits < old_zero_bits / 16, "{zero_bits} of {old_zero_bits}");
                assert!(erased > 2048, "almost done: {erased} bytes are 0xFF");
            }
        }
        seen.push(page.to_vec());
        // The pages around it are untouched.
        assert!(f.as_bytes()[..4096].iter().chain(&f.as_bytes()[8192..]).all(|&b| b == 0xFF));
    }
    seen.dedup();
    assert_eq!(seen.len(), 4);
}

#[test]
fn after_an_interrupted_erase_only_words_that_read_erased_may_be_programmed() {
    let mut f = flash_with_data_page();
    f.cut_power_after(MockFlash::ERASE_CUT_POINTS - 1);
    let _ = f.erase(4096, 8192);
    f.restore_power();
    let erased_word = (4096..8192).step_by(4).find(|&w| word(&f, w) == u32::MAX).unwrap();
    f.write(erased_word as u32, &[0x12; 4]).unwrap();
    f.write(erased_word as u32, &[0; 4]).unwrap();
    let dirty_word = (4096..8192).step_by(4).find(|&w| word(&f, w) != u32::MAX).unwrap();
    let result = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        let mut g = f.clone();
        let _ = g.write(dirty_word as u32, &[0; 4]);
    }));
    assert!(result.is_err(), "programming what an interrupted erase left must fail the test");
    // A full erase makes the page good again.
    f.erase(4096, 8192).unwrap();
    f.write(dirty_word as u32, &[0; 4]).unwrap();
}

#[test]
fn a_multi_page_erase_cut_erases_the_pages_before_and_leaves_those_after() {
    let mut f = MockFlash::new(3 * 4096);
    f.write(0, &[0u8; 3 * 4096]).unwrap();
    f.cut_power_after(MockFlash::ERASE_CUT_POINTS + 2);
    assert_eq!(f.erase(0, 3 * 4096), Err(MockFlashError::PowerCut));
    assert!(f.as_bytes()[..4096].iter().all(|&b| b == 0xFF));
    assert!(f.as_bytes()[4096..8192].iter().any(|&b| b != 0 && b != 0xFF), "page 1 interrupted");
    assert!(f.as_bytes()[8192..].iter().all(|&b| b == 0));
    assert_eq!(f.erase_counts(), &[1, 1, 0]);
    assert_eq!(f.cut_points(), 3 * 4096 + MockFlash::ERASE_CUT_POINTS + 2);
}

#[test]
fn snapshot_restore_and_bytes_round_trip() {
    let mut f = MockFlash::new(4096);
    f.write(0, &[0, 1, 2, 3]).unwrap();
    let snap = f.snapshot();
    f.write(4, &[0; 4]).unwrap();
    f.restore(&snap);
    assert_eq!(&f.as_bytes()[..8], &[0, 1, 2, 3, 0xFF, 0xFF, 0xFF, 0xFF]);
    let g = MockFlash::from_bytes(f.clone().into_bytes());
    assert_eq!(g.as_bytes(), f.as_bytes());
    // Loaded data counts as programmed once: zeroing it is allowed, once.
    let mut g = g;
    g.write(0, &[0; 4]).unwrap();
    assert_eq!(g.max_programs(), 2);
    let short = MockFlash::from_bytes(vec![0u8; 10]);
    assert_eq!(short.capacity(), 4096);
    assert_eq!(short.as_bytes()[10], 0xFF);
}
