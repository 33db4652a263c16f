//! Packet sockets on one tap: what the DHCP server and the reachability check read the
//! guest's frames with and write their own frames to it by. Bound with `ETH_P_ALL`, because
//! only such sockets see a bridge port's frames before the bridge takes them; a classic BPF
//! filter keeps just the frames the caller wants.

use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};

/// The interface index of `name` in the calling thread's network namespace.
pub fn ifindex(name: &str) -> std::io::Result<u32> {
    let c = std::ffi::CString::new(name)
        .map_err(|_| std::io::Error::from(std::io::ErrorKind::InvalidInput))?;
    // SAFETY: `c` is a valid NUL-terminated string for the call's duration.
    let index = unsafe { libc::if_nametoindex(c.as_ptr()) };
    if index == 0 {
        Err(std::io::Error::last_os_error())
    } else {
        Ok(index)
    }
}

/// A non-blocking packet socket bound to `tap` (in the calling thread's namespace) that
/// passes only the frames `filter` accepts.
pub fn open(tap: &str, filter: &[libc::sock_filter]) -> std::io::Result<OwnedFd> {
    open_on(ifindex(tap)?, filter)
}

/// A non-blocking packet socket on every interface of the calling thread's namespace that
/// passes only the frames `filter` accepts; it writes with [`send_frame_to`].
pub fn open_unbound(filter: &[libc::sock_filter]) -> std::io::Result<OwnedFd> {
    open_on(0, filter)
}

/// A packet socket bound to interface `index` (0: all of them) with `filter`.
fn open_on(index: u32, filter: &[libc::sock_filter]) -> std::io::Result<OwnedFd> {
    let protocol = (libc::ETH_P_ALL as u16).to_be();
    // SAFETY: plain socket creation; the descriptor is owned at once below.
    let raw = unsafe {
        libc::socket(
            libc::AF_PACKET,
            libc::SOCK_RAW | libc::SOCK_CLOEXEC | libc::SOCK_NONBLOCK,
            i32::from(protocol),
        )
    };
    if raw < 0 {
        return Err(std::io::Error::last_os_error());
    }
    // SAFETY: `raw` is a fresh descriptor nothing else owns.
    let fd = unsafe { OwnedFd::from_raw_fd(raw) };
    let len = u16::try_from(filter.len())
        .map_err(|_| std::io::Error::from(std::io::ErrorKind::InvalidInput))?;
    let fprog = libc::sock_fprog {
        len,
        filter: filter.as_ptr().cast_mut(),
    };
    // SAFETY: `fprog` points at `filter`, which outlives the call; the kernel copies it.
    let rc = unsafe {
        libc::setsockopt(
            fd.as_raw_fd(),
            libc::SOL_SOCKET,
            libc::SO_ATTACH_FILTER,
            (&raw const fprog).cast(),
            std::mem::size_of::<libc::sock_fprog>() as libc::socklen_t,
        )
    };
    if rc != 0 {
        return Err(std::io::Error::last_os_error());
    }
    // SAFETY: an all-zero sockaddr_ll is valid; the fields that matter are set below.
    let mut addr: libc::sockaddr_ll = unsafe { std::mem::zeroed() };
    addr.sll_family = libc::AF_PACKET as u16;
    addr.sll_protocol = protocol;
    addr.sll_ifindex = index as i32;
    // SAFETY: `addr` is a valid sockaddr_ll of the size given.
    let rc = unsafe {
        libc::bind(
            fd.as_raw_fd(),
            (&raw const addr).cast(),
            std::mem::size_of::<libc::sockaddr_ll>() as libc::socklen_t,
        )
    };
    if rc != 0 {
        return Err(std::io::Error::last_os_error());
    }
    Ok(fd)
}

/// Receives one frame; `None` for frames the host itself sent out of the tap.
pub fn recv_frame(fd: &OwnedFd, buf: &mut [u8]) -> std::io::Result<Option<usize>> {
    // SAFETY: an all-zero sockaddr_ll is valid for the kernel to fill.
    let mut from: libc::sockaddr_ll = unsafe { std::mem::zeroed() };
    let mut len = std::mem::size_of::<libc::sockaddr_ll>() as libc::socklen_t;
    // SAFETY: `buf` and `from` are valid for writes of the sizes given.
    let n = unsafe {
        libc::recvfrom(
            fd.as_raw_fd(),
            buf.as_mut_ptr().cast(),
            buf.len(),
            0,
            (&raw mut from).cast(),
            &mut len,
        )
    };
    if n < 0 {
        return Err(std::io::Error::last_os_error());
    }
    Ok((from.sll_pkttype != libc::PACKET_OUTGOING).then_some(n as usize))
}

/// Writes `frame` out of interface `ifindex` (a tap: to its guest).
pub fn send_frame_to(fd: &OwnedFd, ifindex: u32, frame: &[u8]) -> std::io::Result<()> {
    // SAFETY: an all-zero sockaddr_ll is valid; the fields that matter are set below.
    let mut to: libc::sockaddr_ll = unsafe { std::mem::zeroed() };
    to.sll_family = libc::AF_PACKET as u16;
    to.sll_protocol = (libc::ETH_P_ALL as u16).to_be();
    to.sll_ifindex = ifindex as i32;
    to.sll_halen = 6;
    if let Some(dst) = frame.get(..6) {
        to.sll_addr[..6].copy_from_slice(dst);
    }
    // SAFETY: `frame` is valid for reads of its length and `to` is a valid sockaddr_ll.
    let n = unsafe {
        libc::sendto(
            fd.as_raw_fd(),
            frame.as_ptr().cast(),
            frame.len(),
            0,
            (&raw const to).cast(),
            std::mem::size_of::<libc::sockaddr_ll>() as libc::socklen_t,
        )
    };
    if n < 0 {
        Err(std::io::Error::last_os_error())
    } else {
        Ok(())
    }
}

/// Writes `frame` out of the tap the socket is bound to (to the guest).
pub fn send_frame(fd: &OwnedFd, frame: &[u8]) -> std::io::Result<()> {
    // SAFETY: `frame` is valid for reads of its length; the socket is bound to the tap.
    let n = unsafe { libc::send(fd.as_raw_fd(), frame.as_ptr().cast(), frame.len(), 0) };
    if n < 0 {
        Err(std::io::Error::last_os_error())
    } else {
        Ok(())
    }
}
