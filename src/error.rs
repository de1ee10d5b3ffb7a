//! The one error type: a single line for the user (`charrnn: what, where, what to do`) and the
//! exit code it maps to. Bad input of any kind exits 2; a diverged training 3; Ctrl-C 130; a
//! closed stdout (`| head`) exits 0.

use std::fmt;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// Bad input, flags, files or folders: exit 2.
    Input,
    /// Input that is not there: a file or folder that does not exist (exit 2, as any bad
    /// input; the Python package raises FileNotFoundError for it).
    NotFound,
    /// The reader of our stdout went away: stop quietly, exit 0.
    BrokenPipe,
    /// Ctrl-C or SIGTERM: work was saved; exit 130 as shells expect.
    Interrupted,
    /// Training diverged (the loss blew up); the checkpoints from before it were kept: exit 3.
    Diverged,
}

#[derive(Debug)]
pub struct Error {
    pub kind: Kind,
    pub msg: String,
}

pub type Result<T> = std::result::Result<T, Error>;

impl Error {
    pub fn input(msg: impl Into<String>) -> Error {
        Error {
            kind: Kind::Input,
            msg: msg.into(),
        }
    }

    /// An I/O failure with what we were doing: "`context`: `os error text`" (`Kind::NotFound`
    /// for a path that does not exist).
    pub fn io(context: impl fmt::Display, e: std::io::Error) -> Error {
        let kind = match e.kind() {
            std::io::ErrorKind::BrokenPipe => {
                return Error {
                    kind: Kind::BrokenPipe,
                    msg: "broken pipe".into(),
                }
            }
            std::io::ErrorKind::NotFound => Kind::NotFound,
            _ => Kind::Input,
        };
        Error {
            kind,
            msg: format!("{context}: {e}"),
        }
    }

    pub fn exit_code(&self) -> i32 {
        match self.kind {
            Kind::Input | Kind::NotFound => 2,
            Kind::BrokenPipe => 0,
            Kind::Interrupted => 130,
            Kind::Diverged => 3,
        }
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.msg)
    }
}

impl std::error::Error for Error {}

/// Returns early with an input error built by `format!`.
#[macro_export]
macro_rules! bail {
    ($($arg:tt)*) => { return Err($crate::error::Error::input(format!($($arg)*))) };
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_path_that_does_not_exist_is_not_found_and_exits_2() {
        let dir = tempfile::tempdir().unwrap();
        let missing = dir.path().join("missing.txt");
        let e = std::fs::File::open(&missing)
            .map_err(|e| Error::io(format!("cannot read {}", missing.display()), e))
            .unwrap_err();
        assert_eq!(e.kind, Kind::NotFound);
        assert_eq!(e.exit_code(), 2);
        assert!(e.msg.starts_with("cannot read ") && e.msg.contains("missing.txt: "));
        let e = std::fs::read_dir(dir.path().join("missing.txt/x"))
            .map_err(|e| Error::io("cannot list", e));
        assert_eq!(e.unwrap_err().kind, Kind::NotFound);
        let e = Error::io("cannot write", std::io::ErrorKind::PermissionDenied.into());
        assert_eq!(e.kind, Kind::Input);
    }
}
