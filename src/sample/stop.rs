//! Stop strings, as in the OpenAI API: generation ends when the generated text ends with one of
//! them, and the stop string itself is not part of the output. While streaming, characters that
//! could still be the start of a stop string are held back until they cannot.
//!
//! Owns the matching and the holding back. Does not own generation (see `stream`).

/// The one rule for stop strings, shared by `sample --stop`, the server's `stop` field and
/// `Settings::stop`: why `stops` cannot be used, or None. An empty string is refused: every
/// text ends with it, so it would end a sample before its first character.
pub fn refused(stops: &[String]) -> Option<&'static str> {
    stops
        .iter()
        .any(String::is_empty)
        .then_some("must not be empty (every text ends with the empty string)")
}

/// The stop strings of one stream and the characters held back so far.
#[derive(Clone, Debug, Default)]
pub struct StopMatcher {
    stops: Vec<String>,
    held: String,
}

/// What one more generated character means.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Matched {
    /// This text (possibly empty) is final and can be shown; the rest is held back.
    Release(String),
    /// The text now ends with a stop string: this text, before it, is the last to show.
    Stop(String),
}

impl StopMatcher {
    /// A matcher for `stops` (empty strings, which `refused` keeps out, are ignored).
    pub fn new(stops: &[String]) -> StopMatcher {
        StopMatcher {
            stops: stops.iter().filter(|s| !s.is_empty()).cloned().collect(),
            held: String::new(),
        }
    }

    /// Whether there are any stop strings at all.
    pub fn is_empty(&self) -> bool {
        self.stops.is_empty()
    }

    /// Takes the next generated character.
    pub fn push(&mut self, c: char) -> Matched {
        if self.stops.is_empty() {
            return Matched::Release(c.to_string());
        }
        self.held.push(c);
        if let Some(stop) = self.stops.iter().find(|s| self.held.ends_with(s.as_str())) {
            let before = self.held[..self.held.len() - stop.len()].to_string();
            self.held.clear();
            return Matched::Stop(before);
        }
        // Keep the longest tail that is still the start of some stop string.
        let keep_from = self
            .held
            .char_indices()
            .map(|(i, _)| i)
            .find(|&i| {
                let tail = &self.held[i..];
                self.stops.iter().any(|s| s.starts_with(tail))
            })
            .unwrap_or(self.held.len());
        let released = self.held[..keep_from].to_string();
        self.held.drain(..keep_from);
        Matched::Release(released)
    }

    /// The held-back characters, when generation ends without a stop string.
    pub fn flush(&mut self) -> String {
        std::mem::take(&mut self.held)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn run(stops: &[&str], text: &str) -> (String, bool) {
        let mut m = StopMatcher::new(&stops.iter().map(|s| s.to_string()).collect::<Vec<_>>());
        let mut out = String::new();
        for c in text.chars() {
            match m.push(c) {
                Matched::Release(s) => out.push_str(&s),
                Matched::Stop(s) => {
                    out.push_str(&s);
                    return (out, true);
                }
            }
        }
        out.push_str(&m.flush());
        (out, false)
    }

    #[test]
    fn stops_at_the_first_stop_string_and_leaves_it_out() {
        assert_eq!(run(&["\n"], "Anna\nBea\n"), ("Anna".into(), true));
        assert_eq!(run(&["ab"], "xaab"), ("xa".into(), true));
        assert_eq!(
            run(&["END", "\n\n"], "one\ntwo\n\nthree"),
            ("one\ntwo".into(), true)
        );
        assert_eq!(
            run(&["zz"], "no stop here z"),
            ("no stop here z".into(), false)
        );
        assert_eq!(run(&[], "plain"), ("plain".into(), false));
        assert_eq!(run(&["春"], "冬夏春秋"), ("冬夏".into(), true));
    }

    #[test]
    fn holds_back_only_what_could_still_be_a_stop_string() {
        let mut m = StopMatcher::new(&["abc".to_string()]);
        assert_eq!(m.push('x'), Matched::Release("x".into()));
        assert_eq!(m.push('a'), Matched::Release(String::new()));
        assert_eq!(m.push('b'), Matched::Release(String::new()));
        assert_eq!(m.push('x'), Matched::Release("abx".into()));
        assert_eq!(m.push('a'), Matched::Release(String::new()));
        assert_eq!(m.flush(), "a");
    }
}
