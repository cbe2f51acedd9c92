//! How much the HTML of a `multipart/alternative` says that its text does not:
//! SpamAssassin's `multipart_alternative_difference` (BodyEval.pm). Honest mailers write
//! the same words twice; a spammer's text part is often a decoy.
//!
//! For each `multipart/alternative` part: the words (white-space separated runs with a
//! word character) of the rendered HTML parts under it and of its other text parts,
//! counted; an HTML word that the text has at least as often is dropped; the share of
//! HTML words left, in percent, is the part's difference; the message's is the largest.
//! An HTML part without words but with an image counts as one word.

use std::collections::HashMap;

use mail_parser::{Message, MimeHeaders, PartType};

/// Where one text part's text is, as the rules see it.
pub(super) struct RenderedText {
    /// text/html (rendered), else another text type (as decoded).
    pub html: bool,
    /// Its index in the texts handed to [`difference`].
    pub text: usize,
    /// The HTML part has an `<img>` tag.
    pub image: bool,
}

/// Whether the message has a `multipart/alternative` part (only then is the text of its
/// parts kept for [`difference`]).
pub(super) fn has_alternative(msg: &Message<'_>) -> bool {
    msg.parts
        .iter()
        .any(|part| is_type(part, "multipart", "alternative"))
}

/// The largest difference over the message's `multipart/alternative` parts, in percent
/// (0 when it has none); `rendered` says, for each part by its index, where in `texts`
/// its text is.
pub(super) fn difference(
    msg: &Message<'_>,
    rendered: &[Option<RenderedText>],
    texts: &[String],
) -> f64 {
    if is_calendar_invitation(msg) {
        return 0.0;
    }
    let mut largest = 0.0f64;
    for (index, part) in msg.parts.iter().enumerate() {
        if !is_type(part, "multipart", "alternative") {
            continue;
        }
        let mut html: HashMap<&str, usize> = HashMap::new();
        let mut text: HashMap<&str, usize> = HashMap::new();
        for leaf in leaves(msg, index) {
            let Some(Some(part)) = rendered.get(leaf) else {
                continue;
            };
            let counts = if part.html { &mut html } else { &mut text };
            let text = texts.get(part.text).map_or("", String::as_str);
            for word in words(text) {
                *counts.entry(word).or_default() += 1;
            }
            if part.html && html.is_empty() && part.image {
                // A mark no word can be.
                html.insert("\n", 1);
            }
        }
        let before = html.len();
        if before == 0 {
            continue;
        }
        for (word, times) in &text {
            if html.get(word).is_some_and(|in_html| *in_html <= *times) {
                html.remove(word);
            }
        }
        largest = largest.max(html.len() as f64 / before as f64 * 100.0);
    }
    largest
}

/// Words as SpamAssassin splits them: runs between white space that hold a word
/// character (bullets and rules are not words).
fn words(text: &str) -> impl Iterator<Item = &str> {
    text.split_ascii_whitespace()
        .filter(|w| w.bytes().any(|b| b.is_ascii_alphanumeric() || b == b'_'))
}

fn is_type(part: &mail_parser::MessagePart<'_>, main: &str, sub: &str) -> bool {
    part.content_type().is_some_and(|c| {
        c.ctype().eq_ignore_ascii_case(main)
            && c.subtype().is_some_and(|s| s.eq_ignore_ascii_case(sub))
    })
}

/// The parts under `root` that are not multiparts, in order (each part visited once:
/// the tree is walked with a stack, not recursion).
fn leaves(msg: &Message<'_>, root: usize) -> Vec<usize> {
    let mut out = Vec::new();
    let mut stack = vec![root];
    let mut visited = 0;
    while let Some(index) = stack.pop() {
        visited += 1;
        if visited > msg.parts.len() {
            break;
        }
        match msg.parts.get(index).map(|p| &p.body) {
            Some(PartType::Multipart(children)) => stack.extend(
                children
                    .iter()
                    .rev()
                    .map(|&c| c as usize)
                    .filter(|&c| c != index),
            ),
            Some(_) => out.push(index),
            None => {}
        }
    }
    out
}

/// An Exchange meeting request (`multipart/alternative` of text/html and text/calendar),
/// which SpamAssassin leaves out: its parts differ by design.
fn is_calendar_invitation(msg: &Message<'_>) -> bool {
    let Some(root) = msg.parts.first() else {
        return false;
    };
    if !is_type(root, "multipart", "alternative") {
        return false;
    }
    let leaves = leaves(msg, 0);
    leaves.len() == 2
        && msg
            .parts
            .get(leaves[0])
            .is_some_and(|p| is_type(p, "text", "html"))
        && msg
            .parts
            .get(leaves[1])
            .is_some_and(|p| is_type(p, "text", "calendar"))
}

#[cfg(test)]
mod tests {
    use crate::mime::view::MessageView;

    fn alternative(text: &str, html: &str) -> MessageView {
        let raw = format!(
            "Subject: s\r\nMIME-Version: 1.0\r\nContent-Type: multipart/alternative; boundary=b\r\n\r\n\
             --b\r\nContent-Type: text/plain\r\n\r\n{text}\r\n\
             --b\r\nContent-Type: text/html\r\n\r\n{html}\r\n--b--\r\n"
        );
        MessageView::new(raw.as_bytes())
    }

    #[test]
    fn the_same_words_twice_differ_by_nothing() {
        let v = alternative(
            "Hello Ann, see you at 5.",
            "<p>Hello <b>Ann</b>, see you at 5.</p>",
        );
        assert_eq!(v.alternative_difference, 0.0);
    }

    #[test]
    fn a_decoy_text_part_differs_entirely() {
        let v = alternative(
            "Nothing to see here",
            "<p>Cheap pills online</p><p>Buy now</p>",
        );
        assert_eq!(v.alternative_difference, 100.0);
        // Half the HTML's distinct words are in the text.
        let v = alternative("cheap pills", "<p>cheap pills buy now</p>");
        assert_eq!(v.alternative_difference, 50.0);
        // A word the HTML has more often than the text stays.
        let v = alternative("cheap", "<p>cheap cheap</p>");
        assert_eq!(v.alternative_difference, 100.0);
    }

    #[test]
    fn an_image_alone_is_one_word_and_no_alternative_is_nothing() {
        let v = alternative("words only here", "<img src=\"cid:a\">");
        assert_eq!(v.alternative_difference, 100.0);
        let plain = MessageView::new(b"Subject: s\r\n\r\nplain text\r\n");
        assert_eq!(plain.alternative_difference, 0.0);
    }
}
