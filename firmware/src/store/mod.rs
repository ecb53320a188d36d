//! The record store: a log-structured map `(kind, id) → record` over NOR flash that survives a
//! power cut at any byte and erases what it drops (crypto-erase by overwriting with zeros).
//!
//! The layout and the reasons for a store of our own are in `docs/flash-format.md`. In short:
//!
//! * The flash is a ring of pages. Each used page starts with an 8-byte page header (magic,
//!   page sequence number); records follow back to back, 4-byte aligned.
//! * A record is a 16-byte header (state word, kind, length, record sequence number, CRC-32)
//!   and a payload whose first 16 bytes are the record's id. The state word is left erased
//!   (0xFFFFFFFF) when the record is written and set to zero when the record dies.
//! * [`Store::put`] writes the new record completely (its CRC makes a torn write detectable),
//!   and only then kills the record it replaces: state word to zero, payload overwritten with
//!   zeros. A power cut in between leaves two live records with the same id; mount keeps the one
//!   with the higher sequence number and finishes killing the other. So every put is atomic:
//!   after a cut the map holds the old record or the new one, never neither, never a mix.
//! * Dropped bytes are zeroed right away (NOR flash lets a written word be programmed again with
//!   zeros: only bits are cleared), so removed key material does not linger until a page erase.
//! * One page is always kept erased. When the head page fills, the next erased page becomes the
//!   head; if that used the last erased page, the oldest page is garbage-collected: its live
//!   records are copied to the new head (keeping their sequence numbers) and the page is erased.
//!   A cut during collection leaves originals and copies with equal sequence numbers: mount
//!   keeps the originals and erases the page of copies. Once all copies are written, the old
//!   page's magic is zeroed before it is erased, so a cut during the erase (which may leave
//!   anything in the page) leaves a page mount ignores (the copies win). Pages are used in ring
//!   order, which spreads erases evenly.
//!
//! The store writes zeros over words it wrote before (at most twice per word between erases:
//! once with data, once with zeros), which NOR flash and the nRF52840 NVMC allow
//! (`MultiwriteNorFlash` semantics); the flash type only needs [`NorFlash`]. That holds under
//! power cuts too: a word whose zeroing may have been cut short is never programmed again (a
//! page holding such dead bytes is collected at mount instead), and nothing is programmed into
//! a page before it is erased unless it is a used or fully erased page. `docs/flash-format.md`
//! lists what mount finishes after a cut; `crate::mock_flash` models the flash it assumes.
//!
//! An in-RAM index, sorted by `(kind, id)` and rebuilt at mount, maps every live record to its
//! flash offset; lookups are a binary search, listing a kind is a slice.

pub mod crc;

use embedded_storage::nor_flash::NorFlash;

/// Most pages the store manages (1 MiB of 4 KiB pages); a larger flash uses its first pages.
pub const MAX_PAGES: usize = 256;
/// Bytes of RAM the index takes per record it can hold (an [`Entry`]).
pub const INDEX_BYTES_PER_RECORD: usize = core::mem::size_of::<Entry>();
/// Bytes of a record header.
pub const RECORD_HEADER: usize = 16;
/// Bytes of a page header.
pub const PAGE_HEADER: usize = 8;
/// Length of a record id (the first bytes of every payload).
pub const ID_LEN: usize = 16;
/// Largest page size supported (the size of the store's record buffer).
pub const MAX_PAGE_SIZE: usize = 4096;
/// Largest record payload (id included) on a 4 KiB page.
pub const MAX_PAYLOAD: usize = MAX_PAGE_SIZE - PAGE_HEADER - RECORD_HEADER;

const PAGE_MAGIC: u32 = 0x3153_4B50; // "PKS1" little-endian
const STATE_LIVE: u32 = 0xFFFF_FFFF;
const NO_SEQ: u32 = 0xFFFF_FFFF;

/// A record id: the first [`ID_LEN`] bytes of its payload.
pub type RecordId = [u8; ID_LEN];

/// Why a store operation failed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StoreError {
    /// Not enough space (or index entries) for the record; nothing stored was changed.
    Full,
    /// The record is larger than a page can hold.
    TooLarge,
    /// The flash refused a read, write or erase.
    Flash,
    /// Stored data failed an integrity check, or the flash holds something that is not a store.
    Corrupted,
}

