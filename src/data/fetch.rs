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

/// Downloads book `id` (or finds it in the cache) and returns the path of the stripped text.
pub fn gutenberg(id: u32, cache: Option<&Path>, mirror: Option<&str>) -> Result<PathBuf> {
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
        .timeout_connect(std::time::Duration::from_secs(15))
        .timeout_read(std::time::Duration::from_secs(60))
        .build();
    let resp = match agent.get(&url).call() {
        Ok(r) => r,
        Err(ureq::Error::Status(404, _)) => bail!("Project Gutenberg has no plain-text book {id} ({url} was not found); check the number"),
        Err(ureq::Error::Status(code, _)) => bail!("cannot download {url}: the server answered {code}; try again later or pass a local file"),
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
            Error::input(format!(
                "cannot download {url} ({e}); pass a local file instead"
            ))
        })?;
    let lossy = crate::data::Decoding {
        lossy: true,
        encoding: None,
    };
    let text = crate::data::decode_text(&bytes, &url, &lossy)?;
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
    let path = gutenberg(a.id, a.source.cache.as_deref(), a.source.mirror.as_deref())?;
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
