//! Scanning a message: every rule that applies, the total score, and the verdict headers.

use std::collections::HashMap;

use super::compile::{CompiledTest, Ruleset};
use super::eval;
use super::rules::{HeaderSource, Kind};
use crate::mime::view::MessageView;

#[derive(Debug, Clone, PartialEq)]
pub struct Hit {
    pub name: String,
    pub score: f64,
    pub describe: String,
}

/// The outcome of one scan: the total and the rules that fired (sub-rules excluded).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Verdict {
    pub score: f64,
    pub hits: Vec<Hit>,
}

impl Verdict {
    /// `X-Spam-*` headers for a recipient whose threshold is `required` (None: the
    /// filter is off or the sender whitelisted, so the message is not spam).
    pub fn headers(&self, required: Option<f64>) -> String {
        let spam = required.is_some_and(|r| self.score >= r);
        let stars = "*".repeat(self.score.clamp(0.0, 50.0) as usize);
        let tests: Vec<&str> = self.hits.iter().map(|h| h.name.as_str()).collect();
        let mut h = String::new();
        if spam {
            h.push_str("X-Spam-Flag: YES\r\n");
        }
        h.push_str(&format!("X-Spam-Score: {:.1}\r\n", self.score));
        h.push_str(&format!("X-Spam-Level: {stars}\r\n"));
        let required = required.map_or_else(|| "none".to_string(), |r| format!("{r:.1}"));
        h.push_str(&format!(
            "X-Spam-Status: {}, score={:.1} required={required} tests={}\r\n",
            if spam { "Yes" } else { "No" },
            self.score,
            if tests.is_empty() {
                "none".to_string()
            } else {
                tests.join(",")
            }
        ));
        h
    }
}

fn header_text(view: &MessageView, source: &HeaderSource) -> Option<String> {
    let join = |it: &mut dyn Iterator<Item = String>| {
        let v: Vec<String> = it.collect();
        (!v.is_empty()).then(|| v.join("\n"))
    };
    match source {
        HeaderSource::All => join(
            &mut view
                .headers
                .iter()
                .map(|f| format!("{}: {}", f.name, f.raw)),
        ),
        HeaderSource::ToCc => join(
            &mut view
                .headers
                .iter()
                .filter(|f| f.name.eq_ignore_ascii_case("To") || f.name.eq_ignore_ascii_case("Cc"))
                .map(|f| f.value.clone()),
        ),
        HeaderSource::EnvelopeFrom => join(
            &mut view
                .header_values("Return-Path")
                .map(|f| address_of(&f.value)),
        ),
        HeaderSource::Named { name, modifier } => {
            join(
                &mut view.header_values(name).map(|f| match modifier.as_deref() {
                    Some("raw") => f.raw.clone(),
                    Some("addr") => address_of(&f.value),
                    Some("name") => name_of(&f.value),
                    _ => f.value.clone(),
                }),
            )
        }
    }
}

fn address_of(value: &str) -> String {
    match (value.rfind('<'), value.rfind('>')) {
        (Some(a), Some(b)) if a < b => value[a + 1..b].trim().to_string(),
        _ => value.split(',').next().unwrap_or("").trim().to_string(),
    }
}

fn name_of(value: &str) -> String {
    match value.rfind('<') {
        Some(a) => value[..a].trim().trim_matches('"').to_string(),
        None => String::new(),
    }
}

impl Ruleset {
    /// Scans a raw message.
    pub fn scan(&self, raw: &[u8]) -> Verdict {
        let view = MessageView::new(raw);
        self.scan_view(&view, raw)
    }