/// Health of the store after mount.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Health {
    /// Mounted; reads and writes work.
    Ok,
    /// The flash holds something that is not a valid store (or a record is damaged); nothing
    /// is written, every access answers [`StoreError::Corrupted`].
    Corrupted,
    /// The flash geometry is not supported (page size, write size, fewer than 4 pages).
    Unsupported,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum PageState {
    /// Known to be all 0xFF.
    Erased,
    /// Not a used page but not known to be erased: erase before use.
    Dirty,
    /// Holds records; `page_seq` orders it in the log.
    Used,
}

/// One live record in the index.
#[derive(Debug, Clone, Copy)]
pub struct Entry {
    /// Record kind (chosen by the caller; 0x00 and 0xFF are reserved).
    pub kind: u8,
    /// Record id.
    pub id: RecordId,
    /// Flash offset of the record header.
    loc: u32,
    /// Record size on flash (header, payload, padding).
    size: u16,
    /// A value the store's user keeps per record in RAM only (the token: when a key next needs
    /// attention, 0 for never); 0 after mount.
    pub due: u32,
}

/// The store's RAM index: every live record's kind, id and place on flash, sorted by
/// `(kind, id)`. Its capacity is the most live records the store holds; a board chooses it
/// ([`Index`]`<N>`: [`INDEX_BYTES_PER_RECORD`] bytes per record, allocated whole).
pub trait RecordIndex: core::ops::Deref<Target = [Entry]> + core::ops::DerefMut {
    /// Most records it holds.
    const CAPACITY: usize;
    /// An empty index.
    fn empty() -> Self;
    /// Inserts `e` at `at` (later entries move up one); gives it back when the index is full.
    fn insert_at(&mut self, at: usize, e: Entry) -> Result<(), Entry>;
    /// Removes and returns the entry at `at` (later entries move down one).
    fn remove_at(&mut self, at: usize) -> Entry;
    /// Removes every entry.
    fn clear_all(&mut self);
}

/// An index of at most `N` records.
pub type Index<const N: usize> = heapless::Vec<Entry, N>;

impl<const N: usize> RecordIndex for heapless::Vec<Entry, N> {
    const CAPACITY: usize = N;
    fn empty() -> Self {
        heapless::Vec::new()
    }
    fn insert_at(&mut self, at: usize, e: Entry) -> Result<(), Entry> {
        self.insert(at, e)
    }
    fn remove_at(&mut self, at: usize) -> Entry {
        self.remove(at)
    }
    fn clear_all(&mut self) {
        self.clear()
    }
}

/// The store over a flash `F`, indexing its live records in `I`.
pub struct Store<F, I> {
    flash: F,
    health: Health,
    page_size: usize,
    n_pages: usize,
    state: [PageState; MAX_PAGES],
    page_seq: [u32; MAX_PAGES],
    /// First free offset within each used page (`page_size` when closed).
    page_end: [u16; MAX_PAGES],
    head: Option<usize>,
    next_seq: u32,
    next_page_seq: u32,
    live_bytes: usize,
    /// Pages holding dead bytes a power cut kept from being zeroed (a bit per page): mount
    /// collects them, since programming those words again could exceed what NOR flash allows.
    residue: [u32; MAX_PAGES / 32],
    index: I,
    buf: [u8; MAX_PAGE_SIZE],
}

const ZEROS: [u8; 256] = [0; 256];

/// Size on flash of a record with a payload of `payload_len` bytes.
pub const fn record_size(payload_len: usize) -> usize {
    RECORD_HEADER + ((payload_len + 3) & !3)
}

fn record_crc(header: &[u8], payload: &[u8]) -> u32 {
    !crc::update(crc::update(!0, &header[4..12]), payload)
}

/// Bytes records may take in a store of `pages` pages of `page_size` bytes (at most
/// [`MAX_PAGES`] are used): every page but two, less its header. One page is kept erased for
/// garbage collection, and one page of slack allows for records not spanning pages.
pub const fn usable_bytes(pages: usize, page_size: usize) -> usize {
    let pages = if pages > MAX_PAGES { MAX_PAGES } else { pages };
    pages.saturating_sub(2) * page_size.saturating_sub(PAGE_HEADER)
}

