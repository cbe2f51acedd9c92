//! The rules' compile cache: what the first load of a ruleset found about each regex (the
//! engine that takes it and its prefilter gate), kept in the data directory under a key
//! made of the rules' content and this build, so that a start or `rules reload` with the
//! same rules skips the analysis and compiles each regex only when first used.
//!
//! The cache is an optimisation only: a file that is missing, unreadable, from another
//! build or for other rules is ignored (and replaced), never trusted.

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use super::compile::{Engine, Gate};

/// Bumped when what is cached, or how a gate is found, changes meaning.
const FORMAT: u32 = 1;

/// Cache files kept: the current rules' and a few earlier sets (a reload back to them).
const KEPT: usize = 4;

/// What the first load found about one regex (in the order the rules define them).
#[derive(Serialize, Deserialize)]
pub struct CachedRegex {
    pub engine: Engine,
    pub gate: Option<Gate>,
}

/// The analysis of a ruleset: per regex, in definition order, None where no engine takes
/// the pattern (the rule is skipped).
#[derive(Serialize, Deserialize, Default)]
pub struct Analysis {
    pub regexes: Vec<Option<CachedRegex>>,
}

/// The key of a ruleset's analysis: its regex inputs in order, the cache format, and this
/// executable (its size and modification time: another build may find other gates).
pub struct Key(blake3::Hasher);

impl Key {
    pub fn for_this_build() -> Key {
        let mut hasher = blake3::Hasher::new();
        hasher.update(&FORMAT.to_le_bytes());
        hasher.update(env!("CARGO_PKG_VERSION").as_bytes());
        if let Some(meta) = std::env::current_exe()
            .ok()
            .and_then(|exe| std::fs::metadata(exe).ok())
        {
            hasher.update(&meta.len().to_le_bytes());
            let modified = meta
                .modified()
                .ok()
                .and_then(|t| t.duration_since(std::time::UNIX_EPOCH).ok())
                .map_or(0, |d| d.as_nanos());
            hasher.update(&modified.to_le_bytes());
        }
        Key(hasher)
    }

    /// Adds one regex's inputs: its rule's kind, pattern and flags.
    pub fn add(&mut self, kind: &str, pattern: &str, flags: &str) {
        for part in [kind, pattern, flags] {
            self.0.update(&(part.len() as u64).to_le_bytes());
            self.0.update(part.as_bytes());
        }
    }

    fn file_name(&self) -> String {
        format!("{}.rules", self.0.finalize().to_hex())
    }
}

/// The cache directory inside a data directory.
pub fn dir_in(data_dir: &Path) -> PathBuf {
    data_dir.join("rules-cache")
}

/// The analysis kept under `key`, if there is one that reads.
pub fn read(dir: &Path, key: &Key) -> Option<Analysis> {
    let bytes = std::fs::read(dir.join(key.file_name())).ok()?;
    postcard::from_bytes(&bytes).ok()
}

/// Keeps an analysis under `key` (written whole, then renamed into place), and removes
/// all but the newest few files.
pub fn write(dir: &Path, key: &Key, analysis: &Analysis) -> std::io::Result<()> {
    std::fs::create_dir_all(dir)?;
    let bytes = postcard::to_allocvec(analysis).map_err(std::io::Error::other)?;
    let name = key.file_name();
    let partial = dir.join(format!("{name}.partial"));
    std::fs::write(&partial, bytes)?;
    std::fs::rename(&partial, dir.join(&name))?;
    let mut files: Vec<(std::time::SystemTime, PathBuf)> = std::fs::read_dir(dir)?
        .filter_map(Result::ok)
        .filter(|e| e.file_name().to_string_lossy().ends_with(".rules"))
        .filter_map(|e| Some((e.metadata().ok()?.modified().ok()?, e.path())))
        .collect();
    files.sort_by_key(|(modified, _)| std::cmp::Reverse(*modified));
    for (_, old) in files.into_iter().skip(KEPT) {
        // Another process may have removed it already.
        let _ = std::fs::remove_file(old);
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::super::rules::RuleSource;
    use super::super::{Ruleset, DEFAULT_RULES, HEURISTIC_RULES};

    /// Rules of every kind of gate: atoms, a PCRE2 look-behind, a letter-by-letter chain,
    /// an `html_text_match`, and a regex no engine takes.
    const RULES: &str = "body T_ATOM /cheap pills/i\nscore T_ATOM 1\n\
        body T_BEHIND /(?<!no )refund/\nscore T_BEHIND 1\n\
        body T_CHAIN /v[i1!|]a[g9]r[a@]/i\nscore T_CHAIN 1\n\
        body T_TITLE eval:html_text_match('title', 'Sale')\nscore T_TITLE 1\n\
        body T_BROKEN /(unclosed/\nscore T_BROKEN 1\n";

    fn source() -> RuleSource {
        let mut src = RuleSource::default();
        src.add_text(DEFAULT_RULES, None);
        src.add_text(HEURISTIC_RULES, None);
        src.add_text(RULES, None);
        src
    }

    fn hits(rules: &Ruleset, message: &[u8]) -> Vec<String> {
        let mut names: Vec<String> = rules
            .scan(message)
            .hits
            .into_iter()
            .map(|h| h.name)
            .collect();
        names.sort();
        names
    }

    /// The second load reads the first's analysis, compiles lazily, and scans alike; other
    /// rules are another key; a damaged file is ignored.
    #[test]
    fn a_second_load_uses_the_cache_and_scans_alike() {
        let dir = tempfile::tempdir().expect("temp dir");
        let first = Ruleset::compile_cached(source(), Some(dir.path()));
        assert!(!first.report.from_cache);
        let second = Ruleset::compile_cached(source(), Some(dir.path()));
        assert!(second.report.from_cache);
        assert_eq!(first.report.loaded, second.report.loaded);
        assert_eq!(first.report.backtracking, second.report.backtracking);
        assert_eq!(first.report.skipped, second.report.skipped);
        assert_eq!(first.report.chained, second.report.chained);
        let messages: [&[u8]; 3] = [
            b"Subject: offer\r\n\r\nCheap pills and a refund, v1agr@ now\r\n",
            b"Subject: offer\r\n\r\nno refund here\r\n",
            b"Subject: x\r\nContent-Type: text/html\r\n\r\n<title>Big Sale</title>hello\r\n",
        ];
        for message in messages {
            assert_eq!(hits(&first, message), hits(&second, message));
        }
        let found = hits(&second, messages[0]);
        for rule in ["T_ATOM", "T_BEHIND", "T_CHAIN"] {
            assert!(found.iter().any(|n| n == rule), "{rule}: {found:?}");
        }
        assert!(hits(&second, messages[2]).iter().any(|n| n == "T_TITLE"));

        let mut other = source();
        other.add_text("body T_MORE /another/\nscore T_MORE 1\n", None);
        assert!(
            !Ruleset::compile_cached(other, Some(dir.path()))
                .report
                .from_cache
        );

        for entry in std::fs::read_dir(dir.path()).expect("cache dir") {
            std::fs::write(entry.expect("entry").path(), b"not a cache").expect("damage");
        }
        let damaged = Ruleset::compile_cached(source(), Some(dir.path()));
        assert!(!damaged.report.from_cache);
        assert_eq!(hits(&damaged, messages[0]), hits(&first, messages[0]));
    }
}
