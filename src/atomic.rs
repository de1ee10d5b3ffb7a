//! Whole-file writes that never leave a half-written file: a temporary file in the same
//! folder (the `tempfile` crate), written, synced, then renamed over the target. On failure the
//! previous file is untouched and the temporary file is removed.
//!
//! Owns the write-then-rename rule. Does not own any file format.

use crate::error::{Error, Result};
use std::io::Write;
use std::path::Path;

/// Runs `write` into a temporary file beside `path`, syncs it and renames it over `path`.
///
/// # Errors
/// Any I/O failure, as one line: `cannot write PATH: <os error>`.
pub fn write(path: &Path, write: impl FnOnce(&mut dyn Write) -> std::io::Result<()>) -> Result<()> {
    let name = path.file_name().and_then(|n| n.to_str()).unwrap_or("file");
    let dir = match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p,
        _ => Path::new("."),
    };
    let result = (|| {
        let mut builder = tempfile::Builder::new();
        let prefix = format!(".{name}.tmp");
        builder.prefix(&prefix).suffix("");
        #[cfg(unix)]
        {
            // tempfile's default is 0600; a checkpoint or chart is an ordinary file (0666 & umask).
            use std::os::unix::fs::PermissionsExt;
            builder.permissions(std::fs::Permissions::from_mode(0o666));
        }
        let tmp = builder.tempfile_in(dir)?;
        let mut w = std::io::BufWriter::with_capacity(1 << 20, tmp);
        write(&mut w)?;
        let tmp = w.into_inner().map_err(|e| e.into_error())?;
        tmp.as_file().sync_all()?;
        tmp.persist(path).map_err(|e| e.error)?;
        Ok(())
    })();
    result
        .map_err(|e: std::io::Error| Error::io(format!("cannot write {}", path.display()), bare(e)))
}

/// The OS error alone: `tempfile` adds the temporary file's name ("… at path
/// \"dir/.x.tmpR53g4r\""), which the user never asked for and cannot find. Its wrapper hides
/// the OS error's code, so the suffix is cut from the message.
fn bare(e: std::io::Error) -> std::io::Error {
    let msg = e.to_string();
    match msg.split_once(" at path \"") {
        Some((head, _)) => std::io::Error::new(e.kind(), head.to_string()),
        None => e,
    }
}
