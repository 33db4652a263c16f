//! A tap device opened with a virtio-net header on every frame (IFF_VNET_HDR), so frames and
//! their offload metadata pass between the guest and the host kernel unchanged.

use std::fs::{File, OpenOptions};
use std::io::{Read, Write};
use std::os::fd::{AsRawFd, RawFd};
use std::os::unix::fs::OpenOptionsExt;

const TUNSETIFF: libc::c_ulong = 0x4004_54ca;
const TUNSETOFFLOAD: libc::c_ulong = 0x4004_54d0;
const TUNSETVNETHDRSZ: libc::c_ulong = 0x4004_54d8;
const IFF_TAP: libc::c_short = 0x0002;
const IFF_NO_PI: libc::c_short = 0x1000;
const IFF_VNET_HDR: libc::c_short = 0x4000;
/// Offload flag: the reader accepts partial checksums.
pub const TUN_F_CSUM: u32 = 0x01;
/// Offload flag: the reader accepts TCPv4 segmentation offload.
pub const TUN_F_TSO4: u32 = 0x02;
/// Offload flag: the reader accepts TCPv6 segmentation offload.
pub const TUN_F_TSO6: u32 = 0x04;
/// Offload flag: the reader accepts TSO frames with the ECN (CWR) bit set.
pub const TUN_F_TSO_ECN: u32 = 0x08;
/// Length of the virtio-net header (version 1) on every frame.
pub const VNET_HDR_LEN: usize = 12;

#[repr(C)]
struct IfReq {
    name: [u8; libc::IFNAMSIZ],
    flags: libc::c_short,
    _pad: [u8; 22],
}

/// An open tap device.
#[derive(Debug)]
pub struct Tap {
    file: File,
    name: String,
}

fn ioctl(fd: RawFd, request: libc::c_ulong, arg: *const libc::c_void) -> std::io::Result<()> {
    // SAFETY: every caller passes a tap descriptor and an argument of the type the request
    // expects, which lives across the call.
    let rc = unsafe { libc::ioctl(fd, request, arg) };
    if rc < 0 {
        Err(std::io::Error::last_os_error())
    } else {
        Ok(())
    }
}

impl Tap {
    /// Attaches to (or creates) tap `name`, non-blocking, with 12-byte virtio-net headers.
    pub fn open(name: &str) -> std::io::Result<Self> {
        if name.is_empty() || name.len() >= libc::IFNAMSIZ || name.contains(['/', ' ', '\0']) {
            return Err(std::io::Error::new(
                std::io::ErrorKind::InvalidInput,
                format!("tap name {name:?} must be 1 to 15 characters without '/', ' ' or NUL"),
            ));
        }
        let file = OpenOptions::new()
            .read(true)
            .write(true)
            .custom_flags(libc::O_NONBLOCK | libc::O_CLOEXEC)
            .open("/dev/net/tun")?;
        let mut req = IfReq {
            name: [0; libc::IFNAMSIZ],
            flags: IFF_TAP | IFF_NO_PI | IFF_VNET_HDR,
            _pad: [0; 22],
        };
        req.name[..name.len()].copy_from_slice(name.as_bytes());
        ioctl(file.as_raw_fd(), TUNSETIFF, (&raw const req).cast())?;
        let hdr_len: libc::c_int = VNET_HDR_LEN as libc::c_int;
        ioctl(
            file.as_raw_fd(),
            TUNSETVNETHDRSZ,
            (&raw const hdr_len).cast(),
        )?;
        Ok(Tap {
            file,
            name: name.to_owned(),
        })
    }

    /// The interface name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// Tells the kernel which offloads frames it hands us may use (`TUN_F_*`).
    pub fn set_offload(&self, flags: u32) -> std::io::Result<()> {
        // TUNSETOFFLOAD takes the flags by value.
        ioctl(
            self.file.as_raw_fd(),
            TUNSETOFFLOAD,
            flags as usize as *const libc::c_void,
        )
    }

    /// Reads one frame (header included); `WouldBlock` when there is none.
    pub fn read_frame(&self, buf: &mut [u8]) -> std::io::Result<usize> {
        (&self.file).read(buf)
    }

    /// Reads one frame (header included) into the buffers of `iov`; returns the frame's whole
    /// length, which is more than the buffers hold when the kernel had to cut it short.
    /// `WouldBlock` when there is none.
    pub fn read_frame_vectored(&self, iov: &[libc::iovec]) -> std::io::Result<usize> {
        let count = libc::c_int::try_from(iov.len()).map_err(std::io::Error::other)?;
        // SAFETY: every iovec points at memory that is mapped and writable for its length
        // (guest memory, see `io::IoVecs`), and stays so for the call.
        let n = unsafe { libc::readv(self.file.as_raw_fd(), iov.as_ptr(), count) };
        usize::try_from(n).map_err(|_| std::io::Error::last_os_error())
    }

    /// Sends one frame (header included) gathered from the buffers of `iov`.
    pub fn write_frame_vectored(&self, iov: &[libc::iovec], len: usize) -> std::io::Result<()> {
        let count = libc::c_int::try_from(iov.len()).map_err(std::io::Error::other)?;
        // SAFETY: every iovec points at memory that is mapped and readable for its length
        // (guest memory, see `io::IoVecs`), and stays so for the call.
        let n = unsafe { libc::writev(self.file.as_raw_fd(), iov.as_ptr(), count) };
        match usize::try_from(n) {
            Err(_) => Err(std::io::Error::last_os_error()),
            Ok(n) if n != len => Err(std::io::Error::other("short write to tap")),
            Ok(_) => Ok(()),
        }
    }

    /// Sends one frame (header included).
    pub fn write_frame(&self, frame: &[u8]) -> std::io::Result<()> {
        let n = (&self.file).write(frame)?;
        if n != frame.len() {
            return Err(std::io::Error::other("short write to tap"));
        }
        Ok(())
    }
}

impl AsRawFd for Tap {
    fn as_raw_fd(&self) -> RawFd {
        self.file.as_raw_fd()
    }
}