impl<F: NorFlash, I: RecordIndex> Store<F, I> {
    /// Mounts the store on `flash`. Never fails: problems are reported by [`Store::health`].
    /// Finishes whatever a power cut interrupted: kills the older of two records with one id and
    /// torn records, erases pages that are neither used nor erased, collects pages holding dead
    /// bytes whose zeroing was cut short, and keeps one page erased (`docs/flash-format.md`).
    /// Every word is programmed at most twice between erases, also when power fails again during
    /// this recovery.
    pub fn mount(flash: F) -> Self {
        let mut s = Store {
            page_size: F::ERASE_SIZE,
            n_pages: (flash.capacity() / F::ERASE_SIZE.max(1)).min(MAX_PAGES),
            flash,
            health: Health::Ok,
            state: [PageState::Dirty; MAX_PAGES],
            page_seq: [NO_SEQ; MAX_PAGES],
            page_end: [0; MAX_PAGES],
            head: None,
            next_seq: 1,
            next_page_seq: 1,
            live_bytes: 0,
            residue: [0; MAX_PAGES / 32],
            index: I::empty(),
            buf: [0; MAX_PAGE_SIZE],
        };
        if !(1024..=MAX_PAGE_SIZE).contains(&s.page_size)
            || F::WRITE_SIZE > 4
            || 4 % F::WRITE_SIZE != 0
            || s.n_pages < 4
        {
            s.health = Health::Unsupported;
            return s;
        }
        if s.scan().is_err() {
            s.health = Health::Corrupted;
            s.index.clear_all();
            s.head = None;
            return s;
        }
        s.recover();
        s
    }

    /// Health after mount.
    pub fn health(&self) -> Health {
        self.health
    }

    /// Whether the store holds no live record at all.
    pub fn is_empty(&self) -> bool {
        self.index.is_empty()
    }

    /// The flash (e.g. for tests that inspect it).
    pub fn flash(&self) -> &F {
        &self.flash
    }

    /// The flash, writable (tests use it to arm a power cut).
    pub fn flash_mut(&mut self) -> &mut F {
        &mut self.flash
    }

    /// Gives the flash back.
    pub fn into_flash(self) -> F {
        self.flash
    }

    /// Flash bytes the store manages.
    pub fn total_bytes(&self) -> usize {
        self.n_pages * self.page_size
    }

    /// Bytes records may still take (the usable space less live records; one page is kept
    /// erased for garbage collection and one page of slack allows for records not spanning
    /// pages).
    pub fn free_bytes(&self) -> usize {
        self.usable_bytes().saturating_sub(self.live_bytes)
    }

    /// Bytes live records take on flash (headers included).
    pub fn live_bytes(&self) -> usize {
        self.live_bytes
    }

    fn usable_bytes(&self) -> usize {
        usable_bytes(self.n_pages, self.page_size)
    }

    /// Records the index can still take.
    pub fn free_records(&self) -> usize {
        I::CAPACITY - self.index.len()
    }

    fn check_ok(&self) -> Result<(), StoreError> {
        match self.health {
            Health::Ok => Ok(()),
            Health::Corrupted | Health::Unsupported => Err(StoreError::Corrupted),
        }
    }

    fn find(&self, kind: u8, id: &RecordId) -> Result<usize, usize> {
        self.index.binary_search_by(|e| (e.kind, &e.id).cmp(&(kind, id)))
    }

    /// The live entries of one kind, sorted by id.
    pub fn entries(&self, kind: u8) -> &[Entry] {
        let start = self.index.partition_point(|e| e.kind < kind);
        let end = self.index.partition_point(|e| e.kind <= kind);
        &self.index[start..end]
    }

    /// Whether a record exists.
    pub fn contains(&self, kind: u8, id: &RecordId) -> bool {
        self.health == Health::Ok && self.find(kind, id).is_ok()
    }

    /// The sequence number the next record written will get.
    pub fn next_sequence(&self) -> u32 {
        self.next_seq
    }

    /// The sequence number of record `(kind, id)`: records written later have larger ones
    /// (garbage collection keeps them). `None` if there is no such record.
    pub fn sequence_of(&mut self, kind: u8, id: &RecordId) -> Result<Option<u32>, StoreError> {
        self.check_ok()?;
        let Ok(i) = self.find(kind, id) else { return Ok(None) };
        let mut header = [0u8; RECORD_HEADER];
        self.flash.read(self.index[i].loc, &mut header).map_err(|_| StoreError::Flash)?;
        Ok(Some(u32::from_le_bytes([header[8], header[9], header[10], header[11]])))
    }

