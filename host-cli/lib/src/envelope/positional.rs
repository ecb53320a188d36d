//! File-to-file encryption and decryption with positional I/O: worker threads each claim the
//! next batch of segments, read it at its offset in the input (`pread`) and seal or open it; the
//! calling thread writes every finished batch at its offset in the output (`pwrite`), in whatever
//! order batches finish. Reading and AES leave the writing thread (the streaming
//! [`super::pipeline`] reads and writes on one thread, which holds it to about the speed of `cp`);
//! writes to one file serialise in the kernel anyway, so one writer is the fastest arrangement.
//!
//! Used when both ends are regular files (the CLI's common case); pipes and stdin/stdout take
//! the streaming path. The file format is the same either way: segment `i` of plaintext length
//! `seg` starts at `header + i × (seg + 16)` in the encrypted file.
//!
//! Contracts:
//! * Encryption takes the input's length when it starts; if the file shrinks meanwhile the
//!   encryption fails ("the input changed"), bytes appended meanwhile are not encrypted.
//! * Decryption writes a segment's plaintext only after the segment verified, and reports the
//!   lowest-numbered failing segment (batches are claimed in order and a claimed batch is always
//!   finished), so the error is the same as the streaming path's. The output file may hold
//!   verified plaintext of other segments when it fails: callers write to an
//!   [`super::output::AtomicFile`], which removes it.
//! * Memory: `workers + 2` batch buffers (each at most [`super::MAX_BATCH_BYTES`] plus tags),
//!   whatever the file size.

use std::fs::File;
use std::io;
use std::ops::Range;
use std::os::unix::fs::FileExt;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{mpsc, Mutex};

use crate::progress::Progress;

use super::format::SEGMENT_TAG_LEN;
use super::segments::SegmentCipher;
use super::EnvelopeError;

/// The geometry of a plaintext's segments: `count` segments of `segment_size` plaintext bytes,
/// except the final one, which holds the rest (possibly nothing).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Layout {
    /// Plaintext bytes per full segment.
    pub segment_size: usize,
    /// Segments in the body, the final one included.
    pub count: u64,
}

impl Layout {
    /// The segments of a plaintext of `len` bytes: `len / seg` full ones and a final one holding
    /// the rest (empty when `len` is a multiple of `seg`, as the streaming writer does).
    pub fn for_plaintext(len: u64, segment_size: usize) -> Layout {
        Layout { segment_size, count: len / segment_size as u64 + 1 }
    }

    /// Plaintext length of segment `i` of a `total`-byte plaintext.
    fn plain_len(&self, i: u64, total: u64) -> usize {
        let start = i * self.segment_size as u64;
        (total - start).min(self.segment_size as u64) as usize
    }
}

/// Splits the body of an encrypted file (`body` bytes after the header) into segments:
/// `(full segments, final segment length)`. A final length under 16 bytes means the file was
/// cut (a valid file always ends with a sealed final segment of at least a tag).
pub fn body_segments(body: u64, segment_size: usize) -> (u64, u64) {
    let full = (segment_size + SEGMENT_TAG_LEN) as u64;
    (body / full, body % full)
}

/// The batch size, the claiming counter and the first failure, shared by the threads.
struct Work {
    batch: u64,
    next: AtomicU64,
    stop: AtomicBool,
    /// The lowest-indexed failure: (segment index, error).
    failure: Mutex<Option<(u64, EnvelopeError)>>,
}

impl Work {
    /// Claims the next batch: `Some(first segment index)` below `count`, or `None` when all are
    /// claimed or a failure stopped the work.
    fn claim(&self, count: u64) -> Option<u64> {
        if self.stop.load(Ordering::Acquire) {
            return None;
        }
        let b = self.next.fetch_add(1, Ordering::AcqRel);
        let first = b.checked_mul(self.batch)?;
        (first < count).then_some(first)
    }

    /// Records a failure at segment `index` (keeping the lowest) and stops further claims.
    fn fail(&self, index: u64, e: EnvelopeError) {
        self.stop.store(true, Ordering::Release);
        let mut slot = self.failure.lock().unwrap_or_else(|p| p.into_inner());
        if slot.as_ref().is_none_or(|(i, _)| index < *i) {
            *slot = Some((index, e));
        }
    }

    fn into_result(self) -> Result<(), EnvelopeError> {
        match self.failure.into_inner().unwrap_or_else(|p| p.into_inner()) {
            Some((_, e)) => Err(e),
            None => Ok(()),
        }
    }
}

fn read_exact_at(file: &File, buf: &mut [u8], offset: u64) -> Result<(), EnvelopeError> {
    file.read_exact_at(buf, offset).map_err(|e| {
        if e.kind() == io::ErrorKind::UnexpectedEof {
            EnvelopeError::Read(io::Error::new(
                io::ErrorKind::UnexpectedEof,
                "the input changed (it got shorter) while it was being read",
            ))
        } else {
            EnvelopeError::Read(e)
        }
    })
}

