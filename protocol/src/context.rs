//! Encryption context: string pairs bound to a ciphertext as authenticated data.
//!
//! The canonical encoding makes the order of pairs irrelevant and leaves no ambiguity between
//! `a=bc` and `ab=c`:
//!
//! ```text
//! u16be pair_count
//! repeat pair_count times, sorted by key bytes (keys unique):
//!     u16be key_len   key bytes (UTF-8, 1.. bytes)
//!     u16be value_len value bytes (UTF-8, 0.. bytes)
//! ```
//!
//! An empty context encodes as `00 00`. The whole encoding is at most
//! [`MAX_CONTEXT_BYTES`]; at most [`MAX_CONTEXT_PAIRS`] pairs.

use crate::limits::{MAX_CONTEXT_BYTES, MAX_CONTEXT_PAIRS};

/// One context pair as sent on the wire: (key, value).
pub type ContextPair<'a> = (&'a str, &'a str);

/// An encryption context as sent on the wire (order as given by the caller).
pub type EncryptionContext<'a> = heapless::Vec<ContextPair<'a>, MAX_CONTEXT_PAIRS>;

/// Why a context cannot be encoded.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ContextError {
    /// The same key appears twice.
    DuplicateKey,
    /// A key is empty.
    EmptyKey,
    /// The canonical encoding would exceed [`MAX_CONTEXT_BYTES`] or the output buffer.
    TooLarge,
}

/// Writes the canonical encoding of `pairs` into `out`; returns the number of bytes written.
pub fn encode_canonical(pairs: &[ContextPair<'_>], out: &mut [u8]) -> Result<usize, ContextError> {
    if pairs.len() > MAX_CONTEXT_PAIRS {
        return Err(ContextError::TooLarge);
    }
    // Sort indices by key bytes (no allocation: at most MAX_CONTEXT_PAIRS entries).
    let mut order: heapless::Vec<usize, MAX_CONTEXT_PAIRS> = heapless::Vec::new();
    for i in 0..pairs.len() {
        order.push(i).map_err(|_| ContextError::TooLarge)?;
    }
    crate::small_sort::sort_by(&mut order, |&a, &b| pairs[a].0.as_bytes() < pairs[b].0.as_bytes());
    for w in order.windows(2) {
        if pairs[w[0]].0 == pairs[w[1]].0 {
            return Err(ContextError::DuplicateKey);
        }
    }
    let limit = out.len().min(MAX_CONTEXT_BYTES);
    let mut pos = 0usize;
    let mut put = |bytes: &[u8], pos: &mut usize| -> Result<(), ContextError> {
        let end = pos.checked_add(bytes.len()).ok_or(ContextError::TooLarge)?;
        if end > limit {
            return Err(ContextError::TooLarge);
        }
        out[*pos..end].copy_from_slice(bytes);
        *pos = end;
        Ok(())
    };
    put(&(pairs.len() as u16).to_be_bytes(), &mut pos)?;
    for &i in order.iter() {
        let (k, v) = pairs[i];
        if k.is_empty() {
            return Err(ContextError::EmptyKey);
        }
        let kl = u16::try_from(k.len()).map_err(|_| ContextError::TooLarge)?;
        let vl = u16::try_from(v.len()).map_err(|_| ContextError::TooLarge)?;
        put(&kl.to_be_bytes(), &mut pos)?;
        put(k.as_bytes(), &mut pos)?;
        put(&vl.to_be_bytes(), &mut pos)?;
        put(v.as_bytes(), &mut pos)?;
    }
    Ok(pos)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn enc(pairs: &[ContextPair<'_>]) -> Result<heapless::Vec<u8, 2048>, ContextError> {
        let mut buf = [0u8; 2048];
        let n = encode_canonical(pairs, &mut buf)?;
        Ok(heapless::Vec::from_slice(&buf[..n]).unwrap())
    }

    #[test]
    fn order_of_pairs_does_not_matter() {
        assert_eq!(enc(&[("a", "1"), ("b", "2")]), enc(&[("b", "2"), ("a", "1")]));
    }

    #[test]
    fn no_ambiguity_between_split_points() {
        assert_ne!(enc(&[("a", "bc")]).unwrap(), enc(&[("ab", "c")]).unwrap());
        assert_ne!(enc(&[("a", "b"), ("c", "d")]).unwrap(), enc(&[("a", "b\0\x01c\0\x01d")]).unwrap());
    }

    #[test]
    fn empty_context_is_two_zero_bytes() {
        assert_eq!(enc(&[]).unwrap().as_slice(), &[0, 0]);
    }

    #[test]
    fn duplicate_and_empty_keys_are_refused() {
        assert_eq!(enc(&[("a", "1"), ("a", "2")]), Err(ContextError::DuplicateKey));
        assert_eq!(enc(&[("", "1")]), Err(ContextError::EmptyKey));
    }

    #[test]
    fn oversize_context_is_refused() {
        let big = core::str::from_utf8(&[b'x'; 3000]).unwrap();
        assert_eq!(enc(&[("k", big)]), Err(ContextError::TooLarge));
    }
}