    /// Sets the `due` value of a record (kept in RAM only).
    pub fn set_due(&mut self, kind: u8, id: &RecordId, due: u32) {
        if let Ok(i) = self.find(kind, id) {
            self.index[i].due = due;
        }
    }

    /// Reads the payload of record `(kind, id)` *without* its id into `out`; returns its length,
    /// or `None` if there is no such record. A CRC mismatch is [`StoreError::Corrupted`].
    pub fn get(&mut self, kind: u8, id: &RecordId, out: &mut [u8]) -> Result<Option<usize>, StoreError> {
        self.check_ok()?;
        let Ok(i) = self.find(kind, id) else { return Ok(None) };
        let loc = self.index[i].loc;
        let mut header = [0u8; RECORD_HEADER];
        self.flash.read(loc, &mut header).map_err(|_| StoreError::Flash)?;
        let len = u16::from_le_bytes([header[6], header[7]]) as usize;
        if !(ID_LEN..=MAX_PAYLOAD).contains(&len) || len - ID_LEN > out.len() {
            return Err(StoreError::Corrupted);
        }
        let payload = &mut self.buf[..len];
        self.flash.read(loc + RECORD_HEADER as u32, payload).map_err(|_| StoreError::Flash)?;
        let crc = u32::from_le_bytes([header[12], header[13], header[14], header[15]]);
        if record_crc(&header, payload) != crc || payload[..ID_LEN] != id[..] {
            return Err(StoreError::Corrupted);
        }
        out[..len - ID_LEN].copy_from_slice(&payload[ID_LEN..]);
        Ok(Some(len - ID_LEN))
    }

    /// Stores `body` as record `(kind, id)`, replacing (and erasing) any record with that id.
    /// Atomic under power loss. [`StoreError::Full`] leaves everything as it was.
    pub fn put(&mut self, kind: u8, id: &RecordId, body: &[u8]) -> Result<(), StoreError> {
        self.check_ok()?;
        if kind == 0 || kind == 0xFF {
            return Err(StoreError::Corrupted);
        }
        let len = ID_LEN + body.len();
        if len > MAX_PAYLOAD.min(self.page_size - PAGE_HEADER - RECORD_HEADER) {
            return Err(StoreError::TooLarge);
        }
        let size = record_size(len);
        let existing = self.find(kind, id);
        let replaced = match existing {
            Ok(i) => self.index[i].size as usize,
            Err(_) => {
                if self.index.len() >= I::CAPACITY {
                    return Err(StoreError::Full);
                }
                0
            }
        };
        if self.live_bytes - replaced + size > self.usable_bytes() {
            return Err(StoreError::Full);
        }
        self.ensure_room(size)?;
        // Assemble header + payload (+ 0xFF padding) and write it in one go.
        let seq = self.take_seq();
        let rec = &mut self.buf[..size];
        rec.fill(0xFF);
        rec[4] = kind;
        rec[5] = 0x5A;
        rec[6..8].copy_from_slice(&(len as u16).to_le_bytes());
        rec[8..12].copy_from_slice(&seq.to_le_bytes());
        rec[RECORD_HEADER..RECORD_HEADER + ID_LEN].copy_from_slice(id);
        rec[RECORD_HEADER + ID_LEN..RECORD_HEADER + len].copy_from_slice(body);
        let crc = {
            let (h, p) = rec.split_at(RECORD_HEADER);
            record_crc(h, &p[..len])
        };
        rec[12..16].copy_from_slice(&crc.to_le_bytes());
        let loc = self.write_at_head(size)?;
        // The new record is complete: now the old one may die.
        match self.find(kind, id) {
            Ok(i) => {
                let old = self.index[i];
                self.index[i].loc = loc;
                self.index[i].size = size as u16;
                self.live_bytes = self.live_bytes - old.size as usize + size;
                self.kill(old.loc, old.size as usize)?;
            }
            Err(i) => {
                let e = Entry { kind, id: *id, loc, size: size as u16, due: 0 };
                self.index.insert_at(i, e).map_err(|_| StoreError::Full)?;
                self.live_bytes += size;
            }
        }
        Ok(())
    }

