//! One training per run folder: a run holds an exclusive OS lock (`std::fs::File::try_lock`,
//! flock on Unix) on `FOLDER/.lock` for its whole life, so a second training or resume into the
//! same folder refuses at once, while reading (sample, eval, info, plot) never takes the lock.
//! The OS drops the lock when the process ends however it ends, so a killed run leaves no
//! stale lock; the file's text (who holds it) is only for the message.
//!
//! Owns the lock. Does not create or fill the folder (see `folder`, `setup`).

use crate::error::{Error, Result};
use std::io::{Read, Seek, Write};
use std::path::Path;

/// The held lock; released when dropped (or when the process ends).
pub struct RunLock {
    _file: std::fs::File,
}

/// The name of the lock file in a run folder.
pub const LOCK_FILE: &str = ".lock";

/// Takes the lock of run folder `dir` (which must exist), or says who holds it.
///
/// # Errors
/// Another process holds it (`… is in use by …; … or give another --out`), or the lock file
/// cannot be made.
pub fn lock(dir: &Path) -> Result<RunLock> {
    let path = dir.join(LOCK_FILE);
    let io = |e| Error::io(format!("cannot lock {}", path.display()), e);
    let mut file = std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .create(true)
        .truncate(false)
        .open(&path)
        .map_err(io)?;
    match file.try_lock() {
        Ok(()) => {}
        Err(std::fs::TryLockError::WouldBlock) => {
            let mut holder = String::new();
            let _ = file.read_to_string(&mut holder);
            let holder = holder.trim();
            return Err(Error::input(format!(
                "{} is in use by another training ({}); wait for it to finish, or give another --out",
                dir.display(),
                if holder.is_empty() { "a charrnn process" } else { holder }
            )));
        }
        Err(std::fs::TryLockError::Error(e)) => return Err(io(e)),
    }
    // Who holds it, for the message a second run prints.
    let who = format!(
        "pid {}: {}",
        std::process::id(),
        std::env::args().collect::<Vec<_>>().join(" ")
    );
    file.set_len(0).map_err(io)?;
    file.rewind().map_err(io)?;
    file.write_all(who.as_bytes()).map_err(io)?;
    Ok(RunLock { _file: file })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_second_lock_on_a_folder_is_refused_until_the_first_is_dropped() {
        let dir = tempfile::tempdir().unwrap();
        let first = lock(dir.path()).unwrap();
        let e = lock(dir.path()).err().unwrap();
        assert!(
            e.msg.contains("is in use by another training (pid ")
                && e.msg.contains(&std::process::id().to_string()),
            "{}",
            e.msg
        );
        drop(first);
        lock(dir.path()).unwrap();
    }
}
