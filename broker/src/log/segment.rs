//! Segment files: naming, positioned reads, and walking the batch headers of a `.log`.
//!
//! A segment is the `.log` file of batches starting at its base offset, plus its two
//! index files (see `index`). Reads use `pread` (`FileExt::read_exact_at`) on a shared
//! file handle, so any number of readers proceed at once and alongside the appender; the
//! handle is kept by the data directory's `fd_cache` and reopened by path when closed. A
//! segment compaction replaces or retention deletes is first *retired* (kept open), so it
//! stays readable to readers holding it.

use std::fs::File;
use std::io;
use std::os::unix::fs::{FileExt, MetadataExt};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::Ordering;

use bytes::Bytes;

use super::LogError;
use super::batch::BatchHeader;
use super::fd_cache::{FdCache, Slot};

/// Suffix of segment data files.
pub(crate) const LOG_SUFFIX: &str = "log";
/// Suffix of sparse offset index files.
pub(crate) const INDEX_SUFFIX: &str = "index";
/// Suffix of sparse time index files.
pub(crate) const TIME_INDEX_SUFFIX: &str = "timeindex";
/// Suffix appended to a file while compaction writes its replacement.
pub(crate) const CLEANED_SUFFIX: &str = "cleaned";

/// `<dir>/<base offset, 20 digits>.<suffix>`.
pub(crate) fn file_path(dir: &Path, base_offset: i64, suffix: &str) -> PathBuf {
    dir.join(format!("{base_offset:020}.{suffix}"))
}

/// Splits a file name like `00000000000000000042.log` into (42, "log").
pub(crate) fn parse_file_name(name: &str) -> Option<(i64, &str)> {
    let (stem, suffix) = name.split_once('.')?;
    if stem.len() != 20 || !stem.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    Some((stem.parse().ok()?, suffix))
}

/// A `.log` file, shared between the appender and readers, kept open by the data
/// directory's [`FdCache`] and reopened by path when the cache closed it.
#[derive(Debug)]
pub(crate) struct SegmentFile {
    pub(crate) base_offset: i64,
    pub(crate) path: PathBuf,
    /// Device and inode of the file, to tell whether `path` still names it.
    identity: (u64, u64),
    fds: Arc<FdCache>,
    id: u64,
    slot: Arc<Slot>,
}

impl SegmentFile {
    /// Wraps an open file that `path` names (or will name, once a compaction's output is
    /// renamed into place: a rename keeps the inode).
    pub(crate) fn new(
        fds: &Arc<FdCache>,
        base_offset: i64,
        path: PathBuf,
        file: File,
    ) -> Result<Self, LogError> {
        let meta = file.metadata().map_err(|e| LogError::io(&path, e))?;
        let (id, slot) = fds.register(Some(file));
        Ok(SegmentFile {
            base_offset,
            identity: (meta.dev(), meta.ino()),
            path,
            fds: Arc::clone(fds),
            id,
            slot,
        })
    }

    /// The existing file at `path`, not opened until first used (a restart then opens
    /// only the segments that are read or written).
    pub(crate) fn at_path(
        fds: &Arc<FdCache>,
        base_offset: i64,
        path: PathBuf,
    ) -> Result<Self, LogError> {
        let meta = std::fs::metadata(&path).map_err(|e| LogError::io(&path, e))?;
        let (id, slot) = fds.register(None);
        Ok(SegmentFile {
            base_offset,
            identity: (meta.dev(), meta.ino()),
            path,
            fds: Arc::clone(fds),
            id,
            slot,
        })
    }

    /// The cache this file's descriptor is kept in.
    pub(crate) fn fds(&self) -> &Arc<FdCache> {
        &self.fds
    }

    /// The open file, reopened by path if the cache closed it; a path that no longer
    /// leads to the same file is an error, never another file's bytes.
    fn handle(&self) -> io::Result<Arc<File>> {
        if let Some(f) = self.fds.get(&self.slot) {
            return Ok(f);
        }
        let file = File::options().read(true).write(true).open(&self.path)?;
        let meta = file.metadata()?;
        if (meta.dev(), meta.ino()) != self.identity {
            return Err(io::Error::other("the segment was replaced by another file"));
        }
        Ok(self.fds.fill(&self.slot, file))
    }

    /// Writes all of `buf` at `pos`; the file stays open until its next fsync.
    pub(crate) fn write_all_at(&self, buf: &[u8], pos: u64) -> io::Result<()> {
        self.slot.dirty.store(true, Ordering::Release);
        self.handle()?.write_all_at(buf, pos)
    }