    /// Removes record `(kind, id)` and overwrites its bytes with zeros. Returns whether it
    /// existed. The state word is the commit point: once it is zero, the record is gone.
    pub fn remove(&mut self, kind: u8, id: &RecordId) -> Result<bool, StoreError> {
        self.check_ok()?;
        let Ok(i) = self.find(kind, id) else { return Ok(false) };
        let old = self.index.remove_at(i);
        self.live_bytes -= old.size as usize;
        self.kill(old.loc, old.size as usize)?;
        Ok(true)
    }

    fn take_seq(&mut self) -> u32 {
        let s = self.next_seq;
        self.next_seq = self.next_seq.wrapping_add(1);
        s
    }

    /// Writes `self.buf[4..size]` at the head (the state word stays erased); returns the offset.
    fn write_at_head(&mut self, size: usize) -> Result<u32, StoreError> {
        let head = self.head.ok_or(StoreError::Full)?;
        let off = self.page_end[head] as usize;
        let loc = (head * self.page_size + off) as u32;
        if let Err(_e) = self.flash.write(loc + 4, &self.buf[4..size]) {
            // Never write after a failed write in this page: close it.
            self.page_end[head] = self.page_size as u16;
            return Err(StoreError::Flash);
        }
        self.page_end[head] = (off + size) as u16;
        Ok(loc)
    }

    /// Kills the record at `loc`: state word to zero, then payload to zeros.
    fn kill(&mut self, loc: u32, size: usize) -> Result<(), StoreError> {
        self.flash.write(loc, &[0; 4]).map_err(|_| StoreError::Flash)?;
        self.zero_range(loc + RECORD_HEADER as u32, size - RECORD_HEADER)
    }

    /// Programs zeros over every word in the range that is not zero yet (words already zero are
    /// not programmed again), in address order.
    fn zero_range(&mut self, mut at: u32, len: usize) -> Result<(), StoreError> {
        let end = at + len as u32;
        while at < end {
            let n = ((end - at) as usize).min(ZEROS.len());
            let mut chunk = [0u8; 256];
            self.flash.read(at, &mut chunk[..n]).map_err(|_| StoreError::Flash)?;
            // Runs of non-zero words, one write each.
            let mut w = 0;
            while w < n {
                if chunk[w..w + 4] == [0; 4] {
                    w += 4;
                    continue;
                }
                let run_start = w;
                while w < n && chunk[w..w + 4] != [0; 4] {
                    w += 4;
                }
                self.flash
                    .write(at + run_start as u32, &ZEROS[..w - run_start])
                    .map_err(|_| StoreError::Flash)?;
            }
            at += n as u32;
        }
        Ok(())
    }

    /// Whether every byte of the range is zero.
    fn range_is_zero(&mut self, mut at: u32, len: usize) -> Result<bool, StoreError> {
        let end = at + len as u32;
        while at < end {
            let n = ((end - at) as usize).min(ZEROS.len());
            let mut chunk = [0u8; 256];
            self.flash.read(at, &mut chunk[..n]).map_err(|_| StoreError::Flash)?;
            if chunk[..n].iter().any(|&b| b != 0) {
                return Ok(false);
            }
            at += n as u32;
        }
        Ok(true)
    }

    fn mark_residue(&mut self, p: usize) {
        self.residue[p / 32] |= 1 << (p % 32);
    }

    fn has_residue(&self, p: usize) -> bool {
        self.residue[p / 32] & (1 << (p % 32)) != 0
    }

    fn page_of(&self, loc: u32) -> usize {
        loc as usize / self.page_size
    }

    fn free_pages(&self) -> usize {
        self.state[..self.n_pages].iter().filter(|s| **s != PageState::Used).count()
    }

    /// Makes sure the head page has `size` free bytes, opening pages and collecting garbage.
    fn ensure_room(&mut self, size: usize) -> Result<(), StoreError> {
        for _ in 0..2 * self.n_pages + 2 {
            if let Some(h) = self.head {
                if self.page_size - self.page_end[h] as usize >= size {
                    return Ok(());
                }
            }
            self.open_new_head()?;
        }
        Err(StoreError::Full)
    }

