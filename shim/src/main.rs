//! The shim program (the why is in src/lib.rs): its own start, a bump allocator, and the
//! flow: plan the call, hand it to the agent, print the reply; or become berth.

#![no_std]
#![no_main]

mod sys;

extern crate alloc;

use alloc::vec::Vec;
use berth_shim::{
    cni_code, door_env, error_line, join, plan, request, Door, Env, Kind, Plan, Reply,
};
use core::alloc::{GlobalAlloc, Layout};
use core::cell::UnsafeCell;
use core::sync::atomic::{AtomicBool, Ordering};

// The kernel starts the program with the stack pointer at `argc`, then `argv`, a NULL,
// `envp`, a NULL. `main` gets that pointer with the stack aligned as a call expects.
core::arch::global_asm!(
    ".globl _start",
    "_start:",
    "xor ebp, ebp",
    "mov rdi, rsp",
    "and rsp, -16",
    "call {main}",
    "ud2",
    main = sym start,
);

/// How long the agent may take to accept a command, and to run it (`berth_engine::door`).
const TAKE_TIMEOUT_S: u64 = 5;
const RESULT_TIMEOUT_S: u64 = 300;

/// The strings of a NULL-terminated array of C strings.
///
/// # Safety
/// `p` points at such an array, which lives for the whole program.
unsafe fn strings(mut p: *const *const u8) -> Vec<&'static [u8]> {
    let mut out = Vec::new();
    // SAFETY: the caller's promise: each entry is a NUL-terminated string, until NULL.
    unsafe {
        while !(*p).is_null() {
            out.push(core::slice::from_raw_parts(*p, sys::strlen(*p)));
            p = p.add(1);
        }
    }
    out
}

/// The process: `sp` is the stack pointer the kernel started it with.
extern "C" fn start(sp: *const usize) -> ! {
    // SAFETY: the kernel's layout: argc, then argv (argc entries and a NULL), then envp.
    let (argv_p, envp_p) = unsafe {
        let argv = sp.add(1) as *const *const u8;
        (argv, argv.add(*sp + 1))
    };
    // SAFETY: both arrays are the kernel's and live as long as the process.
    let argv = unsafe { strings(argv_p) };
    // SAFETY: as above.
    let envs = unsafe { strings(envp_p) };
    let env = Env(&envs);
    let argv0 = argv.first().copied().unwrap_or_default();
    let args = argv.get(1..).unwrap_or_default();
    let plan = plan(argv0, args, env);
    let kind = Kind::of(argv0, env);
    CNI_CALL.store(kind == Kind::Cni, Ordering::Relaxed);
    let berth = berth_path();
    let exec = |stdin: Option<&[u8]>| -> ! {
        become_berth(&berth, kind, stdin, argv_p, envp_p);
    };
    let Plan::Hand { .. } = plan else { exec(None) };
    let run_root = env
        .var("BERTH_RUN_ROOT")
        .unwrap_or(berth_shim::DEFAULT_RUN_ROOT.as_bytes());
    // No agent to hand to: berth runs the command (and starts the agent if it needs it),
    // with stdin still unread.
    let Ok(conn) = sys::connect_unix(&join(run_root, b"door.sock")) else {
        exec(None)
    };
    let (Some(root), Some(log)) = (
        env.text("BERTH_ROOT", berth_shim::DEFAULT_ROOT),
        env.text("BERTH_LOG", berth_shim::DEFAULT_LOG),
    ) else {
        exec(None)
    };
    let Some(door) = door(&berth, kind, env, log, root) else {
        exec(None)
    };
    let Ok(stdin) = read_all(sys::STDIN) else {
        let msg = match kind {
            Kind::Netavark => "read network options from stdin: read failed",
            Kind::Cni => "cannot read the configuration on stdin: read failed",
        };
        let _ = sys::write_all(sys::STDOUT, &error_line(kind, b"", cni_code::IO, msg));
        sys::exit(1)
    };
    let Some(line) = core::str::from_utf8(&stdin)
        .ok()
        .and_then(|s| request(args, s, &door))
    else {
        exec(Some(&stdin))
    };
    if sys::write_all(conn, &line).is_err() || sys::set_read_timeout(conn, TAKE_TIMEOUT_S).is_err()
    {
        exec(Some(&stdin));
    }
    let mut reader = Lines::new(conn);
    match reader.line() {
        Some(l) if l == b"started" => {}
        // Refused, or closed: the agent did not take it.
        _ => exec(Some(&stdin)),
    }
    let lost = |why: &str| -> ! {
        let agent_log = join(run_root, b"agent.log");
        let mut msg = Vec::from(why.as_bytes());
        msg.extend_from_slice(b"; see ");
        msg.extend_from_slice(&agent_log);
        let msg = core::str::from_utf8(&msg).unwrap_or(why);
        let line = error_line(kind, &stdin, cni_code::TRY_AGAIN, msg);
        let _ = sys::write_all(sys::STDOUT, &line);
        sys::exit(1)
    };
    if sys::set_read_timeout(conn, RESULT_TIMEOUT_S).is_err() {
        lost("no result from the agent: cannot wait for it");
    }
    let Some(l) = reader.line() else {
        lost("the agent stopped before it answered")
    };
    let Some(reply) = Reply::parse(l) else {
        lost("unreadable result from the agent")
    };
    let _ = sys::write_all(sys::STDERR, &reply.stderr);
    let _ = sys::write_all(sys::STDOUT, &reply.stdout);
    sys::exit(reply.code)
}

