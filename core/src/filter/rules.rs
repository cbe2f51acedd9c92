//! SpamAssassin's `.cf` rule language, read into rule definitions.
//!
//! Directives understood: header, body, rawbody, uri, full, mimeheader, meta, describe,
//! score, tflags, if/ifplugin/else/endif, include, required_score, whitelist_from,
//! welcomelist_from, blacklist_from, blocklist_from, rewrite_header, add_header,
//! report_safe. Everything else is counted by name and skipped, never fatal.

use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};

/// Where a rule looks.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Kind {
    Header,
    Body,
    RawBody,
    Uri,
    Full,
    MimeHeader,
    Meta,
}

/// What a header rule reads: a header, or one of SpamAssassin's pseudo-headers (`ALL`,
/// `ToCc`, `EnvelopeFrom`, `MESSAGEID`), with the modifiers written after it
/// (`:raw`, `:addr`, `:name`, `:first`, `:last`).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct HeaderSource {
    pub name: String,
    pub modifiers: Vec<String>,
}

impl HeaderSource {
    /// Reads `Name:mod1:mod2`.
    pub fn parse(text: &str) -> HeaderSource {
        let mut parts = text.split(':');
        let name = parts.next().unwrap_or_default().to_string();
        let modifiers = parts
            .filter(|m| !m.is_empty())
            .map(str::to_ascii_lowercase)
            .collect();
        HeaderSource { name, modifiers }
    }

    pub fn has(&self, modifier: &str) -> bool {
        self.modifiers.iter().any(|m| m == modifier)
    }
}

/// The test of a rule.
#[derive(Debug, Clone, PartialEq)]
pub enum Test {
    /// A Perl regex (already split into pattern and flags).
    Regex {
        pattern: String,
        flags: String,
        negate: bool,
        source: Option<HeaderSource>,
        if_unset: Option<String>,
    },
    /// `exists:Name`.
    Exists(String),
    /// `eval:function(args)`.
    Eval { function: String, args: Vec<String> },
    /// A meta expression.
    Meta(String),
}

#[derive(Debug, Clone, PartialEq)]
pub struct RuleDef {
    pub name: String,
    pub kind: Kind,
    pub test: Test,
}

/// Everything read from a set of `.cf` files.
#[derive(Debug, Default)]
pub struct RuleSource {
    pub rules: Vec<RuleDef>,
    /// Each rule's four score sets: without Bayes and network tests, with network tests,
    /// with Bayes, with both (one value given: all four).
    pub scores: HashMap<String, [f64; 4]>,
    pub describes: HashMap<String, String>,
    pub tflags: HashMap<String, Vec<String>>,
    pub required_score: Option<f64>,
    pub whitelist_from: Vec<String>,
    pub blacklist_from: Vec<String>,
    /// The FreeMail plugin's `freemail_domains` (`*.example` for subdomains).
    pub freemail_domains: Vec<String>,
    pub actions: super::actions::Actions,
    /// `report_safe` as read (not applied: spam is filed in Junk intact).
    pub report_safe: Option<u8>,
    pub replace_tags: super::replace_tags::ReplaceTags,
    /// Directives skipped, by name, with how often.
    pub skipped: BTreeMap<String, usize>,
    pub files: usize,
}

/// SpamAssassin plugins whose tests Gannet does not provide in any form, so that the
/// rules' own fallbacks for their absence apply (`if !plugin(...)`): DKIM signatures are
/// not verified (the fallbacks read `__DKIM_EXISTS` instead of `DKIM_VALID`). The other
/// plugins count as present: their evals are implemented natively, answered by the DNS
/// checks, or reported as not implemented.
const ABSENT_PLUGINS: &[&str] = &["Mail::SpamAssassin::Plugin::DKIM"];

fn plugin_present(name: &str) -> bool {
    !ABSENT_PLUGINS.contains(&name.trim())
}