    /// Starts a new head page (the next free page in ring order); if no erased page is left
    /// after that, collects the oldest page into the new head.
    fn open_new_head(&mut self) -> Result<(), StoreError> {
        let start = self.head.map(|h| h + 1).unwrap_or(0);
        let ring = (0..self.n_pages).map(|i| (start + i) % self.n_pages);
        // An erased page if there is one: erasing a dirty page can itself be cut short, and on a
        // store with no used page yet, what an interrupted erase leaves would look like foreign
        // data at the next mount.
        let p = ring
            .clone()
            .find(|&p| self.state[p] == PageState::Erased)
            .or_else(|| ring.clone().find(|&p| self.state[p] == PageState::Dirty))
            .ok_or(StoreError::Full)?;
        if self.state[p] == PageState::Dirty {
            self.erase_page(p)?;
        }
        let base = (p * self.page_size) as u32;
        self.state[p] = PageState::Used;
        self.page_seq[p] = self.next_page_seq;
        self.next_page_seq = self.next_page_seq.wrapping_add(1);
        self.head = Some(p);
        // The sequence number first, then the magic: a page only counts as used once its magic
        // is complete, and then its sequence number is complete too (a cut while programming it
        // could leave any larger number).
        let written = self
            .flash
            .write(base + 4, &self.page_seq[p].to_le_bytes())
            .and_then(|()| self.flash.write(base, &PAGE_MAGIC.to_le_bytes()));
        if written.is_err() {
            self.page_end[p] = self.page_size as u16;
            return Err(StoreError::Flash);
        }
        self.page_end[p] = PAGE_HEADER as u16;
        if self.free_pages() == 0 {
            self.collect_oldest()?;
        }
        Ok(())
    }

    fn erase_page(&mut self, p: usize) -> Result<(), StoreError> {
        let base = (p * self.page_size) as u32;
        self.flash.erase(base, base + self.page_size as u32).map_err(|_| StoreError::Flash)?;
        self.state[p] = PageState::Erased;
        self.page_seq[p] = NO_SEQ;
        self.page_end[p] = 0;
        self.residue[p / 32] &= !(1 << (p % 32));
        Ok(())
    }

    /// Zeroes the page's magic, then erases it: a cut during the erase (which may leave
    /// anything in the page) never leaves a page that looks used.
    fn retire_and_erase(&mut self, p: usize) -> Result<(), StoreError> {
        let base = (p * self.page_size) as u32;
        self.flash.write(base, &[0; 4]).map_err(|_| StoreError::Flash)?;
        self.state[p] = PageState::Dirty;
        self.erase_page(p)
    }

    /// Copies the live records of the oldest page (not the head) to the head, then erases it.
    fn collect_oldest(&mut self) -> Result<(), StoreError> {
        let head = self.head.ok_or(StoreError::Full)?;
        let victim = (0..self.n_pages)
            .filter(|&p| p != head && self.state[p] == PageState::Used)
            .min_by_key(|&p| self.page_seq[p])
            .ok_or(StoreError::Full)?;
        self.collect(victim)
    }

    /// Copies the live records of `victim` (a used page older than the head, which has room
    /// for them) to the head, then retires and erases it.
    fn collect(&mut self, victim: usize) -> Result<(), StoreError> {
        let head = self.head.ok_or(StoreError::Full)?;
        if victim == head {
            return Err(StoreError::Corrupted);
        }
        let base = victim * self.page_size;
        // Live records of the victim, in index order (the index says what is live).
        let mut moved = 0usize;
        loop {
            let next = self
                .index
                .iter()
                .enumerate()
                .filter(|(_, e)| (e.loc as usize) >= base && (e.loc as usize) < base + self.page_size)
                .map(|(i, _)| i)
                .next();
            let Some(i) = next else { break };
            let e = self.index[i];
            let size = e.size as usize;
            if self.page_size - (self.page_end[head] as usize) < size {
                return Err(StoreError::Full);
            }
            // A copy keeps its sequence number: if a cut stops the collection, mount keeps
            // the original (in the older page) and the copies die with their page.
            self.flash.read(e.loc, &mut self.buf[..size]).map_err(|_| StoreError::Flash)?;
            let loc = self.write_at_head(size)?;
            self.index[i].loc = loc;
            moved += 1;
            if moved > I::CAPACITY {
                return Err(StoreError::Corrupted);
            }
        }
        // Every live record has its copy: retire the page before erasing it, so that a cut
        // during the erase (which may leave anything in the page) never brings its records back.
        self.retire_and_erase(victim)
    }