    /// Cuts (or extends) the file to `len` bytes.
    pub(crate) fn set_len(&self, len: u64) -> io::Result<()> {
        self.slot.dirty.store(true, Ordering::Release);
        self.handle()?.set_len(len)
    }

    /// fsyncs the file's data.
    pub(crate) fn sync_data(&self) -> io::Result<()> {
        let dirty = self.slot.dirty.swap(false, Ordering::AcqRel);
        let result = self.handle().and_then(|f| f.sync_data());
        if result.is_err() && dirty {
            self.slot.dirty.store(true, Ordering::Release);
        }
        result
    }

    /// fsyncs the file's data and metadata.
    pub(crate) fn sync_all(&self) -> io::Result<()> {
        self.sync_data()?;
        self.handle()?.sync_all()
    }

    /// Keeps the file open for as long as this handle lives: called before compaction
    /// renames another file over its path or retention deletes it, so that readers that
    /// found the segment go on reading it.
    pub(crate) fn retire(&self) -> Result<(), LogError> {
        self.handle().map_err(|e| LogError::io(&self.path, e))?;
        self.slot.pinned.store(true, Ordering::Release);
        Ok(())
    }

    /// `Err` with what happened when the path no longer names the open file: it was
    /// deleted, or replaced by another file. Writes to it would be lost at the next start.
    pub(crate) fn check_still_at_path(&self) -> Result<(), String> {
        match std::fs::metadata(&self.path) {
            Ok(m) if (m.dev(), m.ino()) == self.identity => Ok(()),
            Ok(_) => Err(format!(
                "{} was replaced by another file",
                self.path.display()
            )),
            Err(e) if e.kind() == io::ErrorKind::NotFound => {
                Err(format!("{} was deleted", self.path.display()))
            }
            // Anything else (EACCES on the directory, EIO) says nothing about the file
            // having been replaced; the writes themselves report real I/O failures.
            Err(_) => Ok(()),
        }
    }

    /// Reads exactly `buf.len()` bytes at `pos`.
    pub(crate) fn read_at(&self, buf: &mut [u8], pos: u64) -> Result<(), LogError> {
        self.handle()
            .and_then(|f| f.read_exact_at(buf, pos))
            .map_err(|e| LogError::io(&self.path, e))
    }
}

impl Drop for SegmentFile {
    fn drop(&mut self) {
        self.fds.release(self.id, &self.slot);
    }
}

/// What the walk of a segment's batch headers found at one position.
#[derive(Debug, Clone, Copy)]
pub(crate) struct ScannedBatch {
    pub(crate) position: u64,
    pub(crate) header: BatchHeader,
}

/// Walks batch headers from a position up to an end, reading the file in chunks so that
/// small batches cost no syscall each and large ones are skipped without being read.
pub(crate) struct HeaderScanner<'a> {
    seg: &'a SegmentFile,
    pos: u64,
    end: u64,
    chunk: Vec<u8>,
    chunk_pos: u64,
}

/// Bytes read per chunk while walking headers.
const SCAN_CHUNK: usize = 8 * 1024;

impl<'a> HeaderScanner<'a> {
    pub(crate) fn new(seg: &'a SegmentFile, pos: u64, end: u64) -> Self {
        HeaderScanner {
            seg,
            pos,
            end,
            chunk: Vec::new(),
            chunk_pos: 0,
        }
    }

    /// Position of the next header to read.
    pub(crate) fn position(&self) -> u64 {
        self.pos
    }

    /// The next header, or `Ok(None)` at the end or when what follows is not a whole,
    /// plausible batch (a torn or damaged tail: the caller decides what to do).
    pub(crate) fn next_header(&mut self) -> Result<Option<ScannedBatch>, LogError> {
        if self.pos + BatchHeader::SIZE as u64 > self.end {
            return Ok(None);
        }
        let in_chunk = self.pos >= self.chunk_pos
            && self.pos + BatchHeader::SIZE as u64 <= self.chunk_pos + self.chunk.len() as u64;
        if !in_chunk {
            let len = (self.end - self.pos).min(SCAN_CHUNK as u64) as usize;
            self.chunk.resize(len, 0);
            self.seg.read_at(&mut self.chunk, self.pos)?;
            self.chunk_pos = self.pos;
        }
        let at = (self.pos - self.chunk_pos) as usize;
        let Some(header) = BatchHeader::parse(&self.chunk[at..]) else {
            return Ok(None);
        };
        if header.check_shape().is_err() || self.pos + header.total_size() as u64 > self.end {
            return Ok(None);
        }
        let found = ScannedBatch {
            position: self.pos,
            header,
        };
        self.pos += header.total_size() as u64;
        Ok(Some(found))
    }
}

