//! Overlaps I/O with AES work: the caller's thread reads and writes batches of segments while
//! `threads` worker threads seal or open whole batches; the caller writes them back in order.
//! At most `threads + 2` batches exist at a time, whatever the file size.

use std::collections::BTreeMap;
use std::sync::{mpsc, Mutex};

use super::segments::{SegmentAuthFailed, Slot};

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

impl Batch {
    fn new(batch_segments: usize, slot_size: usize) -> Batch {
        Batch {
            slots: (0..batch_segments.max(1)).map(|_| Slot { buf: vec![0u8; slot_size], len: 0 }).collect(),
            count: 0,
            base: 0,
            last: false,
            truncated: false,
            results: Vec::new(),
        }
    }

    fn process(&mut self, work: &SlotWork<'_>) {
        let final_slot =
            if self.last && !self.truncated && self.count > 0 { self.count - 1 } else { usize::MAX };
        let base = self.base;
        self.results = self.slots[..self.count]
            .iter_mut()
            .enumerate()
            .map(|(i, s)| work(i, s, base, final_slot))
            .collect();
    }
}

/// The sizes of a pipeline.
#[derive(Debug, Clone, Copy)]
pub struct Shape {
    /// Segments per batch.
    pub batch_segments: usize,
    /// Bytes per segment buffer.
    pub slot_size: usize,
    /// Worker threads.
    pub threads: usize,
}

/// Runs the pipeline until `fill` reports the last batch and it has been drained, or a step
/// fails (the first error is returned and nothing more is written).
///
/// * `fill(batch)` reads input into `batch.slots`, setting `count`, `last` and `truncated`
///   (`base` is set by the pipeline); it runs on the caller's thread.
/// * `work` seals or opens one slot, on a worker thread.
/// * `drain(batch)` writes a processed batch; batches arrive in input order.
/// * `lost()` is the error for a worker that vanished (it can only panic on a bug).
pub fn run<E: Send>(
    shape: Shape,
    mut fill: impl FnMut(&mut Batch) -> Result<(), E>,
    work: &SlotWork<'_>,
    mut drain: impl FnMut(&Batch) -> Result<(), E>,
    lost: impl Fn() -> E,
) -> Result<(), E> {
    let threads = shape.threads.max(1);
    let max_in_flight = threads + 1;
    let mut free: Vec<Batch> =
        (0..max_in_flight + 1).map(|_| Batch::new(shape.batch_segments, shape.slot_size)).collect();
    let (to_workers, jobs) = mpsc::sync_channel::<(u64, Batch)>(max_in_flight);
    let jobs = Mutex::new(jobs);
    let (to_main, done) = mpsc::channel::<(u64, Batch)>();
    std::thread::scope(|scope| {
        let workers: Vec<_> = (0..threads)
            .map(|_| {
                let (jobs, to_main) = (&jobs, to_main.clone());
                scope.spawn(move || loop {
                    // A poisoned lock or a closed queue both end this worker.
                    let job = match jobs.lock() {
                        Ok(rx) => rx.recv(),
                        Err(_) => return,
                    };
                    let Ok((seq, mut b)) = job else { return };
                    b.process(work);
                    if to_main.send((seq, b)).is_err() {
                        return;
                    }
                })
            })
            .collect();
        drop(to_main);
        // The queue closes when `feed` returns (even early, on an error), so the workers end.
        let result = feed(to_workers, &done, &mut free, max_in_flight, &mut fill, &mut drain, &lost);
        // Join each worker's OS thread, not only its closure (which is all the scope's own end
        // waits for): the call then returns with every worker gone, thread-locals included.
        for worker in workers {
            if let Err(panic) = worker.join() {
                std::panic::resume_unwind(panic);
            }
        }
        result
    })
}

