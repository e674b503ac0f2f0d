//! The system calls the shim makes, straight to the kernel (x86-64 Linux), and the memory
//! functions the compiler expects a C library to provide.

#[cfg(not(target_arch = "x86_64"))]
compile_error!("berth-shim makes x86-64 Linux system calls: build berth without it elsewhere (scripts/release.sh does)");

use core::arch::asm;

pub(crate) const STDIN: i32 = 0;
pub(crate) const STDOUT: i32 = 1;
pub(crate) const STDERR: i32 = 2;
const AT_FDCWD: i32 = -100;
const EINTR: isize = -4;

/// A failed call's `errno`.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Errno(pub(crate) i32);

/// # Safety
/// The arguments must be what system call `n` takes: pointers valid for what it reads or
/// writes through them.
unsafe fn syscall6(n: usize, a: [usize; 6]) -> isize {
    let ret: isize;
    // SAFETY: the caller passes a valid system call; it clobbers only rcx and r11.
    unsafe {
        asm!("syscall", inlateout("rax") n as isize => ret,
             in("rdi") a[0], in("rsi") a[1], in("rdx") a[2], in("r10") a[3], in("r8") a[4],
             in("r9") a[5], lateout("rcx") _, lateout("r11") _, options(nostack));
    }
    ret
}

/// [`syscall6`], retried on `EINTR`, as a result.
///
/// # Safety
/// As for [`syscall6`].
unsafe fn call(n: usize, a: [usize; 6]) -> Result<usize, Errno> {
    loop {
        // SAFETY: the caller's promise.
        let r = unsafe { syscall6(n, a) };
        match r {
            EINTR => continue,
            r if r < 0 => return Err(Errno(-r as i32)),
            r => return Ok(r as usize),
        }
    }
}

pub(crate) fn read(fd: i32, buf: &mut [u8]) -> Result<usize, Errno> {
    // SAFETY: buf is valid for writes of its length.
    unsafe {
        call(
            0,
            [fd as usize, buf.as_mut_ptr() as usize, buf.len(), 0, 0, 0],
        )
    }
}

pub(crate) fn write(fd: i32, buf: &[u8]) -> Result<usize, Errno> {
    // SAFETY: buf is valid for reads of its length.
    unsafe { call(1, [fd as usize, buf.as_ptr() as usize, buf.len(), 0, 0, 0]) }
}

/// Writes all of `buf`.
pub(crate) fn write_all(fd: i32, mut buf: &[u8]) -> Result<(), Errno> {
    while !buf.is_empty() {
        let n = write(fd, buf)?;
        buf = &buf[n..];
    }
    Ok(())
}

pub(crate) fn close(fd: i32) {
    // SAFETY: close takes no pointer.
    let _ = unsafe { call(3, [fd as usize, 0, 0, 0, 0, 0]) };
}

/// A unix stream socket connected to `path` (NUL-free, shorter than 108 bytes).
pub(crate) fn connect_unix(path: &[u8]) -> Result<i32, Errno> {
    const AF_UNIX: usize = 1;
    const SOCK_STREAM_CLOEXEC: usize = 1 | 0o2000000;
    let mut addr = [0u8; 110];
    if path.len() >= addr.len() - 2 || path.contains(&0) {
        return Err(Errno(36)); // ENAMETOOLONG (or a name no socket can have)
    }
    addr[0] = AF_UNIX as u8;
    addr[2..2 + path.len()].copy_from_slice(path);
    // SAFETY: socket takes no pointer.
    let fd = unsafe { call(41, [AF_UNIX, SOCK_STREAM_CLOEXEC, 0, 0, 0, 0])? } as i32;
    // SAFETY: addr is a sockaddr_un of the length given.
    let r = unsafe {
        call(
            42,
            [fd as usize, addr.as_ptr() as usize, 2 + path.len(), 0, 0, 0],
        )
    };
    match r {
        Ok(_) => Ok(fd),
        Err(e) => {
            close(fd);
            Err(e)
        }
    }
}