    pub fn scan_view(&self, view: &MessageView, raw: &[u8]) -> Verdict {
        let mut hits = vec![0u32; self.rules.len()];
        let mut candidates = Vec::new();
        // Texts scanned by the prefilter, and the pieces each rule is matched against.
        let uri_text = view.uris.join("\n");
        let full = String::from_utf8_lossy(raw);
        for (kind, text) in [
            (Kind::Body, view.body.as_str()),
            (Kind::RawBody, view.rawbody.as_str()),
            (Kind::Uri, uri_text.as_str()),
            (Kind::Full, &*full),
        ] {
            candidates.clear();
            self.candidates(kind, text, &mut candidates);
            for &i in &candidates {
                let CompiledTest::Regex { matcher, .. } = &self.rules[i].test else {
                    continue;
                };
                hits[i] = u32::from(matcher.is_match(text));
            }
        }
        // Header rules: one prefilter pass over every header (decoded and raw) names the
        // candidates; each header source is assembled once, however many rules read it.
        let header_block: String = view
            .headers
            .iter()
            .map(|f| format!("{}: {}\n{}\n", f.name, f.value, f.raw))
            .collect();
        candidates.clear();
        self.candidates(Kind::Header, &header_block, &mut candidates);
        let mut header_candidate = vec![false; self.rules.len()];
        for &i in &candidates {
            header_candidate[i] = true;
        }
        let mut header_texts: HashMap<&HeaderSource, Option<String>> = HashMap::new();
        for (i, rule) in self.rules.iter().enumerate() {
            if !self.active[i] {
                continue;
            }
            match (&rule.test, rule.kind) {
                (
                    CompiledTest::Regex {
                        matcher,
                        negate,
                        source: Some(source),
                        if_unset,
                    },
                    Kind::Header,
                ) => {
                    if !header_candidate[i] {
                        continue;
                    }
                    let text = header_texts
                        .entry(source)
                        .or_insert_with(|| header_text(view, source));
                    let text = match (text.as_deref(), if_unset) {
                        (Some(t), _) => t,
                        (None, Some(u)) => u.as_str(),
                        (None, None) => "",
                    };
                    hits[i] = u32::from(matcher.is_match(text) != *negate);
                }
                (
                    CompiledTest::Regex {
                        matcher,
                        negate,
                        source: Some(HeaderSource::Named { name, .. }),
                        ..
                    },
                    Kind::MimeHeader,
                ) => {
                    let found = view
                        .mime_headers
                        .iter()
                        .filter(|f| f.name.eq_ignore_ascii_case(name))
                        .any(|f| matcher.is_match(&f.value));
                    hits[i] = u32::from(found != *negate);
                }
                (CompiledTest::Exists(h), _) => {
                    // The pseudo-headers of header rules exist when what they stand for does.
                    let exists = |n: &str| view.header_values(n).next().is_some();
                    hits[i] = u32::from(match h.as_str() {
                        "ToCc" => exists("To") || exists("Cc"),
                        "EnvelopeFrom" => exists("Return-Path"),
                        "ALL" => !view.headers.is_empty(),
                        name => exists(name),
                    })
                }
                (CompiledTest::Eval { function, args }, _) => {
                    hits[i] =
                        u32::from(eval::run(function, args, view, &self.globals).unwrap_or(false));
                }
                _ => {}
            }
        }
        // Meta rules, each evaluated once, in any order of dependency.
        let mut memo: HashMap<usize, f64> = HashMap::new();
        for (i, rule) in self.rules.iter().enumerate() {
            if self.active[i] && matches!(rule.test, CompiledTest::Meta(_)) {
                let v = self.meta_value(i, &hits, &mut memo, 0);
                hits[i] = u32::from(v != 0.0);
            }
        }
        let mut verdict = Verdict::default();
        for (i, rule) in self.rules.iter().enumerate() {
            if hits[i] > 0 && !rule.name.starts_with("__") && rule.score != 0.0 {
                verdict.score += rule.score;
                verdict.hits.push(Hit {
                    name: rule.name.clone(),
                    score: rule.score,
                    describe: rule.describe.clone(),
                });
            }
        }
        verdict.hits.sort_by(|a, b| a.name.cmp(&b.name));
        verdict.score = (verdict.score * 1000.0).round() / 1000.0;
        verdict
    }

    fn meta_value(
        &self,
        i: usize,
        hits: &[u32],
        memo: &mut HashMap<usize, f64>,
        depth: usize,
    ) -> f64 {
        if let Some(v) = memo.get(&i) {
            return *v;
        }
        let CompiledTest::Meta(expr) = &self.rules[i].test else {
            return f64::from(hits[i]);
        };
        if depth > 32 {
            return 0.0;
        }
        memo.insert(i, 0.0);
        let v = expr.eval(&mut |name: &str| match self.by_name.get(name) {
            Some(&j) => self.meta_value(j, hits, memo, depth + 1),
            None => 0.0,
        });
        memo.insert(i, v);
        v
    }
}
