//! The bytes on disk: segment headers, record frames, and a cursor that reads and verifies records.
//!
//! Segment: `SEGMENT_MAGIC` (8 bytes) + first idx (u64 LE), then records back to back. Record (all integers
//! little-endian): payload length `u32` | idx `u64` | CRC32C of the payload `u32` | CRC32C of the 16 bytes before
//! `u32` | payload. The header has its own CRC so that a damaged length is never mistaken for a torn tail.
//! See `docs/log-format.md`.

use std::fs::File;
use std::io::{self, BufReader, Read, Seek, SeekFrom};
use std::path::{Path, PathBuf};

/// The first 8 bytes of every segment file; the last byte is the format version.
pub const SEGMENT_MAGIC: [u8; 8] = *b"CSEVLOG\x01";
/// Segment header: magic + first idx.
pub const SEGMENT_HEADER: u64 = 16;
/// Record header: length, idx, payload CRC, header CRC.
pub const RECORD_HEADER: usize = 20;
/// Payloads longer than this are refused on append and treated as damage on read.
pub const MAX_PAYLOAD: u32 = 64 << 20;

/// The segment header of a segment whose first record is `first_idx`.
pub fn segment_header(first_idx: u64) -> [u8; 16] {
    let mut header = [0u8; 16];
    header[..8].copy_from_slice(&SEGMENT_MAGIC);
    header[8..].copy_from_slice(&first_idx.to_le_bytes());
    header
}

/// The file name of the segment starting at `first_idx`: 20 digits, so names sort like indexes.
pub fn segment_name(first_idx: u64) -> String {
    format!("{first_idx:020}.seg")
}

/// The first idx a segment file name encodes, if it is a segment name.
pub fn parse_segment_name(name: &str) -> Option<u64> {
    let digits = name.strip_suffix(".seg")?;
    if digits.len() != 20 || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    digits.parse().ok()
}

/// Append the frame of one record (header + payload) to `out`.
pub fn frame_record(out: &mut Vec<u8>, idx: u64, payload: &[u8]) {
    let start = out.len();
    begin_frame(out);
    out.extend_from_slice(payload);
    end_frame(out, start, idx);
}

/// Start a frame at the end of `out`: room for its header, to be filled by [`end_frame`] once the payload follows.
pub fn begin_frame(out: &mut Vec<u8>) {
    out.extend_from_slice(&[0; RECORD_HEADER]);
}

/// Fill in the header of the frame that starts at `start`, whose payload is the rest of `out`.
pub fn end_frame(out: &mut [u8], start: usize, idx: u64) {
    let (header, payload) = out[start..].split_at_mut(RECORD_HEADER);
    let len = u32::try_from(payload.len()).unwrap_or(u32::MAX);
    header[..4].copy_from_slice(&len.to_le_bytes());
    header[4..12].copy_from_slice(&idx.to_le_bytes());
    header[12..16].copy_from_slice(&crc32c::crc32c(payload).to_le_bytes());
    let header_crc = crc32c::crc32c(&header[..16]);
    header[16..].copy_from_slice(&header_crc.to_le_bytes());
}

/// What is wrong with the record at an offset.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Damage {
    /// The file ends inside the record: its header or payload is incomplete.
    Incomplete,
    /// The header's CRC does not match.
    HeaderChecksum,
    /// The header is valid but claims a payload longer than [`MAX_PAYLOAD`].
    TooLong,
    /// The payload's CRC does not match; the record would end at `end`.
    PayloadChecksum {
        /// The offset just past the record.
        end: u64,
    },
    /// A valid record with the wrong idx.
    WrongIndex {
        /// The idx the record carries.
        got: u64,
    },
}

impl Damage {
    /// A human description, given the idx that was expected.
    pub fn describe(self, expected: u64) -> String {
        match self {
            Self::Incomplete => "the record is incomplete (the file ends inside it)".to_owned(),
            Self::HeaderChecksum => "record header checksum mismatch".to_owned(),
            Self::TooLong => format!("record length is over the {MAX_PAYLOAD}-byte limit"),
            Self::PayloadChecksum { .. } => "record payload checksum mismatch".to_owned(),
            Self::WrongIndex { got } => format!("record carries idx {got}, expected {expected}"),
        }
    }
}

/// One step of a [`Cursor`].
#[derive(Debug, PartialEq, Eq)]
pub enum Step {
    /// A valid record: its idx and offset; the payload is in the buffer passed to [`Cursor::next`].
    Record {
        /// Its idx.
        idx: u64,
        /// Its byte offset in the segment.
        offset: u64,
    },
    /// The end of the readable part of the segment.
    End,
    /// A damaged record at `offset`.
    Bad {
        /// Its byte offset in the segment.
        offset: u64,
        /// What is wrong.
        damage: Damage,
    },
}

