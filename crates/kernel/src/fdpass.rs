//! Passing open file descriptors over a unix stream socket (`SCM_RIGHTS`), with a request
//! line. A door hands the agent a socket whose last close would make the door wait (see
//! `berth_engine::reap`); the agent reads the line and takes the descriptors with it.

use std::io;
use std::os::fd::{AsRawFd, BorrowedFd, FromRawFd, OwnedFd, RawFd};
use std::os::unix::net::UnixStream;

/// At most this many descriptors ride on one request.
pub const MAX_FDS: usize = 8;

/// Writes all of `bytes` to `stream`, the descriptors `fds` riding on the first part. The
/// receiver holds its own copies once it has read them; closing ours then closes nothing.
pub fn send(stream: &UnixStream, bytes: &[u8], fds: &[BorrowedFd<'_>]) -> io::Result<()> {
    if fds.len() > MAX_FDS {
        return Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            format!("at most {MAX_FDS} descriptors per request"),
        ));
    }
    let mut rest = bytes;
    let mut first = true;
    while !rest.is_empty() {
        let raw: Vec<RawFd> = match first {
            true => fds.iter().map(|f| f.as_raw_fd()).collect(),
            false => Vec::new(),
        };
        let n = sendmsg(stream.as_raw_fd(), rest, &raw)?;
        first = false;
        rest = &rest[n..];
    }
    Ok(())
}

/// Reads up to and including the first `\n` (at most `max` bytes), with every descriptor
/// that rode on those bytes. Returns the bytes read (without a line end if the peer closed
/// first) and the descriptors, each now owned by the caller.
pub fn recv_line(stream: &UnixStream, max: usize) -> io::Result<(Vec<u8>, Vec<OwnedFd>)> {
    let mut line = Vec::new();
    let mut fds = Vec::new();
    let mut buf = [0u8; 4096];
    while !line.ends_with(b"\n") {
        if line.len() >= max {
            return Err(io::Error::new(
                io::ErrorKind::InvalidData,
                format!("request longer than {max} bytes"),
            ));
        }
        // Reading past the line end is harmless: one request per connection.
        let n = recvmsg(stream.as_raw_fd(), &mut buf, &mut fds)?;
        if n == 0 {
            break;
        }
        line.extend_from_slice(&buf[..n]);
    }
    Ok((line, fds))
}

fn cmsg_space() -> usize {
    // SAFETY: CMSG_SPACE only computes a size.
    unsafe { libc::CMSG_SPACE((MAX_FDS * std::mem::size_of::<RawFd>()) as u32) as usize }
}

/// A control buffer for up to [`MAX_FDS`] descriptors (u64 words keep it aligned for
/// cmsghdr).
fn control_buffer() -> Vec<u64> {
    vec![0u64; cmsg_space().div_ceil(8)]
}

/// A message header over the one buffer `iov`, without control data.
fn header(iov: &mut libc::iovec) -> libc::msghdr {
    // SAFETY: msghdr is plain data; all-zero is a valid empty header.
    let mut msg: libc::msghdr = unsafe { std::mem::zeroed() };
    msg.msg_iov = iov;
    msg.msg_iovlen = 1;
    msg
}

/// Runs `call` (a system call returning -1 on failure) until it is not interrupted.
fn retrying(mut call: impl FnMut() -> isize) -> io::Result<usize> {
    loop {
        let n = call();
        if n >= 0 {
            return Ok(n as usize);
        }
        let e = io::Error::last_os_error();
        if e.kind() != io::ErrorKind::Interrupted {
            return Err(e);
        }
    }
}

fn sendmsg(sock: RawFd, bytes: &[u8], fds: &[RawFd]) -> io::Result<usize> {
    let mut iov = libc::iovec {
        iov_base: bytes.as_ptr() as *mut libc::c_void,
        iov_len: bytes.len(),
    };
    let mut control = control_buffer();
    let mut msg = header(&mut iov);
    if !fds.is_empty() {
        let len = std::mem::size_of_val(fds);
        msg.msg_control = control.as_mut_ptr() as *mut libc::c_void;
        // SAFETY: CMSG_SPACE only computes a size.
        msg.msg_controllen = unsafe { libc::CMSG_SPACE(len as u32) } as usize;
        // SAFETY: the control buffer holds CMSG_SPACE(len) bytes (at most cmsg_space()),
        // so the first header and its `len` data bytes lie inside it.
        unsafe {
            let c = libc::CMSG_FIRSTHDR(&msg);
            (*c).cmsg_level = libc::SOL_SOCKET;
            (*c).cmsg_type = libc::SCM_RIGHTS;
            (*c).cmsg_len = libc::CMSG_LEN(len as u32) as usize;
            std::ptr::copy_nonoverlapping(fds.as_ptr() as *const u8, libc::CMSG_DATA(c), len);
        }
    }
    // SAFETY: msg points at iov and control, both alive for the call.
    retrying(|| unsafe { libc::sendmsg(sock, &msg, libc::MSG_NOSIGNAL) })
}