/// Feeds batches to the workers and drains them in order: the caller's side of [`run`]. Returns
/// when the last batch has been drained or on the first error; dropping `to_workers` on return
/// closes the queue, which ends the workers.
fn feed<E>(
    to_workers: mpsc::SyncSender<(u64, Batch)>,
    done: &mpsc::Receiver<(u64, Batch)>,
    free: &mut Vec<Batch>,
    max_in_flight: usize,
    fill: &mut impl FnMut(&mut Batch) -> Result<(), E>,
    drain: &mut impl FnMut(&Batch) -> Result<(), E>,
    lost: &impl Fn() -> E,
) -> Result<(), E> {
    let mut next_fill: u64 = 0;
    let mut next_drain: u64 = 0;
    let mut next_base: u64 = 0;
    let mut input_done = false;
    let mut ready: BTreeMap<u64, Batch> = BTreeMap::new();
    loop {
        while !input_done && next_fill - next_drain < max_in_flight as u64 {
            let Some(mut b) = free.pop() else { break };
            b.count = 0;
            b.last = false;
            b.truncated = false;
            b.base = next_base;
            fill(&mut b)?;
            next_base += b.count as u64;
            input_done = b.last;
            if to_workers.send((next_fill, b)).is_err() {
                return Err(lost());
            }
            next_fill += 1;
        }
        if next_drain == next_fill {
            return Ok(());
        }
        while !ready.contains_key(&next_drain) {
            let Ok((seq, b)) = done.recv() else { return Err(lost()) };
            ready.insert(seq, b);
        }
        while let Some(b) = ready.remove(&next_drain) {
            drain(&b)?;
            next_drain += 1;
            if b.last {
                return Ok(());
            }
            free.push(b);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Batches come back in order whatever the number of workers, and every slot is worked.
    #[test]
    fn batches_are_drained_in_input_order() {
        for threads in [1, 2, 5] {
            let mut produced = 0usize;
            let mut seen = Vec::new();
            let r: Result<(), ()> = run(
                Shape { batch_segments: 3, slot_size: 8, threads },
                |b| {
                    while b.count < 3 && produced < 20 {
                        b.slots[b.count].len = produced;
                        b.count += 1;
                        produced += 1;
                    }
                    b.last = produced == 20;
                    Ok(())
                },
                &|i, s, base, _| {
                    // Uneven work so that workers finish out of order.
                    std::thread::sleep(std::time::Duration::from_micros((s.len as u64 * 37) % 300));
                    assert_eq!(base as usize + i, s.len);
                    Ok(s.len)
                },
                |b| {
                    seen.extend(b.results.iter().map(|r| r.unwrap()));
                    Ok(())
                },
                || (),
            );
            assert_eq!(r, Ok(()));
            assert_eq!(seen, (0..20).collect::<Vec<_>>(), "threads {threads}");
        }
    }

    /// `run` returns only after its workers' threads have exited, thread-local destructors
    /// included: nothing of the pipeline outlives the call (a leak checker run right after it,
    /// as the fuzz targets do after every input, sees no half-exited thread).
    #[test]
    fn run_returns_after_its_worker_threads_have_exited() {
        use std::sync::atomic::{AtomicUsize, Ordering};
        static STARTED: AtomicUsize = AtomicUsize::new(0);
        static EXITED: AtomicUsize = AtomicUsize::new(0);
        struct SlowExit;
        impl Drop for SlowExit {
            fn drop(&mut self) {
                std::thread::sleep(std::time::Duration::from_millis(40));
                EXITED.fetch_add(1, Ordering::SeqCst);
            }
        }
        thread_local! { static ON_EXIT: std::cell::OnceCell<SlowExit> = const { std::cell::OnceCell::new() }; }
        let mut batches = 0;
        let r: Result<(), ()> = run(
            Shape { batch_segments: 1, slot_size: 4, threads: 3 },
            |b| {
                b.count = 1;
                batches += 1;
                b.last = batches == 12;
                Ok(())
            },
            &|_, _, _, _| {
                ON_EXIT.with(|cell| {
                    cell.get_or_init(|| {
                        STARTED.fetch_add(1, Ordering::SeqCst);
                        SlowExit
                    });
                });
                Ok(0)
            },
            |_| Ok(()),
            || (),
        );
        assert_eq!(r, Ok(()));
        let started = STARTED.load(Ordering::SeqCst);
        assert!(started >= 1);
        assert_eq!(EXITED.load(Ordering::SeqCst), started, "a worker thread outlived the call");
    }

    /// Once `fill` has reported the last batch it is not called again (a reader at its end, a
    /// terminal after Ctrl-D, may block on another read), and no more than `threads + 1`
    /// batches are ever filled and not yet drained.
    #[test]
    fn fill_stops_at_the_last_batch_and_the_batches_in_flight_are_bounded() {
        for threads in [1, 3] {
            let drained = std::cell::Cell::new(0usize);
            let (mut filled, mut most_in_flight) = (0usize, 0usize);
            let r: Result<(), ()> = run(
                Shape { batch_segments: 2, slot_size: 4, threads },
                |b| {
                    b.count = 2;
                    filled += 1;
                    b.last = filled == 9;
                    most_in_flight = most_in_flight.max(filled - drained.get());
                    Ok(())
                },
                &|_, _, _, _| Ok(0),
                |_| {
                    drained.set(drained.get() + 1);
                    Ok(())
                },
                || (),
            );
            assert_eq!(r, Ok(()));
            // The ninth fill reported the last batch: a tenth would be a call after it.
            assert_eq!(filled, 9, "fill was called after the last batch ({threads} workers)");
            assert_eq!(drained.get(), 9);
            assert!(
                most_in_flight <= threads + 1,
                "{most_in_flight} batches in flight with {threads} workers"
            );
        }
    }

    #[test]
    fn the_first_error_stops_the_pipeline() {
        let mut drained = 0;
        let r: Result<(), &str> = run(
            Shape { batch_segments: 2, slot_size: 4, threads: 2 },
            |b| {
                b.count = 2;
                Ok(())
            },
            &|_, _, _, _| Ok(0),
            |b| {
                drained += 1;
                if b.base == 4 {
                    Err("stop")
                } else {
                    Ok(())
                }
            },
            || "lost",
        );
        assert_eq!(r, Err("stop"));
        assert_eq!(drained, 3);
    }
}
