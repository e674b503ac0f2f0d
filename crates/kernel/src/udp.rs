//! Many UDP datagrams per system call: `recvmmsg` and `sendmmsg` on a socket the caller owns.
//!
//! A busy UDP server spends much of each query entering and leaving the kernel; with these
//! it pays that once per batch. Both take at most [`MAX_BATCH`] datagrams per call and
//! build their message headers on the stack, so nothing is allocated.

use std::io;
use std::mem::{size_of, zeroed};
use std::net::{Ipv4Addr, Ipv6Addr, SocketAddr, SocketAddrV4, SocketAddrV6};
use std::os::fd::{AsRawFd, BorrowedFd};

/// Most datagrams one [`recv_many`] or [`send_many`] call handles.
pub const MAX_BATCH: usize = 64;

/// One datagram received by [`recv_many`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Received {
    /// Bytes stored in the buffer (a longer datagram is cut to the buffer's size).
    pub len: usize,
    /// The sender; `None` when the kernel reported no address (a socket shut down for
    /// reading returns empty messages without one).
    pub peer: Option<SocketAddr>,
}

/// Receives up to `min(bufs.len(), meta.len(), MAX_BATCH)` datagrams on `fd` with one
/// `recvmmsg(MSG_WAITFORONE)`: it waits for the first as a `recv` on the socket would
/// (blocking mode and `SO_RCVTIMEO` apply), then takes the ones already queued without
/// waiting. Returns how many were received; datagram `i` is in `bufs[i]`, described by
/// `meta[i]`.
pub fn recv_many<B: AsMut<[u8]>>(
    fd: BorrowedFd<'_>,
    bufs: &mut [B],
    meta: &mut [Received],
) -> io::Result<usize> {
    let n = bufs.len().min(meta.len()).min(MAX_BATCH);
    if n == 0 {
        return Ok(0);
    }
    // SAFETY: sockaddr_in6 is plain data; all zero is a valid (unspecified) value.
    let mut names: [libc::sockaddr_in6; MAX_BATCH] = unsafe { zeroed() };
    // SAFETY: iovec is plain data (a null pointer and a zero length).
    let mut iovs: [libc::iovec; MAX_BATCH] = unsafe { zeroed() };
    // SAFETY: mmsghdr is plain data (null pointers and zero lengths).
    let mut hdrs: [libc::mmsghdr; MAX_BATCH] = unsafe { zeroed() };
    for i in 0..n {
        let b = bufs[i].as_mut();
        iovs[i] = libc::iovec {
            iov_base: b.as_mut_ptr().cast(),
            iov_len: b.len(),
        };
        let h = &mut hdrs[i].msg_hdr;
        h.msg_name = (&raw mut names[i]).cast();
        h.msg_namelen = size_of::<libc::sockaddr_in6>() as libc::socklen_t;
        h.msg_iov = &raw mut iovs[i];
        h.msg_iovlen = 1;
    }
    // SAFETY: the first `n` headers point at `names[i]` (writable, msg_namelen bytes) and at
    // `iovs[i]`, each describing the writable buffer `bufs[i]`; all of them outlive the call,
    // and the kernel writes no more than those lengths. No timeout pointer is passed.
    let rc = unsafe {
        libc::recvmmsg(
            fd.as_raw_fd(),
            hdrs.as_mut_ptr(),
            n as libc::c_uint,
            libc::MSG_WAITFORONE,
            std::ptr::null_mut(),
        )
    };
    if rc < 0 {
        return Err(io::Error::last_os_error());
    }
    let got = rc as usize;
    for i in 0..got {
        let h = &hdrs[i];
        meta[i] = Received {
            len: (h.msg_len as usize).min(iovs[i].iov_len),
            peer: peer(&names[i], h.msg_hdr.msg_namelen),
        };
    }
    Ok(got)
}

