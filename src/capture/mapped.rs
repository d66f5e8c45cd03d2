//! A capture file read through a read-only memory map: the reader walks the page cache in
//! place instead of copying every byte into its buffer with `read()` (about a tenth of the
//! time of a run on a cached file went to that copy).
//!
//! The map is shown to the reader one window at a time ([`WINDOW`]); moving the window is
//! where pages are asked for ahead (read-ahead for a file not in the cache, page tables filled
//! in one call) and pages already read are let go, so that a 50 GB trace does not grow the
//! process's resident memory by 50 GB.
//!
//! The only `unsafe` is the mapping itself, viewing it as bytes, and the advice calls over
//! parts of it. One hazard comes with any file map: bytes of a file another process has
//! truncated are gone, and touching them stops the process with SIGBUS where `read()` would
//! have returned a short file. The size is looked at again each time the window moves, and
//! the map is cut to it, so only a truncation into the window being read (a few ms of work)
//! can still do that. A file that grows is safe: what is past the size it had when opened is
//! read with `read()` afterwards.

use nix::sys::mman::{madvise, mmap, munmap, MapFlags, MmapAdvise, ProtFlags};
use std::fs::File;
use std::num::NonZeroUsize;
use std::ptr::NonNull;

/// Bytes of the map shown to the reader at a time.
pub(crate) const WINDOW: usize = 4 * 1024 * 1024;

/// Files smaller than this are read with `read()`: a map costs more to set up than it saves.
pub(crate) const MIN_MAPPED: u64 = 1024 * 1024;

const PAGE: usize = 4096;

/// A read-only, shared mapping of a whole file, unmapped on drop. One reader's: the thread
/// that reads a file for several workers copies it with `read()` instead (`split.rs`).
pub(crate) struct FileMap {
    base: NonNull<u8>,
    /// Bytes that may be read: the mapped length, or less once the file was found shorter.
    len: usize,
    mapped: usize,
    /// The file, to see whether it was truncated.
    file: File,
    /// Below this offset, pages were let go.
    released: usize,
}

// SAFETY: the mapping is read-only and owned by this value alone; the pointer is only used
// through `&self` / `&mut self`, so moving the owner to another thread moves the only access.
unsafe impl Send for FileMap {}

impl FileMap {
    /// Maps `len` bytes of `file` (its size when opened). `None` when the file cannot be
    /// mapped (empty, too large for the address space, or on a file system that does not
    /// map): the caller then reads it.
    pub(crate) fn of(file: &File, len: u64) -> Option<FileMap> {
        let len = NonZeroUsize::new(usize::try_from(len).ok()?)?;
        // SAFETY: a fresh read-only mapping chosen by the kernel, overlapping nothing of ours.
        // Its bytes are only read, through `bytes`, while this value (which unmaps) lives.
        let base = unsafe {
            mmap(
                None,
                len,
                ProtFlags::PROT_READ,
                MapFlags::MAP_SHARED,
                file,
                0,
            )
        }
        .ok()?;
        let map = FileMap {
            base: base.cast(),
            len: len.get(),
            mapped: len.get(),
            file: file.try_clone().ok()?,
            released: 0,
        };
        map.advise(0, map.len, MmapAdvise::MADV_SEQUENTIAL);
        Some(map)
    }

    /// Bytes that may be read.
    pub(crate) fn len(&self) -> usize {
        self.len
    }

    /// Cuts the length that may be read to the file's size, should another process have
    /// truncated it: its pages past the end are gone. (The reader then ends as `read()`
    /// would have.)
    pub(crate) fn follow_truncation(&mut self) {
        if let Ok(meta) = self.file.metadata() {
            self.len = self
                .len
                .min(usize::try_from(meta.len()).unwrap_or(usize::MAX));
        }
    }

    /// The whole file as it was mapped.
    #[inline]
    pub(crate) fn bytes(&self) -> &[u8] {
        // SAFETY: `base` is a live read-only mapping of `len` bytes (see `of`); nothing in
        // this process writes it. (Bytes of pages let go are read back from the file.)
        unsafe { std::slice::from_raw_parts(self.base.as_ptr(), self.len) }
    }

    /// The reader moved its window to `from..to`, having consumed everything before `from`:
    /// fill the page tables of the new window in one call, start reading as much again after
    /// it from the disk, and let go of the pages wholly before `from`.
    pub(crate) fn window_moved(&mut self, from: usize, to: usize) {
        self.released = self.release(self.released, from);
        self.populate(from, to);
        self.read_ahead(to, to.saturating_add(to.saturating_sub(from)));
    }