/// Sets `fd`'s receive timeout (`SO_RCVTIMEO`).
pub(crate) fn set_read_timeout(fd: i32, secs: u64) -> Result<(), Errno> {
    const SOL_SOCKET: usize = 1;
    const SO_RCVTIMEO: usize = 20;
    let tv = [secs as i64, 0i64];
    // SAFETY: tv is a struct timeval of the length given.
    unsafe {
        call(
            54,
            [
                fd as usize,
                SOL_SOCKET,
                SO_RCVTIMEO,
                tv.as_ptr() as usize,
                16,
                0,
            ],
        )
    }
    .map(drop)
}

/// Device, inode and modification time (ns) of the file at `path` (NUL-terminated),
/// symbolic links followed, as std's `metadata` reports them.
pub(crate) fn stat(path: &[u8]) -> Result<(u64, u64, i64), Errno> {
    assert!(path.ends_with(&[0]));
    const STATX_BASIC_STATS: usize = 0x7ff;
    // struct statx is 256 bytes; the fields read are at fixed offsets.
    let mut buf = [0u64; 32];
    // SAFETY: path is NUL-terminated; buf is 256 writable bytes.
    unsafe {
        call(
            332,
            [
                AT_FDCWD as isize as usize,
                path.as_ptr() as usize,
                0,
                STATX_BASIC_STATS,
                buf.as_mut_ptr() as usize,
                0,
            ],
        )?;
    }
    let u32_at = |off: usize| {
        let w = buf[off / 8];
        (if off.is_multiple_of(8) { w } else { w >> 32 }) as u32
    };
    let ino = buf[32 / 8];
    // stx_mtime: tv_sec (i64) at 112, tv_nsec (u32) at 120.
    let mtime = buf[112 / 8] as i64 * 1_000_000_000 + u32_at(120) as i64;
    // stx_dev_major at 136, stx_dev_minor at 140; glibc's makedev.
    let (major, minor) = (u32_at(136) as u64, u32_at(140) as u64);
    let dev = ((major & 0xffff_f000) << 32)
        | ((major & 0xfff) << 8)
        | ((minor & 0xffff_ff00) << 12)
        | (minor & 0xff);
    Ok((dev, ino, mtime))
}

/// The target of the symbolic link at `path` (NUL-terminated), into `buf`.
pub(crate) fn readlink<'a>(path: &[u8], buf: &'a mut [u8]) -> Result<&'a [u8], Errno> {
    assert!(path.ends_with(&[0]));
    // SAFETY: path is NUL-terminated; buf is valid for writes of its length.
    let n = unsafe {
        call(
            267,
            [
                AT_FDCWD as isize as usize,
                path.as_ptr() as usize,
                buf.as_mut_ptr() as usize,
                buf.len(),
                0,
                0,
            ],
        )?
    };
    Ok(&buf[..n])
}

/// A memory file (`memfd_create`) holding `data`, read from its start; open across exec.
pub(crate) fn memory_file(data: &[u8]) -> Result<i32, Errno> {
    // SAFETY: the name is NUL-terminated.
    let fd = unsafe { call(319, [c"stdin".as_ptr() as usize, 0, 0, 0, 0, 0])? } as i32;
    write_all(fd, data)?;
    // SAFETY: lseek takes no pointer.
    unsafe { call(8, [fd as usize, 0, 0, 0, 0, 0])? };
    Ok(fd)
}

/// `dup2(old, new)`.
pub(crate) fn dup2(old: i32, new: i32) -> Result<(), Errno> {
    // SAFETY: dup3 takes no pointer.
    unsafe { call(292, [old as usize, new as usize, 0, 0, 0, 0]) }.map(drop)
}

/// Replaces the process; returns only on failure.
///
/// # Safety
/// `path` must be NUL-terminated, `argv` and `envp` NULL-terminated arrays of
/// NUL-terminated strings.
pub(crate) unsafe fn execve(path: &[u8], argv: *const *const u8, envp: *const *const u8) -> Errno {
    // SAFETY: the caller's promise.
    match unsafe {
        call(
            59,
            [
                path.as_ptr() as usize,
                argv as usize,
                envp as usize,
                0,
                0,
                0,
            ],
        )
    } {
        Ok(_) => Errno(0),
        Err(e) => e,
    }
}

