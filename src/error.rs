//! The one error type: a single line for the user (`charrnn: what, where, what to do`) and the
//! exit code it maps to. Bad input of any kind exits 2; a diverged training 3; Ctrl-C 130; a
//! closed stdout (`| head`) exits 0.

use std::fmt;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// Bad input, flags, files or folders: exit 2.
    Input,
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

    /// An I/O failure with what we were doing: "`context`: `os error text`".
    pub fn io(context: impl fmt::Display, e: std::io::Error) -> Error {
        if e.kind() == std::io::ErrorKind::BrokenPipe {
            return Error {
                kind: Kind::BrokenPipe,
                msg: "broken pipe".into(),
            };
        }
        Error::input(format!("{context}: {e}"))
    }

    pub fn exit_code(&self) -> i32 {
        match self.kind {
            Kind::Input => 2,
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