/// The SpamAssassin version whose rules Gannet reads, as its `version` tests see it
/// (4.0.1). Rules written for older versions are fenced off with `if (version < 4.0)`.
const SPAMASSASSIN_VERSION: f64 = 4.000001;
/// The Perl version `perl_version` tests see (Debian 12's 5.36).
const PERL_VERSION: f64 = 5.036000;

/// `version OP NUMBER` or `perl_version OP NUMBER` compared as SpamAssassin does; None
/// for any other test.
fn version_test(test: &str) -> Option<bool> {
    let test = test.trim();
    let (ours, rest) = if let Some(rest) = test.strip_prefix("perl_version") {
        (PERL_VERSION, rest)
    } else {
        (SPAMASSASSIN_VERSION, test.strip_prefix("version")?)
    };
    let rest = rest.trim_start();
    let operator = [">=", "<=", "==", "!=", ">", "<"]
        .into_iter()
        .find(|op| rest.starts_with(op))?;
    let number: f64 = rest.get(operator.len()..)?.trim().parse().ok()?;
    Some(match operator {
        ">=" => ours >= number,
        "<=" => ours <= number,
        "==" => ours == number,
        "!=" => ours != number,
        ">" => ours > number,
        _ => ours < number,
    })
}

/// The value of an `if` condition: `plugin(NAME)` as [`plugin_present`] says, `version`
/// and `perl_version` compared with [`SPAMASSASSIN_VERSION`] and [`PERL_VERSION`], any
/// other test (`can(...)`) true, combined with `!`,
/// `&&`, `||` and parentheses. A condition it cannot read counts as true.
fn condition(text: &str) -> bool {
    /// A recursive-descent reader over the condition's text: `rest` is what is left.
    struct Reader<'a> {
        rest: &'a str,
    }
    impl Reader<'_> {
        fn eat(&mut self, token: &str) -> bool {
            self.rest = self.rest.trim_start();
            match self.rest.strip_prefix(token) {
                Some(rest) => {
                    self.rest = rest;
                    true
                }
                None => false,
            }
        }
        fn or(&mut self) -> bool {
            let mut value = self.and();
            while self.eat("||") {
                value |= self.and();
            }
            value
        }
        fn and(&mut self) -> bool {
            let mut value = self.unary();
            while self.eat("&&") {
                value &= self.unary();
            }
            value
        }
        fn unary(&mut self) -> bool {
            if self.eat("!") {
                return !self.unary();
            }
            if self.eat("(") {
                let value = self.or();
                self.eat(")");
                return value;
            }
            if self.eat("plugin(") {
                let (name, rest) = self.rest.split_once(')').unwrap_or((self.rest, ""));
                self.rest = rest;
                return plugin_present(name);
            }
            // Any other test up to the next operator or closing parenthesis: true. A
            // parenthesized call such as can(...) is read whole.
            let mut depth = 0;
            let end = self.rest.find(|c: char| match c {
                '(' => {
                    depth += 1;
                    false
                }
                ')' if depth > 0 => {
                    depth -= 1;
                    false
                }
                ')' | '&' | '|' => depth == 0,
                _ => false,
            });
            // `end` is the offset of an ASCII character, so the split cannot fail.
            let test = end
                .and_then(|end| self.rest.get(..end))
                .unwrap_or(self.rest);
            self.rest = end.and_then(|end| self.rest.get(end..)).unwrap_or_default();
            version_test(test).unwrap_or(true)
        }
    }
    Reader { rest: text }.or()
}

impl RuleSource {
    /// Reads text in `.cf` syntax; `base` resolves `include`s.
    pub fn add_text(&mut self, text: &str, base: Option<&Path>) {
        self.files += 1;
        // A stack of conditional blocks: true while their lines apply.
        let mut active: Vec<bool> = Vec::new();
        for raw in text.lines() {
            let line = strip_comment(raw).trim();
            if line.is_empty() {
                continue;
            }
            let (directive, rest) = split_word(line);
            let directive = directive.to_ascii_lowercase();
            match directive.as_str() {
                "ifplugin" => {
                    active.push(plugin_present(rest.trim()));
                    continue;
                }
                "if" => {
                    active.push(condition(rest));
                    continue;
                }
                "else" => {
                    if let Some(top) = active.last_mut() {
                        *top = !*top;
                    }
                    continue;
                }
                "endif" => {
                    active.pop();
                    continue;
                }
                _ => {}
            }
            if active.iter().any(|on| !on) {
                continue;
            }
            self.directive(&directive, rest.trim(), base);
        }
    }

