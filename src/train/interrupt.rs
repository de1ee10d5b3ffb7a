//! Ctrl-C and SIGTERM during training: the first finishes the current step, saves and exits
//! 130; a second exits at once (the `ctrlc` crate installs the handler).
//!
//! Owns the flag the step loop polls. Does not save (see `run`).

use std::sync::atomic::{AtomicBool, Ordering};

static INTERRUPTED: AtomicBool = AtomicBool::new(false);

/// Installs the handler once per process.
pub fn install() {
    static ONCE: std::sync::Once = std::sync::Once::new();
    ONCE.call_once(|| {
        let _ = ctrlc::set_handler(|| {
            if INTERRUPTED.swap(true, Ordering::SeqCst) {
                eprintln!("\ncharrnn: interrupted again; exiting without saving");
                std::process::exit(130);
            }
        });
    });
}

/// Whether Ctrl-C or SIGTERM has arrived.
pub fn requested() -> bool {
    INTERRUPTED.load(Ordering::SeqCst)
}