pub(crate) fn exit(code: u8) -> ! {
    // SAFETY: exit_group takes no pointer and does not return.
    unsafe { asm!("syscall", in("rax") 231usize, in("rdi") code as usize, options(noreturn)) }
}

/// `len` bytes of fresh, zeroed, private memory.
pub(crate) fn map(len: usize) -> Option<*mut u8> {
    const PROT_RW: usize = 3;
    const MAP_PRIVATE_ANONYMOUS: usize = 0x02 | 0x20;
    // SAFETY: an anonymous mapping at an address the kernel picks.
    let p = unsafe { call(9, [0, len, PROT_RW, MAP_PRIVATE_ANONYMOUS, usize::MAX, 0]) };
    p.ok().map(|p| p as *mut u8)
}

// The compiler lowers copies and fills to these; with no C library the program defines
// them. `rep movsb`/`rep stosb` are what the CPU does fast; a byte loop would be turned
// back into a call to the function it is in.

/// # Safety
/// As C's `memcpy`.
#[no_mangle]
pub(crate) unsafe extern "C" fn memcpy(dst: *mut u8, src: *const u8, n: usize) -> *mut u8 {
    // SAFETY: the caller's promise: n bytes readable at src, writable at dst.
    unsafe {
        asm!("rep movsb", inout("rcx") n => _, inout("rdi") dst => _, inout("rsi") src => _,
             options(nostack, preserves_flags));
    }
    dst
}

/// # Safety
/// As C's `memmove`.
#[no_mangle]
pub(crate) unsafe extern "C" fn memmove(dst: *mut u8, src: *const u8, n: usize) -> *mut u8 {
    if (dst as usize).wrapping_sub(src as usize) >= n {
        // SAFETY: copying forwards never reads a byte already written.
        return unsafe { memcpy(dst, src, n) };
    }
    // SAFETY: backwards, from the last byte (the direction flag is restored).
    unsafe {
        asm!("std", "rep movsb", "cld", inout("rcx") n => _,
             inout("rdi") dst.add(n - 1) => _, inout("rsi") src.add(n - 1) => _,
             options(nostack));
    }
    dst
}

/// # Safety
/// As C's `memset`.
#[no_mangle]
pub(crate) unsafe extern "C" fn memset(dst: *mut u8, c: i32, n: usize) -> *mut u8 {
    // SAFETY: the caller's promise: n bytes writable at dst.
    unsafe {
        asm!("rep stosb", inout("rcx") n => _, inout("rdi") dst => _, in("al") c as u8,
             options(nostack, preserves_flags));
    }
    dst
}

/// # Safety
/// As C's `memcmp`.
#[no_mangle]
pub(crate) unsafe extern "C" fn memcmp(a: *const u8, b: *const u8, n: usize) -> i32 {
    for i in 0..n {
        // SAFETY: the caller's promise: n bytes readable at each. Volatile, so that the
        // loop is not recognised as a call to memcmp.
        let (x, y) = unsafe { (a.add(i).read_volatile(), b.add(i).read_volatile()) };
        if x != y {
            return x as i32 - y as i32;
        }
    }
    0
}

/// # Safety
/// As C's `bcmp`.
#[no_mangle]
pub(crate) unsafe extern "C" fn bcmp(a: *const u8, b: *const u8, n: usize) -> i32 {
    // SAFETY: the caller's promise.
    unsafe { memcmp(a, b, n) }
}

/// # Safety
/// As C's `strlen`.
#[no_mangle]
pub(crate) unsafe extern "C" fn strlen(s: *const u8) -> usize {
    let mut n = 0;
    // SAFETY: the caller's promise: NUL-terminated. Volatile, as in memcmp.
    while unsafe { s.add(n).read_volatile() } != 0 {
        n += 1;
    }
    n
}