/// Reads a segment's records in order, checking both CRCs and that the indexes follow each other.
pub struct Cursor {
    reader: BufReader<File>,
    path: PathBuf,
    offset: u64,
    end: u64,
    next_idx: u64,
}

impl Cursor {
    /// A cursor at `offset` of `file` (the record there must carry `next_idx`), reading up to byte `end`.
    pub fn new(file: File, path: &Path, offset: u64, end: u64, next_idx: u64) -> io::Result<Self> {
        let mut reader = BufReader::with_capacity(256 << 10, file);
        reader.seek(SeekFrom::Start(offset))?;
        Ok(Self {
            reader,
            path: path.to_owned(),
            offset,
            end,
            next_idx,
        })
    }

    /// The segment file.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The offset of the next record.
    pub fn offset(&self) -> u64 {
        self.offset
    }

    /// The idx the next record must carry.
    pub fn next_idx(&self) -> u64 {
        self.next_idx
    }

    /// Skip the next record without checking its payload CRC (the header's CRC is checked). Used to seek from a
    /// sparse-index entry to the wanted idx.
    pub fn skip(&mut self) -> io::Result<Step> {
        self.step(None)
    }

    /// Read the next record's payload into `payload`.
    pub fn next(&mut self, payload: &mut Vec<u8>) -> io::Result<Step> {
        self.step(Some(payload))
    }

    fn step(&mut self, payload: Option<&mut Vec<u8>>) -> io::Result<Step> {
        let offset = self.offset;
        if offset >= self.end {
            return Ok(Step::End);
        }
        let bad = |damage| Ok(Step::Bad { offset, damage });
        let remaining = self.end - offset;
        if remaining < RECORD_HEADER as u64 {
            return bad(Damage::Incomplete);
        }
        let mut header = [0u8; RECORD_HEADER];
        self.reader.read_exact(&mut header)?;
        let len = u32::from_le_bytes([header[0], header[1], header[2], header[3]]);
        let mut idx_bytes = [0u8; 8];
        idx_bytes.copy_from_slice(&header[4..12]);
        let idx = u64::from_le_bytes(idx_bytes);
        let payload_crc = u32::from_le_bytes([header[12], header[13], header[14], header[15]]);
        let header_crc = u32::from_le_bytes([header[16], header[17], header[18], header[19]]);
        if crc32c::crc32c(&header[..16]) != header_crc {
            return bad(Damage::HeaderChecksum);
        }
        if len > MAX_PAYLOAD {
            return bad(Damage::TooLong);
        }
        let end = offset + RECORD_HEADER as u64 + u64::from(len);
        if end > self.end {
            return bad(Damage::Incomplete);
        }
        match payload {
            Some(buffer) => {
                buffer.clear();
                buffer.resize(len as usize, 0);
                self.reader.read_exact(buffer)?;
                if crc32c::crc32c(buffer) != payload_crc {
                    return bad(Damage::PayloadChecksum { end });
                }
            }
            None => self.reader.seek_relative(i64::from(len))?,
        }
        if idx != self.next_idx {
            return bad(Damage::WrongIndex { got: idx });
        }
        self.offset = end;
        self.next_idx += 1;
        Ok(Step::Record { idx, offset })
    }
}

/// Whether every byte of `file` from `offset` to its end is zero (a tail that a crash left unwritten).
pub fn zeros_from(file: &mut File, offset: u64) -> io::Result<bool> {
    file.seek(SeekFrom::Start(offset))?;
    let mut buffer = vec![0u8; 64 << 10];
    loop {
        let read = file.read(&mut buffer)?;
        if read == 0 {
            return Ok(true);
        }
        if buffer.iter().take(read).any(|&b| b != 0) {
            return Ok(false);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_sort_like_indexes() {
        assert_eq!(segment_name(42), "00000000000000000042.seg");
        assert_eq!(parse_segment_name("00000000000000000042.seg"), Some(42));
        assert_eq!(parse_segment_name("0042.seg"), None);
        assert_eq!(parse_segment_name("0000000000000000004x.seg"), None);
        assert_eq!(parse_segment_name(&segment_name(u64::MAX)), Some(u64::MAX));
    }

    #[test]
    fn frame_layout() {
        let mut out = Vec::new();
        frame_record(&mut out, 7, b"{}");
        assert_eq!(out.len(), RECORD_HEADER + 2);
        assert_eq!(&out[..4], &2u32.to_le_bytes());
        assert_eq!(&out[4..12], &7u64.to_le_bytes());
        assert_eq!(&out[12..16], &crc32c::crc32c(b"{}").to_le_bytes());
        assert_eq!(&out[16..20], &crc32c::crc32c(&out[..16]).to_le_bytes());
    }
}
