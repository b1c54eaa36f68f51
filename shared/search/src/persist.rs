//! The index file: a fixed header, the ids, the code words, and a CRC-32 of all of it.
//! Read fully into memory (no mmap: the workspace denies `unsafe`); the header's count is
//! checked against the file's length before anything is allocated, and the checksum
//! before anything is used, so a truncated or damaged file is an error, never a panic.
//!
//! Layout (little-endian): magic `IMGFSRCH`, version u32, kind u32, bits u32,
//! substrings u32 (0 = chosen from the count), count u64, ids `count x u64`,
//! codes `count x bits/64 x u64`, crc32 u32.

use std::fs::File;
use std::io::{BufReader, BufWriter, Read, Write};
use std::path::{Path, PathBuf};

use crate::SearchError;
use crate::code;

const MAGIC: &[u8; 8] = b"IMGFSRCH";
const VERSION: u32 = 1;
const HEADER: u64 = 32;
const TRAILER: u64 = 4;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Kind {
    Linear = 0,
    Multi = 1,
}

pub(crate) struct Loaded {
    pub bits: u32,
    pub substrings: u32,
    pub ids: Vec<u64>,
    pub codes: Vec<u64>,
}

pub(crate) fn save(
    path: &Path,
    bits: u32,
    kind: Kind,
    substrings: u32,
    ids: &[u64],
    codes: &[u64],
) -> Result<(), SearchError> {
    // Written beside the target and renamed over it, so a crash mid-save leaves the
    // previous file intact.
    let tmp = tmp_path(path);
    let io = |source| SearchError::Io {
        path: tmp.clone(),
        source,
    };
    let file = File::create(&tmp).map_err(io)?;
    let mut out = Crc32Writer {
        inner: BufWriter::with_capacity(1 << 20, file),
        crc: crc32fast::Hasher::new(),
    };
    let mut header = Vec::with_capacity(HEADER as usize);
    header.extend_from_slice(MAGIC);
    header.extend_from_slice(&VERSION.to_le_bytes());
    header.extend_from_slice(&(kind as u32).to_le_bytes());
    header.extend_from_slice(&bits.to_le_bytes());
    header.extend_from_slice(&substrings.to_le_bytes());
    header.extend_from_slice(&(ids.len() as u64).to_le_bytes());
    out.write_all(&header).map_err(io)?;
    write_words(&mut out, ids).map_err(io)?;
    write_words(&mut out, codes).map_err(io)?;
    let crc = out.crc.clone().finalize();
    let mut inner = out.inner;
    inner.write_all(&crc.to_le_bytes()).map_err(io)?;
    let file = inner.into_inner().map_err(|e| io(e.into_error()))?;
    file.sync_all().map_err(io)?;
    std::fs::rename(&tmp, path).map_err(|source| SearchError::Io {
        path: path.to_path_buf(),
        source,
    })
}

pub(crate) fn load(path: &Path) -> Result<Loaded, SearchError> {
    let io = |source| SearchError::Io {
        path: path.to_path_buf(),
        source,
    };
    let bad = |reason: String| SearchError::BadFile {
        path: path.to_path_buf(),
        reason,
    };
    let file = File::open(path).map_err(io)?;
    let file_len = file.metadata().map_err(io)?.len();
    if file_len < HEADER + TRAILER {
        return Err(bad(format!("{file_len} bytes is shorter than the header")));
    }
    let mut input = Crc32Reader {
        inner: BufReader::with_capacity(1 << 20, file),
        crc: crc32fast::Hasher::new(),
    };
    let mut header = [0u8; HEADER as usize];
    input.read_exact(&mut header).map_err(io)?;
    if &header[..8] != MAGIC {
        return Err(bad("not an imgfeat index file (bad magic)".into()));
    }
    let u32_at = |at: usize| {
        u32::from_le_bytes([header[at], header[at + 1], header[at + 2], header[at + 3]])
    };
    let version = u32_at(8);
    if version != VERSION {
        return Err(bad(format!(
            "version {version}, this build reads {VERSION}"
        )));
    }
    let bits = u32_at(16);
    let words = code::words_for(bits).map_err(|e| bad(e.to_string()))? as u64;
    let substrings = u32_at(20);
    let mut count_bytes = [0u8; 8];
    count_bytes.copy_from_slice(&header[24..32]);
    let count = u64::from_le_bytes(count_bytes);
    let expected = count
        .checked_mul(8 * (1 + words))
        .and_then(|body| body.checked_add(HEADER + TRAILER));
    if expected != Some(file_len) {
        return Err(bad(format!(
            "header says {count} codes of {bits} bits but the file has {file_len} bytes (truncated or damaged)"
        )));
    }
    let count =
        usize::try_from(count).map_err(|_| bad("count does not fit this machine".into()))?;
    let ids = read_words(&mut input, count).map_err(io)?;
    let codes = read_words(&mut input, count * words as usize).map_err(io)?;
    let computed = input.crc.clone().finalize();
    let mut stored = [0u8; 4];
    input.inner.read_exact(&mut stored).map_err(io)?;
    if u32::from_le_bytes(stored) != computed {
        return Err(bad("checksum mismatch (damaged file)".into()));
    }
    Ok(Loaded {
        bits,
        substrings,
        ids,
        codes,
    })
}

fn tmp_path(path: &Path) -> PathBuf {
    let mut name = path
        .file_name()
        .map(|n| n.to_os_string())
        .unwrap_or_default();
    name.push(".tmp");
    path.with_file_name(name)
}

fn write_words(out: &mut impl Write, words: &[u64]) -> std::io::Result<()> {
    let mut buf = Vec::with_capacity(64 * 1024);
    for chunk in words.chunks(8 * 1024) {
        buf.clear();
        buf.extend(chunk.iter().flat_map(|w| w.to_le_bytes()));
        out.write_all(&buf)?;
    }
    Ok(())
}

fn read_words(input: &mut impl Read, n: usize) -> std::io::Result<Vec<u64>> {
    let mut words = Vec::with_capacity(n);
    let mut buf = vec![0u8; 64 * 1024];
    let mut left = n;
    while left > 0 {
        let take = left.min(buf.len() / 8);
        let bytes = &mut buf[..take * 8];
        input.read_exact(bytes)?;
        words.extend(bytes.chunks_exact(8).map(|c| {
            let mut b = [0u8; 8];
            b.copy_from_slice(c);
            u64::from_le_bytes(b)
        }));
        left -= take;
    }
    Ok(words)
}

struct Crc32Writer<W> {
    inner: W,
    crc: crc32fast::Hasher,
}

impl<W: Write> Write for Crc32Writer<W> {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        let n = self.inner.write(buf)?;
        self.crc.update(&buf[..n]);
        Ok(n)
    }
    fn flush(&mut self) -> std::io::Result<()> {
        self.inner.flush()
    }
}

struct Crc32Reader<R> {
    inner: R,
    crc: crc32fast::Hasher,
}

impl<R: Read> Read for Crc32Reader<R> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.crc.update(&buf[..n]);
        Ok(n)
    }
}
