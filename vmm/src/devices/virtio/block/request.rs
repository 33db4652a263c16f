//! A virtio-blk request: parsed from a descriptor chain, checked, and carried out on the disk.

use vm_memory::{Address, Bytes, GuestAddress, GuestMemoryMmap};

use super::disk::{DiskFile, SECTOR_SIZE};
use crate::devices::virtio::queue::{Descriptor, DescriptorChain};

/// Request types.
pub const T_IN: u32 = 0;
/// Write.
pub const T_OUT: u32 = 1;
/// Flush.
pub const T_FLUSH: u32 = 4;
/// Device id.
pub const T_GET_ID: u32 = 8;
/// Discard.
pub const T_DISCARD: u32 = 11;
/// Write zeroes.
pub const T_WRITE_ZEROES: u32 = 13;

/// Status: done.
pub const S_OK: u8 = 0;
/// Status: I/O error (also for bad requests and writes to read-only disks).
pub const S_IOERR: u8 = 1;
/// Status: request type not supported.
pub const S_UNSUPP: u8 = 2;

/// Length of the request header.
const HEADER_LEN: u32 = 16;
/// Length of a discard / write-zeroes segment.
const SEGMENT_LEN: u64 = 16;
/// Length of the id string.
pub const ID_LEN: usize = 20;

/// Why a chain is not a well-formed request.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RequestError {
    /// The first buffer is not a readable 16-byte header.
    #[error("the request header is missing, short or device-writable")]
    BadHeader,
    /// The last buffer is not a writable status byte.
    #[error("the status byte is missing or not device-writable")]
    BadStatus,
    /// A data buffer goes the wrong way for the request type.
    #[error("a data buffer has the wrong direction for request type {0}")]
    WrongDirection(u32),
    /// The request reaches past the end of the disk.
    #[error("sectors {sector}+{bytes} bytes reach past the disk's end")]
    OutOfRange {
        /// First sector.
        sector: u64,
        /// Length in bytes.
        bytes: u64,
    },
    /// Guest memory could not be read.
    #[error("guest memory access failed")]
    Memory,
}

/// A parsed request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Request {
    /// The request type.
    pub kind: u32,
    /// The first sector.
    pub sector: u64,
    /// The data buffers.
    pub data: Vec<Descriptor>,
    /// Where the status byte goes.
    pub status: GuestAddress,
}

/// The status descriptor of a chain, if its last buffer can take one.
pub fn status_of(chain: &DescriptorChain) -> Option<GuestAddress> {
    chain
        .descriptors
        .last()
        .filter(|d| d.writable && chain.descriptors.len() >= 2)
        .map(|d| d.addr)
}

impl Request {
    /// Parses and checks a chain.
    pub fn parse(
        chain: &DescriptorChain,
        mem: &GuestMemoryMmap,
        disk_size: u64,
    ) -> Result<Self, RequestError> {
        let descs = &chain.descriptors;
        let header = descs.first().ok_or(RequestError::BadHeader)?;
        if header.writable || header.len < HEADER_LEN {
            return Err(RequestError::BadHeader);
        }
        let status = status_of(chain).ok_or(RequestError::BadStatus)?;
        let kind: u32 = mem
            .read_obj(header.addr)
            .map_err(|_| RequestError::Memory)?;
        let sector: u64 = mem
            .read_obj(header.addr.unchecked_add(8))
            .map_err(|_| RequestError::Memory)?;
        let data = descs[1..descs.len() - 1].to_vec();
        let want_writable = match kind {
            T_IN | T_GET_ID => Some(true),
            T_OUT | T_DISCARD | T_WRITE_ZEROES => Some(false),
            _ => None,
        };
        if let Some(w) = want_writable {
            if data.iter().any(|d| d.writable != w) {
                return Err(RequestError::WrongDirection(kind));
            }
        }
        if matches!(kind, T_IN | T_OUT) {
            let bytes: u64 = data.iter().map(|d| u64::from(d.len)).sum();
            let end = sector
                .checked_mul(SECTOR_SIZE)
                .and_then(|start| start.checked_add(bytes));
            if end.is_none_or(|end| end > disk_size) {
                return Err(RequestError::OutOfRange { sector, bytes });
            }
        }
        Ok(Request {
            kind,
            sector,
            data,
            status,
        })
    }