    /// After the scan, finishes what a power cut interrupted. Each step is safe to cut again
    /// (the next mount redoes it) and never programs a word a third time:
    ///
    /// 1. a cut while collecting garbage leaves no erased page and a newest page holding only
    ///    copies (which lost to their originals in the scan): retire and erase it;
    /// 2. erase every page that is neither used nor erased (a torn page header, a retired page
    ///    whose erase was cut short, what an interrupted erase left): nothing in them counts, and
    ///    they may hold copies of records that were dropped since;
    /// 3. collect every page holding dead bytes that could not be zeroed (a kill cut short
    ///    leaves a word programmed twice, so it is never zeroed again: the page is erased
    ///    instead, after its live records are copied to the head).
    fn recover(&mut self) {
        let Some(h) = self.head else { return };
        if self.free_pages() == 0
            && !self.index.iter().any(|e| self.page_of(e.loc) == h)
            && self.retire_and_erase(h).is_ok()
        {
            self.head = (0..self.n_pages)
                .filter(|&p| self.state[p] == PageState::Used)
                .max_by_key(|&p| self.page_seq[p]);
        }
        for p in 0..self.n_pages {
            if self.state[p] == PageState::Dirty && self.erase_page(p).is_err() {
                return;
            }
        }
        for p in 0..self.n_pages {
            if self.has_residue(p) && self.state[p] == PageState::Used && self.collect_residue(p).is_err() {
                return;
            }
        }
    }

    /// Moves the live records of page `p` to the head (a new head if `p` is the head) and
    /// erases `p`.
    fn collect_residue(&mut self, p: usize) -> Result<(), StoreError> {
        if self.head == Some(p) {
            // Closed: the records go to a new head, opened by `ensure_room` (with room for all of
            // them, so the collection never stops half-way for want of space).
            self.page_end[p] = self.page_size as u16;
        }
        let live: usize =
            self.index.iter().filter(|e| self.page_of(e.loc) == p).map(|e| e.size as usize).sum();
        self.ensure_room(live.max(1))?;
        // Opening pages may have collected `p` already (it was the oldest).
        if self.state[p] != PageState::Used {
            return Ok(());
        }
        self.collect(p)
    }

    /// Rebuilds the index from flash.
    fn scan(&mut self) -> Result<(), StoreError> {
        let mut any_used = false;
        let mut any_garbage = false;
        let mut order: heapless::Vec<u16, MAX_PAGES> = heapless::Vec::new();
        for p in 0..self.n_pages {
            let base = (p * self.page_size) as u32;
            let mut header = [0u8; PAGE_HEADER];
            self.flash.read(base, &mut header).map_err(|_| StoreError::Flash)?;
            let magic = u32::from_le_bytes([header[0], header[1], header[2], header[3]]);
            let seq = u32::from_le_bytes([header[4], header[5], header[6], header[7]]);
            if magic == PAGE_MAGIC && seq != NO_SEQ {
                self.state[p] = PageState::Used;
                self.page_seq[p] = seq;
                any_used = true;
                let _ = order.push(p as u16);
            } else if self.range_is_erased(p, 0)? {
                self.state[p] = PageState::Erased;
            } else {
                // A page header cut short, or an interrupted erase: erase before use. If no
                // page of the flash is a store page and some hold data, this is not our flash.
                self.state[p] = PageState::Dirty;
                if !self.range_is_erased(p, PAGE_HEADER)? {
                    any_garbage = true;
                }
            }
        }
        if !any_used {
            return if any_garbage { Err(StoreError::Corrupted) } else { Ok(()) };
        }
        pkms_protocol::small_sort::sort_by(&mut order, |&a, &b| {
            self.page_seq[a as usize] < self.page_seq[b as usize]
        });
        for &p in order.iter() {
            let p = p as usize;
            self.next_page_seq = self.next_page_seq.max(self.page_seq[p].wrapping_add(1));
            self.scan_page(p)?;
            self.head = Some(p);
        }
        self.live_bytes = self.index.iter().map(|e| e.size as usize).sum();
        Ok(())
    }

