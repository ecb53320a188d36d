//! Overlaps I/O with AES work: the caller's thread reads batch k+1 and writes batch k-1 while a
//! helper thread seals or opens batch k (itself spreading the batch over `threads` threads).
//! Three batches exist at a time, whatever the file size.

use std::sync::mpsc;

use super::segments::{for_each_parallel, SegmentAuthFailed, Slot};

/// Seals or opens one slot: `(index in batch, slot, batch base index, final slot index)` →
/// plaintext length.
pub type SlotWork<'a> = dyn Fn(usize, &mut Slot, u64, usize) -> Result<usize, SegmentAuthFailed> + Sync + 'a;

/// A batch of segments travelling through the pipeline.
pub struct Batch {
    /// Segment buffers (all of the same capacity).
    pub slots: Vec<Slot>,
    /// Slots in use.
    pub count: usize,
    /// Index of the first segment.
    pub base: u64,
    /// Whether the batch ends the input (its last used slot is the final segment, unless
    /// `truncated`).
    pub last: bool,
    /// Whether the input ended with a fragment too short to be a segment (decryption only).
    pub truncated: bool,
    /// Per-slot outcome of the AES work: the plaintext length on success.
    pub results: Vec<Result<usize, SegmentAuthFailed>>,
}

/// Runs the pipeline until `fill` reports the last batch and it has been drained, or a step
/// fails (the first error is returned and nothing more is written).
///
/// * `fill(batch)` reads input into `batch.slots`, setting `count`, `last` and `truncated`.
///   `base` is set by the pipeline.
/// * `work(slot_index_in_batch, slot, batch_base, final_slot)` seals or opens one slot on a
///   worker thread (`final_slot` is the index of the final segment in this batch, or `usize::MAX`).
/// * `drain(batch)` writes a processed batch, in order.
/// * `lost()` is the error for a worker that vanished (it can only panic on a bug).
#[allow(clippy::too_many_arguments)]
pub fn run<E: Send>(
    batches: usize,
    batch_segments: usize,
    slot_size: usize,
    threads: usize,
    mut fill: impl FnMut(&mut Batch) -> Result<(), E>,
    work: &SlotWork<'_>,
    mut drain: impl FnMut(&Batch) -> Result<(), E>,
    lost: impl Fn() -> E,
) -> Result<(), E> {
    let mut free: Vec<Batch> = (0..batches.max(2))
        .map(|_| Batch {
            slots: (0..batch_segments.max(1)).map(|_| Slot { buf: vec![0u8; slot_size], len: 0 }).collect(),
            count: 0,
            base: 0,
            last: false,
            truncated: false,
            results: Vec::new(),
        })
        .collect();
    std::thread::scope(|scope| {
        let (to_worker, worker_rx) = mpsc::sync_channel::<Batch>(1);
        let (to_main, main_rx) = mpsc::sync_channel::<Batch>(1);
        scope.spawn(move || {
            for mut b in worker_rx {
                let final_slot = if b.last && !b.truncated && b.count > 0 { b.count - 1 } else { usize::MAX };
                let base = b.base;
                b.results =
                    for_each_parallel(&mut b.slots[..b.count], threads, &|i, s| work(i, s, base, final_slot));
                if to_main.send(b).is_err() {
                    break;
                }
            }
        });
        let mut next_base: u64 = 0;
        let mut input_done = false;
        let mut in_flight = 0usize;
        loop {
            // Keep one batch in the worker and one queued behind it.
            while !input_done && in_flight < 2 {
                let Some(mut b) = free.pop() else { break };
                b.count = 0;
                b.last = false;
                b.truncated = false;
                b.base = next_base;
                fill(&mut b)?;
                next_base += b.count as u64;
                input_done = b.last;
                if to_worker.send(b).is_err() {
                    return Err(lost());
                }
                in_flight += 1;
            }
            if in_flight == 0 {
                return Ok(());
            }
            let Ok(b) = main_rx.recv() else { return Err(lost()) };
            in_flight -= 1;
            drain(&b)?;
            if b.last {
                return Ok(());
            }
            free.push(b);
        }
    })
}
