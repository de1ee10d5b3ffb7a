//! `charrnn fetch gutenberg ID` and `train --gutenberg ID`: download a Project Gutenberg book
//! into a cache folder once, keep only the book (between the `*** START OF` and `*** END OF`
//! lines), and hand back its path.
//!
//! Owns the download, the cache and the stripping. The mirror's base URL is configurable
//! (`--mirror`, `CHARRNN_GUTENBERG_MIRROR`) so that tests can serve a book from 127.0.0.1.

use crate::bail;
use crate::error::{Error, Result};
use clap::Args;
use std::io::Read;
use std::path::{Path, PathBuf};

/// `charrnn fetch gutenberg ID`: the book's number and where books come from.
#[derive(Args, Debug, Clone)]
pub struct GutenbergArgs {
    /// The eBook number.
    pub id: u32,
    #[command(flatten)]
    pub source: GutenbergSource,
}

/// Where books come from and where they are kept.
// The doc comments are --help text, written for a terminal, not rustdoc.
#[allow(rustdoc::bare_urls, rustdoc::invalid_html_tags)]
#[derive(Args, Debug, Clone)]
pub struct GutenbergSource {
    /// Cache folder for downloaded books [default: $CHARRNN_CACHE, $XDG_CACHE_HOME/charrnn or
    /// ~/.cache/charrnn].
    #[arg(long, value_name = "DIR")]
    pub cache: Option<PathBuf>,
    /// Base URL of the Gutenberg mirror [default: $CHARRNN_GUTENBERG_MIRROR or
    /// https://www.gutenberg.org].
    #[arg(long, value_name = "URL")]
    pub mirror: Option<String>,
    /// Give up on a download after this many seconds without an answer (to connect, or
    /// between two pieces of the book).
    #[arg(
        long,
        value_name = "SECS",
        default_value_t = 60.0,
        allow_negative_numbers = true
    )]
    pub download_timeout: f64,
}

pub const DEFAULT_MIRROR: &str = "https://www.gutenberg.org";

/// The cache folder: `--cache`, else `$CHARRNN_CACHE`, `$XDG_CACHE_HOME/charrnn`,
/// `$HOME/.cache/charrnn`, `%LOCALAPPDATA%\charrnn` (Windows, where HOME is not set), or
/// `.charrnn-cache` in the current folder.
pub fn cache_dir(flag: Option<&Path>) -> PathBuf {
    let env = |k: &str| {
        std::env::var_os(k)
            .filter(|v| !v.is_empty())
            .map(PathBuf::from)
    };
    flag.map(Path::to_path_buf)
        .or_else(|| env("CHARRNN_CACHE"))
        .or_else(|| env("XDG_CACHE_HOME").map(|p| p.join("charrnn")))
        .or_else(|| env("HOME").map(|p| p.join(".cache/charrnn")))
        .or_else(|| env("LOCALAPPDATA").map(|p| p.join("charrnn")))
        .unwrap_or_else(|| PathBuf::from(".charrnn-cache"))
}

/// The book without Project Gutenberg's header and licence footer: the lines strictly between
/// `*** START OF …` and `*** END OF …`, with blank lines at either end trimmed. Returns the text
/// unchanged (and false) when the markers are missing.
pub fn strip_gutenberg(text: &str) -> (String, bool) {
    let start = text
        .find("*** START OF")
        .and_then(|i| text[i..].find('\n').map(|j| i + j + 1));
    let Some(start) = start else {
        return (text.to_string(), false);
    };
    let end = text[start..]
        .find("*** END OF")
        .map_or(text.len(), |i| start + i);
    let body = text[start..end].trim_matches(|c| c == '\r' || c == '\n');
    (format!("{body}\n"), true)
}

/// Whether an I/O error is a timeout (`WouldBlock` is how some systems report a read that
/// timed out).
fn timed_out(e: &std::io::Error) -> bool {
    matches!(
        e.kind(),
        std::io::ErrorKind::TimedOut | std::io::ErrorKind::WouldBlock
    )
}

/// The message for a download that got no answer for `secs` seconds.
fn timeout_message(url: &str, secs: f64) -> Error {
    Error::input(format!(
        "cannot download {url}: the server did not answer for {secs} s (timed out); try again later, give more time with --download-timeout SECS, or pass a local file"
    ))
}