/// Sends up to `MAX_BATCH` datagrams `(payload, destination)` on `fd` with one `sendmmsg`.
/// Returns how many were sent: fewer than given when the kernel stopped early (for
/// example a full send buffer on a non-blocking socket); an error only if none was sent.
pub fn send_many<B: AsRef<[u8]>>(
    fd: BorrowedFd<'_>,
    msgs: &[(B, SocketAddr)],
) -> io::Result<usize> {
    let n = msgs.len().min(MAX_BATCH);
    if n == 0 {
        return Ok(0);
    }
    // SAFETY: as in recv_many: plain data, all zero is valid.
    let mut names: [libc::sockaddr_in6; MAX_BATCH] = unsafe { zeroed() };
    // SAFETY: as above.
    let mut iovs: [libc::iovec; MAX_BATCH] = unsafe { zeroed() };
    // SAFETY: as above.
    let mut hdrs: [libc::mmsghdr; MAX_BATCH] = unsafe { zeroed() };
    for (i, (payload, to)) in msgs.iter().take(n).enumerate() {
        let b = payload.as_ref();
        iovs[i] = libc::iovec {
            iov_base: b.as_ptr().cast_mut().cast(),
            iov_len: b.len(),
        };
        let len = put_sockaddr(&mut names[i], to);
        let h = &mut hdrs[i].msg_hdr;
        h.msg_name = (&raw mut names[i]).cast();
        h.msg_namelen = len;
        h.msg_iov = &raw mut iovs[i];
        h.msg_iovlen = 1;
    }
    // SAFETY: the first `n` headers point at initialised addresses of msg_namelen bytes and
    // at iovecs describing the payloads, which the kernel only reads; all outlive the call.
    let rc = unsafe { libc::sendmmsg(fd.as_raw_fd(), hdrs.as_mut_ptr(), n as libc::c_uint, 0) };
    if rc < 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(rc as usize)
}

/// Most segments the kernel accepts in one `UDP_SEGMENT` send (UDP_MAX_SEGMENTS).
const MAX_SEGMENTS: usize = 64;
/// Most payload bytes of one segmented send (a UDP datagram's limit, with room for headers).
const MAX_SEGMENTED_BYTES: usize = 65000;
/// Room for one control message holding a `u16` (`CMSG_SPACE(2)` on 64-bit Linux), as u64s
/// so that it is aligned for `cmsghdr`.
const SEGMENT_CMSG_WORDS: usize = 3;

/// Sends batches of datagrams like [`send_many`], but a run of datagrams to the same
/// destination with the same length (the last of a run may be shorter) leaves as one
/// segmented send (`UDP_SEGMENT`, UDP GSO): the kernel routes, filters and forwards it once
/// and splits it into the separate datagrams as late as it can, at the latest at the
/// receiving socket. What the receiver gets is the same datagrams in the same order.
///
/// A route whose device cannot do it (`EIO`) turns segmentation off for this sender.
#[derive(Debug)]
pub struct Sender {
    segment: bool,
}

impl Default for Sender {
    fn default() -> Self {
        Sender { segment: true }
    }
}

