//! The program starts at its own `_start` (src/main.rs) with no C library: no startup
//! files, no libraries, a fixed address (nothing to relocate before `_start` runs).
fn main() {
    for arg in ["-nostartfiles", "-nostdlib", "-static", "-no-pie"] {
        println!("cargo:rustc-link-arg-bins={arg}");
    }
}