    /// Bytes of data the request moves (for rate limiting).
    pub fn data_len(&self) -> u64 {
        self.data.iter().map(|d| u64::from(d.len)).sum()
    }

    /// Carries the request out; returns the status and the bytes written into guest buffers
    /// (the status byte included).
    pub fn execute(&self, mem: &GuestMemoryMmap, disk: &DiskFile, id: &[u8; ID_LEN]) -> (u8, u32) {
        let result = match self.kind {
            T_IN => self.read(mem, disk).map(|n| (S_OK, n)),
            T_OUT if disk.read_only() => Ok((S_IOERR, 0)),
            T_OUT => self.write(mem, disk).map(|_| (S_OK, 0)),
            T_FLUSH if disk.read_only() => Ok((S_OK, 0)),
            T_FLUSH => disk.flush().map(|_| (S_OK, 0)),
            T_GET_ID => self.get_id(mem, id),
            T_DISCARD | T_WRITE_ZEROES if disk.read_only() => Ok((S_IOERR, 0)),
            T_DISCARD | T_WRITE_ZEROES => self
                .zero_segments(mem, disk)
                .map(|ok| if ok { (S_OK, 0) } else { (S_IOERR, 0) }),
            _ => Ok((S_UNSUPP, 0)),
        };
        let (status, len) = result.unwrap_or_else(|err| {
            tracing::warn!("virtio-blk request {} failed: {err}", self.kind);
            (S_IOERR, 0)
        });
        (status, len + 1)
    }

    fn read(&self, mem: &GuestMemoryMmap, disk: &DiskFile) -> std::io::Result<u32> {
        let mut offset = self.sector * SECTOR_SIZE;
        for d in &self.data {
            disk.read_into(mem, d.addr, d.len, offset)?;
            offset += u64::from(d.len);
        }
        Ok(self.data_len() as u32)
    }

    fn write(&self, mem: &GuestMemoryMmap, disk: &DiskFile) -> std::io::Result<()> {
        let mut offset = self.sector * SECTOR_SIZE;
        for d in &self.data {
            disk.write_from(mem, d.addr, d.len, offset)?;
            offset += u64::from(d.len);
        }
        Ok(())
    }

    fn get_id(&self, mem: &GuestMemoryMmap, id: &[u8; ID_LEN]) -> std::io::Result<(u8, u32)> {
        let Some(d) = self.data.first() else {
            return Ok((S_IOERR, 0));
        };
        let n = (d.len as usize).min(ID_LEN);
        mem.write_slice(&id[..n], d.addr)
            .map_err(|e| std::io::Error::other(e.to_string()))?;
        Ok((S_OK, n as u32))
    }

    /// Discard and write-zeroes: every segment is punched out. Returns false for a segment
    /// that is malformed or out of range.
    fn zero_segments(&self, mem: &GuestMemoryMmap, disk: &DiskFile) -> std::io::Result<bool> {
        for d in &self.data {
            if u64::from(d.len) % SEGMENT_LEN != 0 {
                return Ok(false);
            }
            for i in 0..u64::from(d.len) / SEGMENT_LEN {
                let at = d.addr.unchecked_add(i * SEGMENT_LEN);
                let (sector, count): (u64, u32) =
                    match (mem.read_obj(at), mem.read_obj(at.unchecked_add(8))) {
                        (Ok(s), Ok(c)) => (s, c),
                        _ => return Ok(false),
                    };
                let len = u64::from(count) * SECTOR_SIZE;
                let start = sector
                    .checked_mul(SECTOR_SIZE)
                    .filter(|s| s.checked_add(len).is_some_and(|end| end <= disk.size()));
                match start {
                    Some(_) if len == 0 => {}
                    Some(s) => disk.punch_hole(s, len)?,
                    None => return Ok(false),
                }
            }
        }
        Ok(true)
    }
}