    /// Fills the page tables of `from..to` in one call (where each page's first touch would
    /// fault), waiting for what is not yet read from the disk.
    fn populate(&self, from: usize, to: usize) {
        let start = from / PAGE * PAGE;
        self.advise(
            start,
            to.saturating_sub(start),
            MmapAdvise::MADV_POPULATE_READ,
        );
    }

    /// Starts reading `from..to` from the disk, without waiting.
    fn read_ahead(&self, from: usize, to: usize) {
        let start = from / PAGE * PAGE;
        self.advise(start, to.saturating_sub(start), MmapAdvise::MADV_WILLNEED);
    }

    /// Lets go of the pages wholly inside `from..to` (their page-table entries; the page
    /// cache keeps them), so that what was read does not stay in resident memory. Bytes
    /// there read again later fault back in from the file. Returns where the pages let go
    /// end: the `from` of the next call, so that a page `to` cut is let go then.
    fn release(&self, from: usize, to: usize) -> usize {
        let start = from.div_ceil(PAGE) * PAGE;
        let end = to / PAGE * PAGE;
        self.advise(start, end.saturating_sub(start), MmapAdvise::MADV_DONTNEED);
        from.max(end)
    }

    /// Advice over `at..at + len` of the map (clipped to it). Advice is a hint: a kernel that
    /// does not know one (MADV_POPULATE_READ is Linux 5.14) just reads as usual, so errors
    /// are ignored.
    fn advise(&self, at: usize, len: usize, advice: MmapAdvise) {
        let len = len.min(self.len.saturating_sub(at));
        if len == 0 || at % PAGE != 0 {
            return;
        }
        let Some(addr) = NonNull::new(self.base.as_ptr().wrapping_add(at)) else {
            return;
        };
        // SAFETY: `at` is page-aligned and `at..at + len` lies inside the mapping. The advice
        // given changes no byte: DONTNEED on a shared file map drops page-table entries, and
        // the bytes read again later come back from the file.
        let _ = unsafe { madvise(addr.cast(), len, advice) };
    }
}

impl Drop for FileMap {
    fn drop(&mut self) {
        // SAFETY: the mapping made in `of`, of that length; `bytes` borrows end with `self`.
        let _ = unsafe { munmap(self.base.cast(), self.mapped) };
    }
}

#[cfg(test)]
mod tests {
    use crate::capture::{
        from_buf, from_reader_with_buffer, mapped_file, CaptureError, PacketSource, DEFAULT_BUFFER,
    };
    use std::io::Write;
    use std::path::{Path, PathBuf};

    const CORPUS: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/data/corpus");

    /// A frame as the tests compare it: time, link type, lengths and bytes.
    type Owned = (u64, u32, u32, Vec<u8>);

    /// Every frame, then how the input ended: `None` cleanly, else the error's offset and
    /// message.
    fn drain(mut src: Box<dyn PacketSource + Send>) -> (Vec<Owned>, Option<(u64, String)>) {
        let mut frames = Vec::new();
        loop {
            match src.next_frame() {
                Ok(Some(f)) => frames.push((f.ts.nanos(), f.linktype, f.orig_len, f.data.to_vec())),
                Ok(None) => return (frames, None),
                Err(e) => return (frames, Some(ended(&e))),
            }
        }
    }

    fn ended(e: &CaptureError) -> (u64, String) {
        (e.offset, format!("{:?}", e.kind))
    }

    /// What `read()` makes of these bytes: the oracle for the map.
    fn read(bytes: &[u8]) -> (Vec<Owned>, Option<(u64, String)>) {
        match from_reader_with_buffer(std::io::Cursor::new(bytes.to_vec()), DEFAULT_BUFFER) {
            Ok(src) => drain(src),
            Err(e) => (Vec::new(), Some(ended(&e))),
        }
    }

    fn open_mapped(path: &Path, window: usize) -> Box<dyn PacketSource + Send> {
        let file = std::fs::File::open(path).expect("open");
        let len = file.metadata().expect("metadata").len();
        let buf = mapped_file(&file, len, window).expect("a plain file maps");
        from_buf(buf).expect("a capture header")
    }

    fn corpus() -> Vec<PathBuf> {
        let mut files: Vec<PathBuf> = std::fs::read_dir(CORPUS)
            .expect("corpus directory")
            .map(|e| e.expect("entry").path())
            .collect();
        files.sort();
        assert!(files.len() > 10, "corpus looks empty");
        files
    }