fn recvmsg(sock: RawFd, buf: &mut [u8], fds: &mut Vec<OwnedFd>) -> io::Result<usize> {
    let mut iov = libc::iovec {
        iov_base: buf.as_mut_ptr() as *mut libc::c_void,
        iov_len: buf.len(),
    };
    let mut control = control_buffer();
    let mut msg = header(&mut iov);
    msg.msg_control = control.as_mut_ptr() as *mut libc::c_void;
    msg.msg_controllen = control.len() * 8;
    // SAFETY: msg points at iov and control, both alive for the call.
    let n = retrying(|| unsafe { libc::recvmsg(sock, &mut msg, libc::MSG_CMSG_CLOEXEC) })?;
    // SAFETY: the kernel filled msg_control with msg_controllen bytes of cmsghdrs; the
    // CMSG_* walk stays inside them, and each SCM_RIGHTS descriptor is new to this process
    // (ours to own and close).
    unsafe {
        let mut c = libc::CMSG_FIRSTHDR(&msg);
        while !c.is_null() {
            if (*c).cmsg_level == libc::SOL_SOCKET && (*c).cmsg_type == libc::SCM_RIGHTS {
                let data = libc::CMSG_DATA(c);
                let bytes = (*c).cmsg_len as usize - libc::CMSG_LEN(0) as usize;
                for i in 0..bytes / std::mem::size_of::<RawFd>() {
                    let fd = std::ptr::read_unaligned(
                        data.add(i * std::mem::size_of::<RawFd>()) as *const RawFd
                    );
                    fds.push(OwnedFd::from_raw_fd(fd));
                }
            }
            c = libc::CMSG_NXTHDR(&msg, c);
        }
    }
    if msg.msg_flags & libc::MSG_CTRUNC != 0 {
        return Err(io::Error::new(
            io::ErrorKind::InvalidData,
            format!("more than {MAX_FDS} descriptors on one request"),
        ));
    }
    Ok(n)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::{Read, Seek, Write};
    use std::os::fd::AsFd;

    #[test]
    fn a_line_and_its_descriptors_arrive_together() {
        let (a, b) = UnixStream::pair().unwrap();
        let file = tempfile_with(b"riding along");
        send(&a, b"reap teardown 12\n", &[file.as_fd()]).unwrap();
        drop(a);
        let (line, fds) = recv_line(&b, 1 << 16).unwrap();
        assert_eq!(line, b"reap teardown 12\n");
        assert_eq!(fds.len(), 1);
        // The received descriptor is the same open file: it sees our offset and content.
        let mut got = std::fs::File::from(fds.into_iter().next().unwrap());
        got.rewind().unwrap();
        let mut s = String::new();
        got.read_to_string(&mut s).unwrap();
        assert_eq!(s, "riding along");
    }

    #[test]
    fn a_long_line_without_descriptors_is_read_whole() {
        let (a, b) = UnixStream::pair().unwrap();
        let long = format!("{}\n", "port=tcp/1 ".repeat(2000));
        let writer = {
            let long = long.clone();
            std::thread::spawn(move || send(&a, long.as_bytes(), &[]).unwrap())
        };
        let (line, fds) = recv_line(&b, 1 << 16).unwrap();
        writer.join().unwrap();
        assert_eq!(line, long.as_bytes());
        assert!(fds.is_empty());
    }

    #[test]
    fn too_many_descriptors_is_refused_before_sending() {
        let (a, _b) = UnixStream::pair().unwrap();
        let f = tempfile_with(b"");
        let many: Vec<BorrowedFd<'_>> = (0..=MAX_FDS).map(|_| f.as_fd()).collect();
        send(&a, b"x\n", &many).unwrap_err();
    }

    #[test]
    fn a_line_longer_than_max_is_an_error() {
        let (a, b) = UnixStream::pair().unwrap();
        send(&a, &[b'x'; 100], &[]).unwrap();
        recv_line(&b, 10).unwrap_err();
    }

    fn tempfile_with(content: &[u8]) -> std::fs::File {
        let path = std::env::temp_dir().join(format!(
            "berth-fdpass-{}-{:?}",
            std::process::id(),
            std::thread::current().id()
        ));
        let mut f = std::fs::OpenOptions::new()
            .create(true)
            .truncate(true)
            .read(true)
            .write(true)
            .open(&path)
            .unwrap();
        std::fs::remove_file(&path).unwrap();
        f.write_all(content).unwrap();
        f
    }
}