impl Sender {
    /// Sends a prefix of `msgs` (at most [`MAX_BATCH`] datagrams) and returns how many
    /// datagrams were sent; an error only if none was.
    pub fn send<B: AsRef<[u8]>>(
        &mut self,
        fd: BorrowedFd<'_>,
        msgs: &[(B, SocketAddr)],
    ) -> io::Result<usize> {
        let n = msgs.len().min(MAX_BATCH);
        if !self.segment || n < 2 {
            return send_many(fd, msgs);
        }
        // Runs: (first message, count, segment size).
        let mut runs = [(0usize, 0usize, 0usize); MAX_BATCH];
        let mut nruns = 0;
        let mut i = 0;
        while i < n {
            let (first, to) = (msgs[i].0.as_ref().len(), &msgs[i].1);
            let mut k = 1;
            while i + k < n && k < MAX_SEGMENTS && (k + 1) * first <= MAX_SEGMENTED_BYTES {
                let (b, t) = (msgs[i + k].0.as_ref().len(), &msgs[i + k].1);
                if t != to || b > first || b == 0 {
                    break;
                }
                k += 1;
                if b < first {
                    break;
                }
            }
            runs[nruns] = (i, k, first);
            nruns += 1;
            i += k;
        }
        // SAFETY: plain data, all zero is valid (as in recv_many).
        let mut names: [libc::sockaddr_in6; MAX_BATCH] = unsafe { zeroed() };
        // SAFETY: as above.
        let mut iovs: [libc::iovec; MAX_BATCH] = unsafe { zeroed() };
        // SAFETY: as above.
        let mut hdrs: [libc::mmsghdr; MAX_BATCH] = unsafe { zeroed() };
        let mut cmsgs = [[0u64; SEGMENT_CMSG_WORDS]; MAX_BATCH];
        for (i, m) in msgs.iter().take(n).enumerate() {
            let b = m.0.as_ref();
            iovs[i] = libc::iovec {
                iov_base: b.as_ptr().cast_mut().cast(),
                iov_len: b.len(),
            };
        }
        for (r, &(start, count, size)) in runs[..nruns].iter().enumerate() {
            let len = put_sockaddr(&mut names[r], &msgs[start].1);
            let h = &mut hdrs[r].msg_hdr;
            h.msg_name = (&raw mut names[r]).cast();
            h.msg_namelen = len;
            h.msg_iov = &raw mut iovs[start];
            h.msg_iovlen = count;
            if count > 1 {
                h.msg_control = cmsgs[r].as_mut_ptr().cast();
                // SAFETY: CMSG_SPACE only computes a size.
                h.msg_controllen = unsafe { libc::CMSG_SPACE(2) } as usize;
                debug_assert!(h.msg_controllen <= SEGMENT_CMSG_WORDS * 8);
                // SAFETY: msg_control points at CMSG_SPACE(2) writable, aligned bytes, so the
                // first header and its 2 data bytes are inside it.
                unsafe {
                    let c = libc::CMSG_FIRSTHDR(h);
                    (*c).cmsg_level = libc::SOL_UDP;
                    (*c).cmsg_type = libc::UDP_SEGMENT;
                    (*c).cmsg_len = libc::CMSG_LEN(2) as usize;
                    std::ptr::write_unaligned(libc::CMSG_DATA(c).cast::<u16>(), size as u16);
                }
            }
        }
        // SAFETY: the first `nruns` headers point at initialised addresses, at iovecs
        // (consecutive, within `iovs[..n]`) describing payloads the kernel only reads, and
        // at initialised control messages; all outlive the call.
        let rc =
            unsafe { libc::sendmmsg(fd.as_raw_fd(), hdrs.as_mut_ptr(), nruns as libc::c_uint, 0) };
        if rc < 0 {
            let e = io::Error::last_os_error();
            let (start, count, _) = runs[0];
            if count < 2 || e.kind() == io::ErrorKind::Interrupted {
                return Err(e);
            }
            if e.raw_os_error() == Some(libc::EIO) {
                self.segment = false;
            }
            // Refused as a segmented send (EIO, or EINVAL for an MTU too small for one
            // segment): that run one by one instead.
            return send_many(fd, &msgs[start..start + count]);
        }
        Ok(runs[..rc as usize].iter().map(|r| r.1).sum())
    }
}

/// Writes `addr` as a sockaddr_in or sockaddr_in6 into `slot`; returns its length.
fn put_sockaddr(slot: &mut libc::sockaddr_in6, addr: &SocketAddr) -> libc::socklen_t {
    match addr {
        SocketAddr::V4(a) => {
            let sin = libc::sockaddr_in {
                sin_family: libc::AF_INET as libc::sa_family_t,
                sin_port: a.port().to_be(),
                sin_addr: libc::in_addr {
                    s_addr: u32::from_ne_bytes(a.ip().octets()),
                },
                sin_zero: [0; 8],
            };
            // SAFETY: sockaddr_in (16 bytes) fits in sockaddr_in6 (28 bytes), which is
            // suitably aligned for it (both are 4-byte aligned C structs).
            unsafe { std::ptr::write((slot as *mut libc::sockaddr_in6).cast(), sin) };
            size_of::<libc::sockaddr_in>() as libc::socklen_t
        }
        SocketAddr::V6(a) => {
            *slot = libc::sockaddr_in6 {
                sin6_family: libc::AF_INET6 as libc::sa_family_t,
                sin6_port: a.port().to_be(),
                sin6_flowinfo: a.flowinfo(),
                sin6_addr: libc::in6_addr {
                    s6_addr: a.ip().octets(),
                },
                sin6_scope_id: a.scope_id(),
            };
            size_of::<libc::sockaddr_in6>() as libc::socklen_t
        }
    }
}