    pub fn add_file(&mut self, path: &Path) -> std::io::Result<()> {
        let text = std::fs::read(path)?;
        let text = String::from_utf8_lossy(&text);
        self.add_text(&text, path.parent());
        Ok(())
    }

    /// Reads every `*.cf` file of a directory, in name order.
    pub fn add_dir(&mut self, dir: &Path) -> std::io::Result<()> {
        let mut files: Vec<PathBuf> = std::fs::read_dir(dir)?
            .filter_map(|e| e.ok().map(|e| e.path()))
            .filter(|p| p.extension().is_some_and(|e| e == "cf"))
            .collect();
        files.sort();
        for f in files {
            self.add_file(&f)?;
        }
        Ok(())
    }

    fn skip(&mut self, what: &str) {
        *self.skipped.entry(what.to_string()).or_default() += 1;
    }

    fn directive(&mut self, directive: &str, rest: &str, base: Option<&Path>) {
        let (name, def) = split_word(rest);
        let def = def.trim();
        match directive {
            "header" => self.header_rule(name, def),
            "body" | "rawbody" | "uri" | "full" => {
                let kind = match directive {
                    "body" => Kind::Body,
                    "rawbody" => Kind::RawBody,
                    "uri" => Kind::Uri,
                    _ => Kind::Full,
                };
                match parse_test(def, None) {
                    Some(test) => self.rules.push(RuleDef {
                        name: name.into(),
                        kind,
                        test,
                    }),
                    None => self.skip(&format!("{directive}: unparsable")),
                }
            }
            "mimeheader" => {
                let (header, test) = split_header_test(def);
                match (header, test.and_then(|t| parse_test(t, None))) {
                    (
                        Some(h),
                        Some(Test::Regex {
                            pattern,
                            flags,
                            negate,
                            ..
                        }),
                    ) => self.rules.push(RuleDef {
                        name: name.into(),
                        kind: Kind::MimeHeader,
                        test: Test::Regex {
                            pattern,
                            flags,
                            negate,
                            source: Some(HeaderSource::parse(&h)),
                            if_unset: None,
                        },
                    }),
                    _ => self.skip("mimeheader: unparsable"),
                }
            }
            "meta" => self.rules.push(RuleDef {
                name: name.into(),
                kind: Kind::Meta,
                test: Test::Meta(def.to_string()),
            }),
            "describe" => {
                self.describes.insert(name.into(), def.to_string());
            }
            "score" => {
                let values: Vec<f64> = def
                    .split_whitespace()
                    .filter_map(|v| v.parse().ok())
                    .collect();
                // Four values are the four score sets; one is all of them.
                match values.as_slice() {
                    [a, b, c, d, ..] => {
                        self.scores.insert(name.into(), [*a, *b, *c, *d]);
                    }
                    [v, ..] => {
                        self.scores.insert(name.into(), [*v; 4]);
                    }
                    [] => self.skip("score: no value"),
                }
            }
            "tflags" => {
                let flags = def.split_whitespace().map(str::to_string).collect();
                self.tflags.insert(name.into(), flags);
            }
            "required_score" | "required_hits" => self.required_score = name.parse().ok(),
            "whitelist_from" | "welcomelist_from" => self
                .whitelist_from
                .extend(rest.split_whitespace().map(str::to_lowercase)),
            "blacklist_from" | "blocklist_from" => self
                .blacklist_from
                .extend(rest.split_whitespace().map(str::to_lowercase)),
            "rewrite_header" if name.eq_ignore_ascii_case("subject") => {
                self.actions.subject_tag = Some(def.to_string())
            }
            "include" => {
                let path = base.map_or_else(|| PathBuf::from(rest), |b| b.join(rest));
                if self.add_file(&path).is_err() {
                    self.skip("include: unreadable");
                }
            }
            "add_header" => {
                if !self.actions.add_header(rest) {
                    self.skip("add_header: unparsable");
                }
            }
            "report_safe" => self.report_safe = name.parse().ok(),
            "freemail_domains" => self
                .freemail_domains
                .extend(rest.split_whitespace().map(str::to_ascii_lowercase)),
            "lang" | "priority" | "test" | "rewrite_header" => {}
            other => {
                if !self.replace_tags.directive(other, name, def) {
                    self.skip(other)
                }
            }
        }
    }