/// Downloads book `id` (or finds it in the cache) and returns the path of the stripped text.
///
/// # Errors
/// A bad `--download-timeout`; a book the mirror does not have; a mirror that cannot be
/// reached, answers with an error or stays silent for longer than the timeout.
pub fn gutenberg(id: u32, source: &GutenbergSource) -> Result<PathBuf> {
    let (cache, mirror, secs) = (
        source.cache.as_deref(),
        source.mirror.as_deref(),
        source.download_timeout,
    );
    // At most a year: a deadline an instant plus it away cannot overflow.
    if !(secs > 0.0 && secs <= 31_536_000.0) {
        bail!("--download-timeout must be a positive number of seconds (at most a year, 31536000), got {secs}");
    }
    let limit = std::time::Duration::from_secs_f64(secs);
    let dir = cache_dir(cache);
    let path = dir.join(format!("gutenberg-{id}.txt"));
    if path.is_file() {
        return Ok(path);
    }
    let env_mirror = std::env::var("CHARRNN_GUTENBERG_MIRROR")
        .ok()
        .filter(|m| !m.is_empty());
    let base = mirror
        .map(str::to_string)
        .or(env_mirror)
        .unwrap_or_else(|| DEFAULT_MIRROR.into());
    let url = format!("{}/cache/epub/{id}/pg{id}.txt", base.trim_end_matches('/'));
    eprintln!("charrnn: downloading {url}");
    let agent = ureq::AgentBuilder::new()
        .timeout_connect(limit)
        .timeout_read(limit)
        .build();
    let resp = match agent.get(&url).call() {
        Ok(r) => r,
        Err(ureq::Error::Status(404, _)) => bail!("Project Gutenberg has no plain-text book {id} ({url} was not found); check the number"),
        Err(ureq::Error::Status(code, _)) => bail!("cannot download {url}: the server answered {code}; try again later or pass a local file"),
        Err(ureq::Error::Transport(t))
            if std::error::Error::source(&t)
                .and_then(|e| e.downcast_ref::<std::io::Error>())
                .is_some_and(timed_out) =>
        {
            return Err(timeout_message(&url, secs))
        }
        Err(ureq::Error::Transport(t)) => bail!(
            "cannot download {url} ({}); without a network, download the book yourself and pass the local file: charrnn train FILE",
            t.message().map_or_else(|| t.kind().to_string(), str::to_string)
        ),
    };
    let mut bytes = Vec::new();
    resp.into_reader()
        .take(256 << 20)
        .read_to_end(&mut bytes)
        .map_err(|e| {
            if timed_out(&e) {
                return timeout_message(&url, secs);
            }
            Error::input(format!(
                "cannot download {url} ({e}); pass a local file instead"
            ))
        })?;
    let lossy = crate::data::Decoding {
        lossy: true,
        encoding: None,
    };
    // The rules' advice names reading flags `fetch` does not have: say what the answer was.
    let text = crate::data::decode_text(&bytes, &url, &lossy).map_err(|e| {
        let why = super::text::NotText::of(&e, &url).map_or(e.msg, |n| n.reason);
        Error::input(format!(
            "the mirror's answer for book {id} is not a text ({url} {why}); check the number and --mirror, or download the book yourself and pass the local file"
        ))
    })?;
    let (book, stripped) = strip_gutenberg(&text);
    if !stripped {
        eprintln!("charrnn: no '*** START OF' marker in book {id}: kept the whole text");
    }
    std::fs::create_dir_all(&dir)
        .map_err(|e| Error::io(format!("cannot create cache folder {}", dir.display()), e))?;
    crate::atomic::write(&path, |w| w.write_all(book.as_bytes()))?;
    Ok(path)
}

/// `charrnn fetch gutenberg ID`: downloads (or finds in the cache) and prints the path.
pub fn run(a: &GutenbergArgs) -> Result<()> {
    let path = gutenberg(a.id, &a.source)?;
    println!("{}", path.display());
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keeps_only_the_book_between_the_markers() {
        let t = "Header\r\n*** START OF THE PROJECT GUTENBERG EBOOK X ***\r\n\r\nOnce upon a time.\r\nThe end.\r\n\r\n*** END OF THE PROJECT GUTENBERG EBOOK X ***\r\nLicence\r\n";
        let (book, ok) = strip_gutenberg(t);
        assert!(ok);
        assert_eq!(book, "Once upon a time.\r\nThe end.\n");
        assert_eq!(strip_gutenberg("no markers").0, "no markers");
    }
}