/// The `berth` beside this executable (symbolic links to it resolved), NUL-terminated; where
/// `/proc` cannot say, the one contrib/podman installs, `/usr/local/bin/berth`.
fn berth_path() -> Vec<u8> {
    let mut buf = [0u8; 4096];
    let dir = match sys::readlink(b"/proc/self/exe\0", &mut buf) {
        Ok(exe) => &exe[..exe.iter().rposition(|&c| c == b'/').unwrap_or(0)],
        Err(_) => &b"/usr/local/bin"[..],
    };
    let mut p = join(dir, b"berth");
    p.push(0);
    p
}

/// What the request says of this process: its door's variables, namespaces and the berth
/// it would run.
fn door<'a>(
    berth: &[u8],
    kind: Kind,
    env: Env<'a>,
    log: &'a str,
    root: &'a str,
) -> Option<Door<'a>> {
    let ns = |p: &[u8]| sys::stat(p).ok().map(|(_, ino, _)| ino);
    Some(Door {
        kind,
        env: door_env(kind, env)?,
        log,
        root,
        namespaces: (
            ns(b"/proc/thread-self/ns/mnt\0")?,
            ns(b"/proc/thread-self/ns/net\0")?,
        ),
        build: sys::stat(berth).ok()?,
    })
}

/// Becomes berth with this process's arguments and environment; `stdin`, when the shim has
/// read it, is given to berth as its stdin again.
fn become_berth(
    berth: &[u8],
    kind: Kind,
    stdin: Option<&[u8]>,
    argv: *const *const u8,
    envp: *const *const u8,
) -> ! {
    if let Some(data) = stdin {
        let replayed = sys::memory_file(data).and_then(|fd| {
            sys::dup2(fd, sys::STDIN)?;
            sys::close(fd);
            Ok(())
        });
        if replayed.is_err() {
            let msg = "berth-shim: cannot pass stdin on";
            let _ = sys::write_all(
                sys::STDOUT,
                &error_line(kind, data, cni_code::INTERNAL, msg),
            );
            sys::exit(1);
        }
    }
    // SAFETY: berth is NUL-terminated; argv and envp are the kernel's arrays.
    let e = unsafe { sys::execve(berth, argv, envp) };
    let mut msg = Vec::from(&b"berth-shim: cannot run "[..]);
    msg.extend_from_slice(&berth[..berth.len() - 1]);
    msg.extend_from_slice(b": errno ");
    berth_shim::json::number(&mut msg, e.0 as i128);
    let msg = core::str::from_utf8(&msg).unwrap_or("berth-shim: cannot run berth");
    let _ = sys::write_all(
        sys::STDOUT,
        &error_line(kind, stdin.unwrap_or_default(), cni_code::INTERNAL, msg),
    );
    sys::exit(1)
}