    /// Whether page `p` is all 0xFF from offset `from` on.
    fn range_is_erased(&mut self, p: usize, from: usize) -> Result<bool, StoreError> {
        let base = p * self.page_size;
        let mut chunk = [0u8; 256];
        let mut off = from;
        while off < self.page_size {
            let n = (self.page_size - off).min(chunk.len());
            self.flash.read((base + off) as u32, &mut chunk[..n]).map_err(|_| StoreError::Flash)?;
            if chunk[..n].iter().any(|&b| b != 0xFF) {
                return Ok(false);
            }
            off += n;
        }
        Ok(true)
    }

    fn scan_page(&mut self, p: usize) -> Result<(), StoreError> {
        let base = p * self.page_size;
        let mut off = PAGE_HEADER;
        loop {
            if off + RECORD_HEADER > self.page_size {
                self.page_end[p] = self.page_size as u16;
                return Ok(());
            }
            let loc = (base + off) as u32;
            let mut header = [0u8; RECORD_HEADER];
            self.flash.read(loc, &mut header).map_err(|_| StoreError::Flash)?;
            if header.iter().all(|&b| b == 0xFF) {
                self.page_end[p] = off as u16;
                return Ok(());
            }
            let state = u32::from_le_bytes([header[0], header[1], header[2], header[3]]);
            let kind = header[4];
            let len = u16::from_le_bytes([header[6], header[7]]) as usize;
            let size = record_size(len);
            let sane = header[5] == 0x5A
                && kind != 0
                && kind != 0xFF
                && (ID_LEN..=MAX_PAYLOAD).contains(&len)
                && off + size <= self.page_size;
            if !sane {
                // A write cut short: nothing follows it in this page. Zero what is there, the
                // state word first; if that was begun before (the state word is not erased),
                // never program these words again: collect the page if any is not zero yet.
                self.page_end[p] = self.page_size as u16;
                if state == STATE_LIVE {
                    let _ = self.zero_range(loc, self.page_size - off);
                } else if !self.range_is_zero(loc + 4, self.page_size - off - 4)? {
                    self.mark_residue(p);
                }
                return Ok(());
            }
            if state != STATE_LIVE {
                // Dead. If its kill was cut short (bytes not zeroed), the words it reached may
                // have been programmed twice already: collect the page instead of zeroing them.
                if !self.range_is_zero(loc + RECORD_HEADER as u32, size - RECORD_HEADER)? {
                    self.mark_residue(p);
                }
                off += size;
                continue;
            }
            self.flash
                .read(loc + RECORD_HEADER as u32, &mut self.buf[..len])
                .map_err(|_| StoreError::Flash)?;
            let crc = u32::from_le_bytes([header[12], header[13], header[14], header[15]]);
            if record_crc(&header, &self.buf[..len]) != crc {
                // A torn write (the last thing written in this page: all 0xFF follows) or a
                // damaged record. Either way it never counts: kill it (its length stays
                // readable, so later scans skip it) and read on.
                let _ = self.kill(loc, size);
                off += size;
                continue;
            }
            let seq = u32::from_le_bytes([header[8], header[9], header[10], header[11]]);
            self.next_seq = self.next_seq.max(seq.wrapping_add(1));
            let mut id = [0u8; ID_LEN];
            id.copy_from_slice(&self.buf[..ID_LEN]);
            match self.find(kind, &id) {
                Ok(i) => {
                    let other = self.index[i];
                    let mut oh = [0u8; RECORD_HEADER];
                    self.flash.read(other.loc, &mut oh).map_err(|_| StoreError::Flash)?;
                    let other_seq = u32::from_le_bytes([oh[8], oh[9], oh[10], oh[11]]);
                    // Higher sequence wins; equal sequence is a garbage-collection copy, and
                    // the original (seen first, in the older page) wins.
                    if seq > other_seq {
                        self.index[i].loc = loc;
                        self.index[i].size = size as u16;
                        let _ = self.kill(other.loc, other.size as usize);
                    } else {
                        let _ = self.kill(loc, size);
                    }
                }
                Err(i) => {
                    let e = Entry { kind, id, loc, size: size as u16, due: 0 };
                    self.index.insert_at(i, e).map_err(|_| StoreError::Corrupted)?;
                }
            }
            off += size;
        }
    }
}

#[cfg(test)]
mod tests;