/// Reads the address the kernel wrote into `slot` (`len` bytes).
fn peer(slot: &libc::sockaddr_in6, len: libc::socklen_t) -> Option<SocketAddr> {
    let len = len as usize;
    match i32::from(slot.sin6_family) {
        libc::AF_INET if len >= size_of::<libc::sockaddr_in>() => {
            // SAFETY: the kernel wrote a sockaddr_in here; it fits and is aligned (above).
            let sin: libc::sockaddr_in =
                unsafe { std::ptr::read((slot as *const libc::sockaddr_in6).cast()) };
            Some(SocketAddr::V4(SocketAddrV4::new(
                Ipv4Addr::from(sin.sin_addr.s_addr.to_ne_bytes()),
                u16::from_be(sin.sin_port),
            )))
        }
        libc::AF_INET6 if len >= size_of::<libc::sockaddr_in6>() => {
            Some(SocketAddr::V6(SocketAddrV6::new(
                Ipv6Addr::from(slot.sin6_addr.s6_addr),
                u16::from_be(slot.sin6_port),
                slot.sin6_flowinfo,
                slot.sin6_scope_id,
            )))
        }
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::net::UdpSocket;
    use std::os::fd::AsFd;

    fn pair(addr: &str) -> (UdpSocket, UdpSocket) {
        let a = UdpSocket::bind(addr).unwrap();
        let b = UdpSocket::bind(addr).unwrap();
        (a, b)
    }

    fn round_trip(addr: &str) {
        let (server, client) = pair(addr);
        let to = server.local_addr().unwrap();
        for i in 0..5u8 {
            client
                .send_to(&[i; 3][..usize::from(i % 3 + 1)], to)
                .unwrap();
        }
        let mut bufs = [[0u8; 2]; 8];
        let mut meta = [Received { len: 0, peer: None }; 8];
        let mut seen = 0;
        while seen < 5 {
            let n = recv_many(server.as_fd(), &mut bufs[seen..], &mut meta[seen..]).unwrap();
            assert!(n >= 1);
            seen += n;
        }
        for (i, m) in meta[..5].iter().enumerate() {
            // 3-byte datagrams are cut to the 2-byte buffer.
            assert_eq!(m.len, (i % 3 + 1).min(2));
            assert_eq!(bufs[i][0], i as u8);
            assert_eq!(m.peer, Some(client.local_addr().unwrap()));
        }
        let replies: Vec<(Vec<u8>, SocketAddr)> = (0..5u8)
            .map(|i| (vec![i + 10], client.local_addr().unwrap()))
            .collect();
        let mut sent = 0;
        while sent < replies.len() {
            sent += send_many(server.as_fd(), &replies[sent..]).unwrap();
        }
        let mut b = [0u8; 4];
        for i in 0..5u8 {
            let (n, from) = client.recv_from(&mut b).unwrap();
            assert_eq!((n, b[0], from), (1, i + 10, to));
        }
    }

    #[test]
    fn batches_on_ipv4_loopback() {
        round_trip("127.0.0.1:0");
    }

    #[test]
    fn batches_on_ipv6_loopback() {
        // Some sandboxes have no IPv6 loopback; nothing to test there.
        if UdpSocket::bind("[::1]:0").is_ok() {
            round_trip("[::1]:0");
        }
    }

    /// Runs of equal-size datagrams to one peer arrive as the same separate datagrams, in
    /// order, whatever the grouping.
    #[test]
    fn segmented_sends_arrive_as_datagrams() {
        let (server, client) = pair("127.0.0.1:0");
        let (_, other) = pair("127.0.0.1:0");
        let (c, o) = (client.local_addr().unwrap(), other.local_addr().unwrap());
        let lens = [5usize, 5, 5, 3, 5, 5, 7, 7, 7, 7, 2];
        let mut msgs: Vec<(Vec<u8>, SocketAddr)> = lens
            .iter()
            .enumerate()
            .map(|(i, &l)| (vec![i as u8; l], c))
            .collect();
        msgs.insert(4, (vec![99; 5], o));
        let mut sender = Sender::default();
        let mut sent = 0;
        while sent < msgs.len() {
            sent += sender.send(server.as_fd(), &msgs[sent..]).unwrap();
        }
        let mut b = [0u8; 16];
        for (i, &l) in lens.iter().enumerate() {
            let (n, _) = client.recv_from(&mut b).unwrap();
            assert_eq!((n, b[0]), (l, i as u8));
        }
        assert_eq!(other.recv_from(&mut b).unwrap().0, 5);
        // Loopback takes segmented sends: the runs above really were segmented.
        assert!(sender.segment);
    }

    #[test]
    fn empty_batches_do_nothing() {
        let (s, _) = pair("127.0.0.1:0");
        let mut meta: [Received; 0] = [];
        assert_eq!(
            recv_many::<[u8; 1]>(s.as_fd(), &mut [], &mut meta).unwrap(),
            0
        );
        let none: [(&[u8], SocketAddr); 0] = [];
        assert_eq!(send_many(s.as_fd(), &none).unwrap(), 0);
    }
}