/// Reads whole batches in order from a position up to an end, a chunk at a time; each
/// batch comes as a cheap slice of its chunk. Stops at the first batch that is not whole
/// and plausible.
pub(crate) struct BatchReader<'a> {
    seg: &'a SegmentFile,
    pos: u64,
    end: u64,
    chunk: Bytes,
    chunk_pos: u64,
}

/// Bytes read per chunk by [`BatchReader`].
const READ_CHUNK: usize = 1024 * 1024;

impl<'a> BatchReader<'a> {
    pub(crate) fn new(seg: &'a SegmentFile, pos: u64, end: u64) -> Self {
        BatchReader {
            seg,
            pos,
            end,
            chunk: Bytes::new(),
            chunk_pos: pos,
        }
    }

    /// The next batch: its position, header and bytes.
    pub(crate) fn next_batch(&mut self) -> Result<Option<(u64, BatchHeader, Bytes)>, LogError> {
        if self.pos + BatchHeader::SIZE as u64 > self.end {
            return Ok(None);
        }
        let mut rel = (self.pos - self.chunk_pos) as usize;
        if rel + BatchHeader::SIZE > self.chunk.len() {
            self.fill(READ_CHUNK)?;
            rel = 0;
        }
        let Some(header) = BatchHeader::parse(&self.chunk[rel..]) else {
            return Ok(None);
        };
        let size = header.total_size();
        if header.check_shape().is_err() || self.pos + size as u64 > self.end {
            return Ok(None);
        }
        if rel + size > self.chunk.len() {
            self.fill(READ_CHUNK.max(size))?;
            rel = 0;
        }
        let at = self.pos;
        self.pos += size as u64;
        Ok(Some((at, header, self.chunk.slice(rel..rel + size))))
    }

    fn fill(&mut self, want: usize) -> Result<(), LogError> {
        let n = (self.end - self.pos).min(want as u64) as usize;
        let mut buf = vec![0u8; n];
        self.seg.read_at(&mut buf, self.pos)?;
        self.chunk = Bytes::from(buf);
        self.chunk_pos = self.pos;
        Ok(())
    }
}

/// Opens a file for reading and writing, creating it when missing.
pub(crate) fn open_rw(path: &Path) -> Result<File, LogError> {
    File::options()
        .read(true)
        .write(true)
        .create(true)
        .truncate(false)
        .open(path)
        .map_err(|e| LogError::io(path, e))
}

/// Writes `data` to `path` replacing it atomically (temp file, fsync, rename).
pub(crate) fn write_atomically(path: &Path, data: &[u8]) -> Result<(), LogError> {
    let mut tmp = path.as_os_str().to_owned();
    tmp.push(".tmp");
    let tmp = PathBuf::from(tmp);
    let file = File::create(&tmp).map_err(|e| LogError::io(&tmp, e))?;
    file.write_all_at(data, 0)
        .and_then(|_| file.sync_all())
        .map_err(|e| LogError::io(&tmp, e))?;
    std::fs::rename(&tmp, path).map_err(|e| LogError::io(path, e))
}

/// fsyncs a directory so that files created, renamed or removed in it stay so.
pub(crate) fn sync_dir(dir: &Path) -> Result<(), LogError> {
    File::open(dir)
        .and_then(|d| d.sync_all())
        .map_err(|e| LogError::io(dir, e))
}

/// Removes a file, treating "already gone" as done.
pub(crate) fn remove_file(path: &Path) -> Result<(), LogError> {
    match std::fs::remove_file(path) {
        Err(e) if e.kind() != io::ErrorKind::NotFound => Err(LogError::io(path, e)),
        _ => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn file_names_round_trip_with_twenty_digits() {
        let p = file_path(Path::new("/d"), 42, LOG_SUFFIX);
        assert_eq!(p, Path::new("/d/00000000000000000042.log"));
        assert_eq!(
            parse_file_name("00000000000000000042.timeindex"),
            Some((42, "timeindex"))
        );
        assert_eq!(parse_file_name("42.log"), None);
        assert_eq!(parse_file_name("0000000000000000004x.log"), None);
        assert_eq!(parse_file_name("notes.txt"), None);
    }
}
