//! SpamAssassin's ReplaceTags: `<NAME>` tags in the regexes of the rules listed by
//! `replace_rules`, replaced by the `replace_tag` pattern of that name, with the optional
//! `<pre NAME>`, `<post NAME>` and `<inter NAME>` modifiers that put a `replace_pre`
//! pattern before every tag, a `replace_post` one after every tag, and a `replace_inter`
//! one between adjacent tags. The stock rules use it for obfuscation-tolerant words
//! ("<V><I><A><G><R><A>") and amounts of money ("<CURRENCY>").

use std::collections::{HashMap, HashSet};

/// The `replace_*` settings read from the rule files.
#[derive(Debug, Default)]
pub struct ReplaceTags {
    pub tags: HashMap<String, String>,
    pub pre: HashMap<String, String>,
    pub post: HashMap<String, String>,
    pub inter: HashMap<String, String>,
    pub rules: HashSet<String>,
}

/// Passes over a pattern: a tag's pattern may itself contain tags.
const MAX_PASSES: usize = 6;

impl ReplaceTags {
    /// Reads one `replace_*` directive; false if `directive` is not one.
    pub fn directive(&mut self, directive: &str, name: &str, value: &str) -> bool {
        let map = match directive {
            "replace_tag" => &mut self.tags,
            "replace_pre" => &mut self.pre,
            "replace_post" => &mut self.post,
            "replace_inter" => &mut self.inter,
            "replace_rules" => {
                self.rules.insert(name.to_string());
                self.rules
                    .extend(value.split_whitespace().map(str::to_string));
                return true;
            }
            // Gannet keeps the stock `<` and `>` delimiters.
            "replace_start" | "replace_end" => return true,
            _ => return false,
        };
        map.insert(name.to_string(), value.trim().to_string());
        true
    }

    /// The pattern of rule `rule` with its tags replaced (unchanged if the rule is not
    /// listed in `replace_rules`).
    pub fn apply(&self, rule: &str, pattern: &str) -> String {
        if !self.rules.contains(rule) {
            return pattern.to_string();
        }
        let mut re = pattern.to_string();
        for _ in 0..MAX_PASSES {
            let pre = take_modifier(&mut re, "pre").and_then(|n| self.pre.get(&n));
            let post = take_modifier(&mut re, "post").and_then(|n| self.post.get(&n));
            let inter = take_modifier(&mut re, "inter").and_then(|n| self.inter.get(&n));
            let mut again = false;
            let mut out = String::with_capacity(re.len() * 2);
            for piece in split_tags(&re) {
                match piece {
                    Piece::Text(t) if t.is_empty() => {
                        // Between two adjacent tags (or before a leading one).
                        if let Some(i) = inter {
                            out.push_str(i);
                        }
                    }
                    Piece::Text(t) => out.push_str(&t),
                    Piece::Tag(name) => {
                        if let Some(p) = pre {
                            out.push_str(p);
                        }
                        match self.tags.get(name).filter(|v| !v.is_empty()) {
                            Some(v) => {
                                again |= v.contains('<') && v.contains('>');
                                out.push_str(v);
                            }
                            None => {
                                out.push('<');
                                out.push_str(name);
                                out.push('>');
                            }
                        }
                        if let Some(p) = post {
                            out.push_str(p);
                        }
                    }
                }
            }
            re = out;
            if !again {
                break;
            }
        }
        re
    }
}

/// Removes the first `<kind NAME>` from `re` and returns NAME.
fn take_modifier(re: &mut String, kind: &str) -> Option<String> {
    let (before, rest) = re.split_once(&format!("<{kind} "))?;
    let (name, after) = rest.split_once('>')?;
    let name = name.to_string();
    *re = format!("{before}{after}");
    Some(name)
}

enum Piece<'a> {
    Text(String),
    Tag(&'a str),
}

/// The pattern split around `<NAME>` tags, as Perl's `split(/(<[^<>]+>)/)`: the text
/// between two adjacent tags is an empty piece; a trailing empty piece is dropped.
fn split_tags(re: &str) -> Vec<Piece<'_>> {
    let mut pieces = Vec::new();
    let mut segments = re.split('<');
    // The text since the last tag.
    let mut text = segments.next().unwrap_or_default().to_string();
    // Every other segment follows a '<' and has no '<' in it: it starts with a tag if a
    // '>' closes a name there.
    for segment in segments {
        match segment.split_once('>') {
            Some((name, after)) if !name.is_empty() => {
                pieces.push(Piece::Text(std::mem::replace(&mut text, after.to_string())));
                pieces.push(Piece::Tag(name));
            }
            _ => {
                text.push('<');
                text.push_str(segment);
            }
        }
    }
    if !text.is_empty() {
        pieces.push(Piece::Text(text));
    }
    pieces
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tags() -> ReplaceTags {
        let mut t = ReplaceTags::default();
        for (d, n, v) in [
            ("replace_tag", "A", "[a@]"),
            ("replace_tag", "B", "[b8]"),
            ("replace_tag", "AB", "<A><B>"),
            ("replace_inter", "SP", "\\s?"),
            ("replace_post", "P2", "{1,2}"),
            ("replace_rules", "R1", "R2 R3"),
        ] {
            assert!(t.directive(d, n, v));
        }
        t
    }

    #[test]
    fn tags_modifiers_and_nesting() {
        let mut t = tags();
        assert_eq!(t.apply("R1", r"/x<A>y/"), "/x[a@]y/");
        assert_eq!(t.apply("R2", r"<inter SP><A><B>c"), r"\s?[a@]\s?[b8]c");
        assert_eq!(t.apply("R3", r"<post P2>x<A>"), "x[a@]{1,2}");
        assert_eq!(t.apply("R3", r"(?:<AB>)"), "(?:[a@][b8])");
        assert_eq!(t.apply("OTHER", "<A>"), "<A>", "not listed");
        assert_eq!(t.apply("R1", "a<UNKNOWN>b < c"), "a<UNKNOWN>b < c");
        assert!(!t.directive("replace_nothing", "X", "y"));
    }

    /// Rule patterns with multi-byte characters around, inside and between tags.
    #[test]
    fn multi_byte_characters_around_tags() {
        let mut t = tags();
        for (d, n, v) in [
            ("replace_tag", "É", "[éè]"),
            ("replace_pre", "Ü", "ü?"),
            ("replace_inter", "SP", "\\s?"),
        ] {
            assert!(t.directive(d, n, v));
        }
        assert_eq!(t.apply("R1", "/é<É>€<A>ß/"), "/é[éè]€[a@]ß/");
        assert_eq!(t.apply("R1", "<pre Ü>é<É>"), "éü?[éè]");
        assert_eq!(t.apply("R1", "<inter SP>€<É><É>é"), "€[éè]\\s?[éè]é");
        assert_eq!(t.apply("R1", "é<é>é<>é<é<É>é"), "é<é>é<>é<é[éè]é");
        assert_eq!(t.apply("R1", "<pre é"), "<pre é");
        assert_eq!(t.apply("R1", "é<"), "é<");
        assert_eq!(t.apply("R1", "<É"), "<É");
    }
}