/// How a run is split: the file's segment size, worker threads and segments per batch.
#[derive(Debug, Clone, Copy)]
pub struct Split {
    /// Plaintext bytes per full segment (the file's).
    pub segment_size: usize,
    /// Threads reading and sealing or opening batches; the caller's thread writes.
    pub workers: usize,
    /// Segments per batch.
    pub batch: usize,
}

/// What a worker hands the writer: the batch's first segment, its buffer, and the pieces of the
/// buffer to write with their output offsets.
struct Done {
    first: u64,
    buf: Vec<u8>,
    pieces: Vec<(u64, Range<usize>)>,
    plaintext_bytes: u64,
}

/// A batch job: fills `buf` for the batch starting at segment `first` and returns the pieces to
/// write and the plaintext bytes they stand for, or the failing segment and why.
type Job<'a> =
    dyn Fn(u64, &mut [u8]) -> Result<(Vec<(u64, Range<usize>)>, u64), (u64, EnvelopeError)> + Sync + 'a;

/// Runs `job` over the batches of `count` segments on `split.workers` threads, each batch in a
/// buffer of `buf_len` bytes from a pool of `workers + 2`, while the calling thread writes the
/// finished batches to `output` (in whatever order they finish: the offsets say where). Writes
/// to one file serialise in the kernel anyway, so one writer is the fastest arrangement.
fn run_batches(
    split: Split,
    count: u64,
    buf_len: usize,
    output: &File,
    progress: &dyn Progress,
    job: &Job<'_>,
) -> Result<(), EnvelopeError> {
    let workers = split.workers.max(1);
    let work = Work {
        batch: split.batch.max(1) as u64,
        next: AtomicU64::new(0),
        stop: AtomicBool::new(false),
        failure: Mutex::new(None),
    };
    let (free_tx, free_rx) = mpsc::channel::<Vec<u8>>();
    for _ in 0..workers + 2 {
        // Cannot fail: the receiver is alive.
        let _ = free_tx.send(vec![0u8; buf_len]);
    }
    let free_rx = Mutex::new(free_rx);
    let (done_tx, done_rx) = mpsc::sync_channel::<Done>(workers + 2);
    let work_ref = &work;
    std::thread::scope(|scope| {
        for _ in 0..workers {
            let (done_tx, free_rx) = (done_tx.clone(), &free_rx);
            scope.spawn(move || loop {
                let buf = match free_rx.lock() {
                    Ok(rx) => rx.recv(),
                    Err(_) => return,
                };
                let Ok(mut buf) = buf else { return };
                let Some(first) = work_ref.claim(count) else { return };
                match job(first, &mut buf) {
                    Ok((pieces, plaintext_bytes)) => {
                        if done_tx.send(Done { first, buf, pieces, plaintext_bytes }).is_err() {
                            return;
                        }
                    }
                    Err((index, e)) => {
                        work_ref.fail(index, e);
                        return;
                    }
                }
            });
        }
        drop(done_tx);
        // The writer: ends when every worker has ended (all senders dropped).
        for done in done_rx {
            if !work_ref.stop.load(Ordering::Acquire) {
                let wrote =
                    done.pieces.iter().try_for_each(|(at, r)| output.write_all_at(&done.buf[r.clone()], *at));
                match wrote {
                    Ok(()) => progress.advance(done.plaintext_bytes),
                    Err(e) => work_ref.fail(done.first, EnvelopeError::Write(e)),
                }
            }
            // Cannot fail while a worker may still want it; afterwards nobody cares.
            let _ = free_tx.send(done.buf);
        }
    });
    work.into_result()
}

/// Encrypts the first `plain_len` bytes of `input` into `output`: `head` (the authenticated
/// header) at offset 0, then the segments. Returns the number of segments written.
pub fn encrypt(
    cipher: &SegmentCipher,
    head: &[u8],
    input: &File,
    plain_len: u64,
    output: &File,
    split: Split,
    progress: &dyn Progress,
) -> Result<u64, EnvelopeError> {
    let segment_size = split.segment_size.max(1);
    let layout = Layout::for_plaintext(plain_len, segment_size);
    if layout.count > u64::from(u32::MAX) + 1 {
        return Err(EnvelopeError::TooLarge);
    }
    output.write_all_at(head, 0).map_err(EnvelopeError::Write)?;
    let full = segment_size + SEGMENT_TAG_LEN;
    let body = head.len() as u64;
    let batch = split.batch.max(1) as u64;
    run_batches(split, layout.count, split.batch.max(1) * full, output, progress, &|first, buf| {
        let end = (first + batch).min(layout.count);
        let mut used = 0;
        let mut bytes = 0u64;
        for i in first..end {
            let n = layout.plain_len(i, plain_len);
            let slot = &mut buf[used..used + full];
            read_exact_at(input, &mut slot[..n], i * segment_size as u64).map_err(|e| (i, e))?;
            // i < 2^32: checked above.
            cipher
                .seal(i as u32, i + 1 == layout.count, slot, n)
                .map_err(|_| (i, EnvelopeError::Write(io::Error::other("sealing a segment failed"))))?;
            used += n + SEGMENT_TAG_LEN;
            bytes += n as u64;
        }
        Ok((vec![(body + first * full as u64, 0..used)], bytes))
    })?;
    Ok(layout.count)
}