    fn header_rule(&mut self, name: &str, def: &str) {
        if let Some(eval) = def.strip_prefix("eval:") {
            if let Some(test) = parse_eval(eval) {
                self.rules.push(RuleDef {
                    name: name.into(),
                    kind: Kind::Header,
                    test,
                });
            } else {
                self.skip("header: bad eval");
            }
            return;
        }
        if let Some(header) = def.strip_prefix("exists:") {
            self.rules.push(RuleDef {
                name: name.into(),
                kind: Kind::Header,
                test: Test::Exists(header.trim().to_string()),
            });
            return;
        }
        let (header, test) = split_header_test(def);
        let (Some(header), Some(test_text)) = (header, test) else {
            self.skip("header: unparsable");
            return;
        };
        let source = HeaderSource::parse(&header);
        match parse_test(test_text, Some(source)) {
            Some(test) => self.rules.push(RuleDef {
                name: name.into(),
                kind: Kind::Header,
                test,
            }),
            None => self.skip("header: unparsable"),
        }
    }
}

fn strip_comment(line: &str) -> &str {
    // `#` starts a comment unless escaped (`\#`, used inside regexes).
    let mut previous = None;
    let starts_comment = |c: char| {
        let comment = c == '#' && previous != Some('\\');
        previous = Some(c);
        comment
    };
    line.split_once(starts_comment)
        .map_or(line, |(code, _comment)| code)
}

/// The first word and the rest, which starts with the white space after the word.
fn split_word(s: &str) -> (&str, &str) {
    let s = s.trim_start();
    let end = s.find(char::is_whitespace).unwrap_or(s.len());
    s.split_at_checked(end).unwrap_or((s, ""))
}

/// `Subject =~ /re/` → ("Subject", "=~ /re/").
fn split_header_test(def: &str) -> (Option<String>, Option<&str>) {
    let (header, rest) = split_word(def);
    if header.is_empty() {
        return (None, None);
    }
    (Some(header.to_string()), Some(rest.trim()))
}

/// A test: `/re/flags`, `m{re}flags`, `=~ ...`, `!~ ...`, `eval:...`, with `[if-unset: x]`.
fn parse_test(text: &str, source: Option<HeaderSource>) -> Option<Test> {
    let text = text.trim();
    if let Some(eval) = text.strip_prefix("eval:") {
        return parse_eval(eval);
    }
    let (negate, text) = if let Some(t) = text.strip_prefix("!~") {
        (true, t.trim_start())
    } else if let Some(t) = text.strip_prefix("=~") {
        (false, t.trim_start())
    } else {
        (false, text)
    };
    let (regex_part, if_unset) = match text.rsplit_once("[if-unset:") {
        Some((regex, unset)) => {
            let v = unset.trim().trim_end_matches(']').trim().to_string();
            (regex.trim(), Some(v))
        }
        None => (text, None),
    };
    let (pattern, flags) = split_perl_regex(regex_part)?;
    Some(Test::Regex {
        pattern,
        flags,
        negate,
        source,
        if_unset,
    })
}