    /// Windows smaller than a page, not a multiple of one, and smaller than the records,
    /// over every corpus file whole and cut short: the frames and the ending `read()` gives.
    #[test]
    fn every_window_gives_the_frames_and_ending_of_read() {
        let dir = tempfile::tempdir().expect("tempdir");
        let mut mapped_runs = 0;
        for path in corpus() {
            let bytes = std::fs::read(&path).expect("read");
            let name = path.display();
            let cuts = [bytes.len(), bytes.len() * 2 / 3 + 1, bytes.len() / 3];
            for cut in cuts {
                let part = bytes.get(..cut).expect("cut within the file");
                let want = read(part);
                if want.0.is_empty() {
                    continue; // (no capture header left: nothing to map)
                }
                let copy = dir.path().join("cut.pcap");
                std::fs::write(&copy, part).expect("write");
                for window in [64, 1000, 4096, 65536 + 100] {
                    let src = open_mapped(&copy, window);
                    assert_eq!(src.len_hint(), Some(cut as u64));
                    let got = drain(src);
                    assert_eq!(
                        got.0.len(),
                        want.0.len(),
                        "{name} cut {cut} window {window}"
                    );
                    assert!(got.0 == want.0, "{name} cut {cut} window {window}: frames");
                    assert_eq!(got.1, want.1, "{name} cut {cut} window {window}: ending");
                    mapped_runs += 1;
                }
            }
        }
        assert!(mapped_runs > 500, "{mapped_runs} runs");
    }

    /// A file still being written (tcpdump -w): what is appended after it was opened, past
    /// the map, is read with `read()`, including a record the map ends in the middle of.
    #[test]
    fn a_file_that_grows_after_opening_is_read_to_its_new_end() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = Path::new(CORPUS).join("ndpi__alexa-app.pcapng");
        let bytes = std::fs::read(&path).expect("read");
        let want = read(&bytes);
        assert!(want.0.len() > 100 && want.1.is_none());
        // Where the first frame ends: the map must hold it, since it is read before the
        // file grows.
        let mut whole = open_mapped(&path, 4096);
        whole.next_frame().expect("first frame");
        let first_end = usize::try_from(whole.position()).expect("offset");
        for cut in [
            first_end,
            first_end + 1,
            bytes.len() / 2 + 3,
            bytes.len() - 1,
        ] {
            let copy = dir.path().join(format!("growing-{cut}.pcapng"));
            std::fs::write(&copy, bytes.get(..cut).expect("cut")).expect("write");
            let mut src = open_mapped(&copy, 4096);
            let first = src
                .next_frame()
                .expect("a whole first frame")
                .map(|f| f.data.len());
            assert!(first.is_some());
            let mut writer = std::fs::OpenOptions::new()
                .append(true)
                .open(&copy)
                .expect("append");
            writer
                .write_all(bytes.get(cut..).expect("rest"))
                .expect("append the rest");
            let (rest, end) = drain(src);
            assert_eq!(rest.len() + 1, want.0.len(), "cut {cut}");
            assert!(rest == want.0[1..], "cut {cut}: frames after the first");
            assert_eq!(end, None, "cut {cut}");
        }
    }

    /// A file truncated by another process while it is read: the reader ends where the file
    /// now ends, as `read()` would, instead of touching pages that are gone (SIGBUS).
    #[test]
    fn a_file_truncated_while_read_ends_where_it_now_ends() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = Path::new(CORPUS).join("ndpi__alexa-app.pcapng");
        let bytes = std::fs::read(&path).expect("read");
        for keep in [bytes.len() / 2, bytes.len() / 3 + 1, 100_000] {
            let want = read(bytes.get(..keep).expect("cut"));
            assert!(want.0.len() > 10);
            let copy = dir.path().join(format!("shrinking-{keep}.pcapng"));
            std::fs::write(&copy, &bytes).expect("write");
            let mut src = open_mapped(&copy, 4096);
            let first = src
                .next_frame()
                .expect("first frame")
                .map(|f| f.data.to_vec());
            assert_eq!(first.as_ref(), want.0.first().map(|f| &f.3));
            std::fs::OpenOptions::new()
                .write(true)
                .open(&copy)
                .expect("open for writing")
                .set_len(keep as u64)
                .expect("truncate");
            let (rest, end) = drain(src);
            assert!(rest == want.0[1..], "keep {keep}: frames after the first");
            assert_eq!(end, want.1, "keep {keep}: ending");
        }
    }

    /// gzip is read through its decoder, never mapped.
    #[test]
    fn gzip_is_not_mapped() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("c.pcap.gz");
        let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
        let bytes = std::fs::read(Path::new(CORPUS).join("ndpi__netflix.pcap")).expect("read");
        gz.write_all(&bytes).expect("gzip");
        std::fs::write(&path, gz.finish().expect("gzip")).expect("write");
        let file = std::fs::File::open(&path).expect("open");
        let len = file.metadata().expect("metadata").len();
        assert!(mapped_file(&file, len, 4096).is_none());
    }
}