/// Decrypts the body of `input`, which starts at `body_start` and runs to `input_len`, into
/// `output` (from offset 0). Returns (plaintext bytes, segments).
pub fn decrypt(
    cipher: &SegmentCipher,
    input: &File,
    body_start: u64,
    input_len: u64,
    output: &File,
    split: Split,
    progress: &dyn Progress,
) -> Result<(u64, u64), EnvelopeError> {
    let segment_size = split.segment_size.max(1);
    let body = input_len.checked_sub(body_start).ok_or(EnvelopeError::Truncated { segments: 0 })?;
    let (full_segments, tail) = body_segments(body, segment_size);
    let truncated = tail < SEGMENT_TAG_LEN as u64;
    // Segments to open: the full ones, plus the final one when the tail can hold one.
    let count = full_segments + u64::from(!truncated);
    if count > u64::from(u32::MAX) + 1 {
        return Err(EnvelopeError::TooLarge);
    }
    let full = segment_size + SEGMENT_TAG_LEN;
    let batch = split.batch.max(1) as u64;
    run_batches(split, count, split.batch.max(1) * full, output, progress, &|first, buf| {
        let end = (first + batch).min(count);
        let start = body_start + first * full as u64;
        let len = ((end - first) * full as u64).min(input_len - start) as usize;
        read_exact_at(input, &mut buf[..len], start).map_err(|e| (first, e))?;
        let mut pieces = Vec::with_capacity((end - first) as usize);
        let mut bytes = 0u64;
        for (k, i) in (first..end).enumerate() {
            let at = k * full;
            let on_disk = (len - at).min(full);
            let is_final = !truncated && i + 1 == count;
            let n = cipher.open(i as u32, is_final, &mut buf[at..at + on_disk]).map_err(|_| {
                if is_final {
                    (i, EnvelopeError::FinalSegment { index: i, len: on_disk })
                } else {
                    (i, EnvelopeError::Segment { index: i })
                }
            })?;
            pieces.push((i * segment_size as u64, at..at + n));
            bytes += n as u64;
        }
        Ok((pieces, bytes))
    })?;
    if truncated {
        return Err(EnvelopeError::Truncated { segments: full_segments });
    }
    let plain = full_segments * segment_size as u64 + (tail - SEGMENT_TAG_LEN as u64);
    Ok((plain, count))
}

#[cfg(test)]
mod tests {
    use std::io::Write;

    use super::*;
    use crate::envelope::format::FileKeys;

    fn cipher() -> SegmentCipher {
        SegmentCipher::new(&FileKeys::derive(&[7; 32], &[8; 32]))
    }

    #[test]
    fn layouts_match_the_streaming_writer() {
        assert_eq!(Layout::for_plaintext(0, 16).count, 1, "an empty input has one (empty) final segment");
        assert_eq!(Layout::for_plaintext(15, 16).count, 1);
        assert_eq!(
            Layout::for_plaintext(16, 16).count,
            2,
            "a multiple of the segment size ends with an empty one"
        );
        let l = Layout::for_plaintext(40, 16);
        assert_eq!((l.count, l.plain_len(0, 40), l.plain_len(2, 40)), (3, 16, 8));
        assert_eq!(body_segments(3 * 32 + 16, 16), (3, 16));
        assert_eq!(body_segments(3 * 32, 16), (3, 0));
    }

    /// An input that is shorter than the length the encryption started with (it shrank) fails
    /// with a read error that says so, and nothing claims success.
    #[test]
    fn an_input_that_shrank_fails() {
        let mut input = tempfile::tempfile().unwrap();
        input.write_all(&[1u8; 1000]).unwrap();
        let output = tempfile::tempfile().unwrap();
        for workers in [1, 2] {
            let r = encrypt(
                &cipher(),
                b"HEAD",
                &input,
                5000,
                &output,
                Split { segment_size: 64, workers, batch: 3 },
                &crate::progress::NoProgress,
            );
            match r {
                Err(EnvelopeError::Read(e)) => assert!(e.to_string().contains("changed"), "{e}"),
                other => panic!("workers {workers}: {other:?}"),
            }
        }
    }

    /// A write error (here: the output is read-only) ends the run with a write error.
    #[test]
    fn a_write_error_is_reported() {
        let mut input = tempfile::tempfile().unwrap();
        input.write_all(&[1u8; 1000]).unwrap();
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("ro");
        std::fs::write(&path, b"").unwrap();
        let output = File::open(&path).unwrap();
        let r = encrypt(
            &cipher(),
            b"HEAD",
            &input,
            1000,
            &output,
            Split { segment_size: 64, workers: 2, batch: 2 },
            &crate::progress::NoProgress,
        );
        assert!(matches!(r, Err(EnvelopeError::Write(_))), "{r:?}");
    }
}
