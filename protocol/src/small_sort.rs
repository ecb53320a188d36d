//! Sorting the short lists the protocol and the token sort (encryption-context pairs, tags, the
//! flash pages at mount): an in-place insertion sort, stable and allocation-free, a few dozen
//! bytes of code per use. The core library's sort is several KiB per element type on the
//! Cortex-M4, and these lists hold at most a few hundred items (usually a handful).

/// Sorts `v` so that no element is `less` than the one before it (stable).
pub fn sort_by<T>(v: &mut [T], mut less: impl FnMut(&T, &T) -> bool) {
    for i in 1..v.len() {
        let mut j = i;
        while j > 0 && less(&v[j], &v[j - 1]) {
            v.swap(j, j - 1);
            j -= 1;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sorts_stably_like_the_core_library() {
        let mut seed = 0x2545_f491_4f6c_dd1du64;
        for len in 0..40 {
            let mut v: heapless::Vec<(u8, usize), 64> = heapless::Vec::new();
            for i in 0..len {
                seed ^= seed << 13;
                seed ^= seed >> 7;
                seed ^= seed << 17;
                v.push(((seed % 7) as u8, i)).unwrap();
            }
            let mut expected = v.clone();
            expected.sort_by_key(|&(k, _)| k);
            sort_by(&mut v, |a, b| a.0 < b.0);
            assert_eq!(v, expected, "len {len}");
        }
    }
}