/// `/re/flags` or `m{re}flags` (any delimiter after m) → (re, flags).
pub fn split_perl_regex(text: &str) -> Option<(String, String)> {
    let text = text.trim();
    let (open, body) = if let Some(rest) = text.strip_prefix('m') {
        let mut chars = rest.chars();
        let open = chars.next()?;
        (open, chars.as_str())
    } else if let Some(rest) = text.strip_prefix('/') {
        ('/', rest)
    } else {
        return None;
    };
    let close = match open {
        '{' => '}',
        '(' => ')',
        '[' => ']',
        '<' => '>',
        c => c,
    };
    let (regex, flags) = body.rsplit_once(close)?;
    let flags = flags.trim().to_string();
    if !flags.chars().all(|c| "imsxgo".contains(c)) {
        return None;
    }
    Some((regex.to_string(), flags))
}

fn parse_eval(text: &str) -> Option<Test> {
    let (function, args) = text.split_once('(')?;
    let function = function.trim().to_string();
    // A `)` only before the `(` (found by fuzzing: "eval:f)(") is no eval call.
    let (args, _after) = args.rsplit_once(')')?;
    let args = args
        .split(',')
        .map(|a| a.trim().trim_matches(['\'', '"']).to_string())
        .filter(|a| !a.is_empty())
        .collect();
    Some(Test::Eval { function, args })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Found by the spam_rules fuzz target: an eval whose `)` comes before its `(`.
    #[test]
    fn an_eval_closed_before_it_opens_is_ignored() {
        assert_eq!(parse_eval("su)x(y"), None);
        assert_eq!(parse_eval(")("), None);
        let mut source = RuleSource::default();
        source.add_text("header GANNET_X eval:su)(\nscore GANNET_X 1.0\n", None);
    }

    #[test]
    fn reads_rules_scores_and_conditionals() {
        let mut src = RuleSource::default();
        src.add_text(
            r#"
# a comment
header   SUBJ_FREE   Subject =~ /\bfree\b/i
header   NO_SUBJ     Subject !~ /./ [if-unset: ]
header   HAS_XM      exists:X-Mailer
header   FROM_NAME   From:name =~ m{^Admin}
header   MISSING_TO  eval:check_for_missing_to_header()
body     CLICK       /click (?:here|now)\#x/
uri      BIZ         /\.biz\b/i
meta     BOTH        SUBJ_FREE && (CLICK || BIZ)
score    SUBJ_FREE   1.5
score    BIZ         0 0.8 0 0.8
describe BOTH        Free and click
tflags   CLICK       multiple maxhits=3
ifplugin Mail::SpamAssassin::Plugin::Foo
body     IN_PLUGIN   /x/
endif
if !plugin(Mail::SpamAssassin::Plugin::Foo)
body     FALLBACK    /y/
else
body     OTHERWISE   /z/
endif
ifplugin Mail::SpamAssassin::Plugin::DKIM
body     NEEDS_DKIM  /d/
endif
if !(!plugin(Mail::SpamAssassin::Plugin::DKIM)) && version >= 3.004000
body     DKIM_TWICE  /d/
endif
if !plugin(Mail::SpamAssassin::Plugin::DKIM) && (can(Mail::SpamAssassin::Conf::feature_x) || 0)
body     NO_DKIM     /e/
endif
loadplugin Foo
bayes_auto_learn 0
"#,
            None,
        );
        let names: Vec<&str> = src.rules.iter().map(|r| r.name.as_str()).collect();
        assert_eq!(
            names,
            [
                "SUBJ_FREE",
                "NO_SUBJ",
                "HAS_XM",
                "FROM_NAME",
                "MISSING_TO",
                "CLICK",
                "BIZ",
                "BOTH",
                "IN_PLUGIN",
                "OTHERWISE",
                "NO_DKIM"
            ]
        );
        assert_eq!(src.scores["BIZ"], [0.0, 0.8, 0.0, 0.8]);
        assert_eq!(src.scores["SUBJ_FREE"], [1.5; 4]);
        assert_eq!(src.skipped["loadplugin"], 1);
        assert_eq!(src.skipped["bayes_auto_learn"], 1);
        match &src.rules[1].test {
            Test::Regex {
                negate, if_unset, ..
            } => {
                assert!(*negate);
                assert_eq!(if_unset.as_deref(), Some(""));
            }
            t => panic!("{t:?}"),
        }
        match &src.rules[3].test {
            Test::Regex {
                pattern,
                source: Some(source),
                ..
            } => {
                assert_eq!(pattern, "^Admin");
                assert!(source.has("name") && !source.has("raw"));
            }
            t => panic!("{t:?}"),
        }
        match &src.rules[5].test {
            Test::Regex { pattern, .. } => assert_eq!(pattern, "click (?:here|now)\\#x"),
            t => panic!("{t:?}"),
        }
    }

    #[test]
    fn perl_regex_forms() {
        assert_eq!(
            split_perl_regex("/a\\/b/i"),
            Some(("a\\/b".into(), "i".into()))
        );
        assert_eq!(
            split_perl_regex("m{a/b}s"),
            Some(("a/b".into(), "s".into()))
        );
        assert_eq!(split_perl_regex("m!x!"), Some(("x".into(), "".into())));
        assert_eq!(split_perl_regex("nope"), None);
    }

    /// Rules come from files an administrator installs, often with non-ASCII text in
    /// regexes and descriptions: multi-byte characters next to the delimiters split at.
    #[test]
    fn multi_byte_characters_in_rules() {
        assert_eq!(
            split_perl_regex("/prix réduit€/i"),
            Some(("prix réduit€".into(), "i".into()))
        );
        assert_eq!(split_perl_regex("m€a€"), Some(("a".into(), "".into())));
        assert_eq!(split_perl_regex("m«é»"), None);
        assert_eq!(split_perl_regex("/é/é"), None);
        assert_eq!(
            strip_comment("body X /é\\#é/ #é commentaire"),
            "body X /é\\#é/ "
        );
        assert_eq!(strip_comment("é#"), "é");
        assert_eq!(split_word("é\u{a0}ü"), ("é", "\u{a0}ü"));
        assert_eq!(split_word("\u{3000}é"), ("é", ""));
        assert_eq!(
            parse_eval("é(«x», 'ü')"),
            Some(Test::Eval {
                function: "é".into(),
                args: vec!["«x»".into(), "ü".into()]
            })
        );
        assert_eq!(parse_eval("é)é(é"), None);
        match parse_test("=~ /é/ [if-unset: ü]", None) {
            Some(Test::Regex {
                pattern, if_unset, ..
            }) => {
                assert_eq!(pattern, "é");
                assert_eq!(if_unset.as_deref(), Some("ü"));
            }
            t => panic!("{t:?}"),
        }
        // Multi-byte white space (no-break, ideographic) and operators in conditions.
        assert!(condition("\u{a0}plugin(é)"));
        assert!(condition(
            "\u{3000}!\u{a0}plugin(Mail::SpamAssassin::Plugin::DKIM)"
        ));
        assert!(!condition(
            "\u{3000}plugin(Mail::SpamAssassin::Plugin::DKIM)\u{a0}"
        ));
        assert!(condition("é(ü) && ü||é"));
        assert!(!condition(
            "é(ü)\u{a0}&& plugin(Mail::SpamAssassin::Plugin::DKIM)"
        ));
        assert!(condition("plugin(é"));
        // Version tests compare with SpamAssassin 4.0.1 and Perl 5.36.
        assert!(condition("version >= 4.000000"));
        assert!(!condition("(version < 4.000000)"));
        assert!(condition("version > 3.004 && perl_version >= 5.008"));
        assert!(!condition("perl_version < 5.010000"));
        assert!(condition("version >= é"), "unreadable: true");
        let mut source = RuleSource::default();
        source.add_text(
            "if\u{a0}é\nbody\u{a0}É_X /é/\nendif\nheader É_Y Subject =~ /ü/ # ß\nscore É_Y 1.0\n",
            None,
        );
        let names: Vec<&str> = source.rules.iter().map(|r| r.name.as_str()).collect();
        assert_eq!(names, ["É_X", "É_Y"]);
    }
}