/// All of `fd` until end of file.
fn read_all(fd: i32) -> Result<Vec<u8>, sys::Errno> {
    let mut out: Vec<u8> = Vec::with_capacity(64 << 10);
    loop {
        if out.len() == out.capacity() {
            out.reserve(out.len());
        }
        let len = out.len();
        // SAFETY: the bytes between len and capacity are allocated; read only writes them.
        let spare = unsafe {
            core::slice::from_raw_parts_mut(out.as_mut_ptr().add(len), out.capacity() - len)
        };
        match sys::read(fd, spare)? {
            0 => return Ok(out),
            // SAFETY: read wrote n bytes after len.
            n => unsafe { out.set_len(len + n) },
        }
    }
}

/// Newline-ended lines read from a socket.
struct Lines {
    fd: i32,
    buf: Vec<u8>,
    /// Where the next line starts in `buf`.
    at: usize,
}

impl Lines {
    fn new(fd: i32) -> Lines {
        Lines {
            fd,
            buf: Vec::with_capacity(16 << 10),
            at: 0,
        }
    }

    /// The next line, without its newline; `None` at end of file or on an error (a timeout).
    fn line(&mut self) -> Option<&[u8]> {
        let mut searched = self.at;
        loop {
            if let Some(n) = self.buf[searched..].iter().position(|&c| c == b'\n') {
                let (start, end) = (self.at, searched + n);
                self.at = end + 1;
                return Some(&self.buf[start..end]);
            }
            searched = self.buf.len();
            let mut chunk = [0u8; 16 << 10];
            match sys::read(self.fd, &mut chunk) {
                Ok(0) | Err(_) => return None,
                Ok(n) => self.buf.extend_from_slice(&chunk[..n]),
            }
        }
    }
}

/// Memory handed out from chunks the kernel maps, never given back: the process lives for
/// one command.
struct Bump(UnsafeCell<(usize, usize)>);

// SAFETY: the shim has one thread.
unsafe impl Sync for Bump {}

const CHUNK: usize = 1 << 20;

// SAFETY: every block is fresh memory of at least the size and alignment asked for.
unsafe impl GlobalAlloc for Bump {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        // SAFETY: one thread: no other reference to the cell exists.
        let (next, end) = unsafe { &mut *self.0.get() };
        let mut start = next.next_multiple_of(layout.align());
        if *next == 0 || start + layout.size() > *end {
            let len = (layout.size() + layout.align())
                .max(CHUNK)
                .next_multiple_of(4096);
            let Some(p) = sys::map(len) else {
                return core::ptr::null_mut();
            };
            *end = p as usize + len;
            start = (p as usize).next_multiple_of(layout.align());
        }
        *next = start + layout.size();
        start as *mut u8
    }

    unsafe fn dealloc(&self, _: *mut u8, _: Layout) {}
}

#[global_allocator]
static ALLOC: Bump = Bump(UnsafeCell::new((0, 0)));

/// Whether this call is a CNI plugin's, for the panic handler's error line.
static CNI_CALL: AtomicBool = AtomicBool::new(false);

#[panic_handler]
fn panic(_: &core::panic::PanicInfo<'_>) -> ! {
    let kind = match CNI_CALL.load(Ordering::Relaxed) {
        true => Kind::Cni,
        false => Kind::Netavark,
    };
    let msg = "berth-shim: internal error";
    let _ = sys::write_all(sys::STDOUT, &error_line(kind, b"", cni_code::INTERNAL, msg));
    sys::exit(1)
}

/// Never called (a panic aborts), but the prebuilt `alloc` library names it in its unwind
/// tables; a build without link-time optimisation keeps those and needs the symbol.
#[no_mangle]
extern "C" fn rust_eh_personality() {}
