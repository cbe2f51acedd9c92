//! SORT and THREAD (RFC 5256): the base subject of a message, and the two threading
//! algorithms, ORDEREDSUBJECT and REFERENCES, over what each message's header says. Pure
//! functions over [`Summary`] records; the session collects them.

use std::collections::HashMap;

/// How deep a REFERENCES thread is shown; replies below are listed flat.
const MAX_THREAD_DEPTH: usize = 100;

/// What sorting and threading read of one message.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Summary {
    pub seq: u32,
    pub uid: u32,
    /// Internal date (ARRIVAL), Unix time.
    pub arrival: i64,
    pub size: u64,
    /// The Date header in UTC (the internal date when it has none or it does not parse).
    pub date: i64,
    /// The base subject, upper-cased for comparison.
    pub subject: String,
    /// The mailbox (local part) of the first address, upper-cased (FROM, TO, CC).
    pub from: String,
    pub to: String,
    pub cc: String,
    /// Message-ID without its angle brackets (empty when missing).
    pub message_id: String,
    /// References (else the first In-Reply-To id), oldest first.
    pub references: Vec<String>,
    /// Whether the subject was a reply or forward (`Re:`, `Fwd:`...).
    pub is_reply: bool,
}

/// A sort criterion (RFC 5256 `sort-key`), with REVERSE.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SortKey {
    Arrival,
    Cc,
    Date,
    From,
    Size,
    Subject,
    To,
}

/// The base subject of `subject` (RFC 5256 2.1), upper-cased, and whether a reply or
/// forward marker was taken off. `subject` is decoded already.
pub fn base_subject(subject: &str) -> (String, bool) {
    let mut s: String = subject.split_whitespace().collect::<Vec<_>>().join(" ");
    let mut reply = false;
    loop {
        let before = s.len();
        // (2) trailing "(fwd)" and white space.
        loop {
            let trimmed = s.trim_end();
            let lower = trimmed.to_ascii_lowercase();
            if lower.ends_with("(fwd)") {
                reply = true;
                let keep = trimmed.len() - "(fwd)".len();
                s = trimmed.get(..keep).unwrap_or_default().to_string();
            } else {
                s = trimmed.to_string();
                break;
            }
        }
        // (3) leading "re:", "fw:", "fwd:" (each with optional blobs), and blobs.
        loop {
            let step = strip_leader(&s);
            match step {
                Some((rest, was_reply)) => {
                    reply |= was_reply;
                    s = rest;
                }
                None => break,
            }
        }
        // (5) "[fwd: ...]".
        let lower = s.to_ascii_lowercase();
        if lower.starts_with("[fwd:") && s.ends_with(']') {
            reply = true;
            let inner = s.get(5..s.len() - 1).unwrap_or_default().trim().to_string();
            s = inner;
        }
        if s.len() == before {
            break;
        }
    }
    (s.to_uppercase(), reply)
}

/// Takes one `subj-refwd` or `subj-blob` off the front of `s` (RFC 5256 `subj-leader`);
/// None when there is none (or a blob is all that is left).
fn strip_leader(s: &str) -> Option<(String, bool)> {
    let t = s.trim_start();
    let lower = t.to_ascii_lowercase();
    for word in ["re", "fwd", "fw"] {
        if let Some(after) = lower.strip_prefix(word) {
            // Optional blobs between the word and the colon.
            let mut rest = after.trim_start();
            let mut consumed = t.len() - rest.len();
            while rest.starts_with('[') {
                let Some(end) = rest.find(']') else { break };
                let blob = rest.get(1..end).unwrap_or_default();
                if blob.contains('[') {
                    break;
                }
                let next = rest.get(end + 1..).unwrap_or_default().trim_start();
                consumed += rest.len() - next.len();
                rest = next;
            }
            if rest.starts_with(':') {
                let remainder = t.get(consumed + 1..).unwrap_or_default().trim_start();
                return Some((remainder.to_string(), true));
            }
        }
    }
    if t.starts_with('[') {
        let end = t.find(']')?;
        let blob = t.get(1..end).unwrap_or_default();
        let rest = t.get(end + 1..).unwrap_or_default().trim_start();
        if !blob.contains('[') && !rest.is_empty() {
            return Some((rest.to_string(), false));
        }
    }
    None
}

/// The messages in the order the criteria give (ties by sequence number).
pub fn sort(mut messages: Vec<Summary>, criteria: &[(SortKey, bool)]) -> Vec<Summary> {
    messages.sort_by(|a, b| {
        for &(key, reverse) in criteria {
            let order = match key {
                SortKey::Arrival => a.arrival.cmp(&b.arrival),
                SortKey::Cc => a.cc.cmp(&b.cc),
                SortKey::Date => a.date.cmp(&b.date),
                SortKey::From => a.from.cmp(&b.from),
                SortKey::Size => a.size.cmp(&b.size),
                SortKey::Subject => a.subject.cmp(&b.subject),
                SortKey::To => a.to.cmp(&b.to),
            };
            let order = if reverse { order.reverse() } else { order };
            if order.is_ne() {
                return order;
            }
        }
        a.seq.cmp(&b.seq)
    });
    messages
}

/// A thread: a message (None: a message referred to but not here) and its replies.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Thread {
    pub message: Option<u32>,
    pub children: Vec<Thread>,
}

/// ORDEREDSUBJECT: messages grouped by base subject, each group in date order and a
/// thread of its first message with the others as its children; threads in the order of
/// their first message's date. `number` picks what names a message (seq or UID).
pub fn ordered_subject(messages: &[Summary], number: impl Fn(&Summary) -> u32) -> Vec<Thread> {
    let sorted = sort(
        messages.to_vec(),
        &[(SortKey::Subject, false), (SortKey::Date, false)],
    );
    let mut threads: Vec<(i64, u32, Thread)> = Vec::new();
    let mut current: Option<&str> = None;
    for m in &sorted {
        let leaf = Thread {
            message: Some(number(m)),
            children: Vec::new(),
        };
        match (current, threads.last_mut()) {
            (Some(subject), Some((_, _, thread))) if subject == m.subject => {
                thread.children.push(leaf)
            }
            _ => threads.push((m.date, m.seq, leaf)),
        }
        current = Some(&m.subject);
    }
    threads.sort_by_key(|(date, seq, _)| (*date, *seq));
    threads.into_iter().map(|(_, _, t)| t).collect()
}

/// REFERENCES (RFC 5256 section 3, after Jamie Zawinski): threads from Message-ID,
/// References and In-Reply-To; root threads of the same base subject gathered under one.
pub fn references(messages: &[Summary], number: impl Fn(&Summary) -> u32) -> Vec<Thread> {
    // Containers: one per message id seen, with the message if it is here.
    struct Container {
        message: Option<usize>,
        parent: Option<usize>,
        children: Vec<usize>,
    }
    let mut containers: Vec<Container> = Vec::new();
    let mut by_id: HashMap<String, usize> = HashMap::new();
    fn container_of(
        id: &str,
        containers: &mut Vec<Container>,
        by_id: &mut HashMap<String, usize>,
    ) -> usize {
        *by_id.entry(id.to_string()).or_insert_with(|| {
            containers.push(Container {
                message: None,
                parent: None,
                children: Vec::new(),
            });
            containers.len() - 1
        })
    }
    fn is_ancestor(containers: &[Container], ancestor: usize, mut node: usize) -> bool {
        // Bounded: every step goes to a parent, and links never make a loop.
        for _ in 0..containers.len() {
            if node == ancestor {
                return true;
            }
            match containers[node].parent {
                Some(p) => node = p,
                None => return false,
            }
        }
        true
    }
    fn link(containers: &mut [Container], parent: usize, child: usize) {
        if let Some(old) = containers[child].parent {
            containers[old].children.retain(|c| *c != child);
        }
        containers[child].parent = Some(parent);
        containers[parent].children.push(child);
    }
    for (index, m) in messages.iter().enumerate() {
        // A missing or repeated Message-ID gets an id of its own.
        let own = if m.message_id.is_empty()
            || by_id
                .get(&m.message_id)
                .is_some_and(|&c| containers[c].message.is_some())
        {
            format!("\0{index}")
        } else {
            m.message_id.clone()
        };
        let this = container_of(&own, &mut containers, &mut by_id);
        containers[this].message = Some(index);
        let mut previous: Option<usize> = None;
        for reference in &m.references {
            let c = container_of(reference, &mut containers, &mut by_id);
            if let Some(p) = previous {
                if containers[c].parent.is_none() && p != c && !is_ancestor(&containers, c, p) {
                    link(&mut containers, p, c);
                }
            }
            previous = Some(c);
        }
        match previous {
            Some(p) if p != this && !is_ancestor(&containers, this, p) => {
                link(&mut containers, p, this)
            }
            _ => {
                if let Some(old) = containers[this].parent.take() {
                    containers[old].children.retain(|c| *c != this);
                }
            }
        }
    }
    // The tree, with empty containers pruned: one without children goes; one with
    // children gives them to its parent (at the root only when it has a single child).
    // Deeper than MAX_THREAD_DEPTH, replies are listed flat (a stack, not recursion:
    // References come from the network).
    fn build(containers: &[Container], node: usize, depth: usize, out: &mut Vec<Thread>) {
        let mut children = Vec::new();
        if depth < MAX_THREAD_DEPTH {
            for &c in &containers[node].children {
                build(containers, c, depth + 1, &mut children);
            }
        } else {
            let mut stack: Vec<usize> = containers[node].children.clone();
            let mut seen = 0;
            while let Some(c) = stack.pop() {
                seen += 1;
                if seen > containers.len() {
                    break;
                }
                if let Some(m) = containers[c].message {
                    children.push(Thread {
                        message: Some(m as u32),
                        children: Vec::new(),
                    });
                }
                stack.extend(&containers[c].children);
            }
        }
        match containers[node].message {
            Some(m) => out.push(Thread {
                message: Some(m as u32),
                children,
            }),
            None if children.is_empty() => {}
            None if depth > 0 || children.len() == 1 => out.extend(children),
            None => out.push(Thread {
                message: None,
                children,
            }),
        }
    }
    let mut roots = Vec::new();
    for (i, c) in containers.iter().enumerate() {
        if c.parent.is_none() {
            build(&containers, i, 0, &mut roots);
        }
    }
    // Root threads of the same base subject go together (RFC 5256 3 (5)): a thread whose
    // root is not a reply takes the others under it; else they share a dummy.
    let subject_of = |t: &Thread| -> Option<&str> {
        let first = t
            .message
            .or_else(|| t.children.first().and_then(|c| c.message))?;
        messages.get(first as usize).map(|m| m.subject.as_str())
    };
    let mut gathered: Vec<Thread> = Vec::new();
    let mut by_subject: HashMap<String, usize> = HashMap::new();
    for root in roots {
        let subject = subject_of(&root).unwrap_or_default().to_string();
        if subject.is_empty() {
            gathered.push(root);
            continue;
        }
        match by_subject.get(&subject) {
            None => {
                by_subject.insert(subject, gathered.len());
                gathered.push(root);
            }
            Some(&at) => {
                let existing = &mut gathered[at];
                let is_reply = |t: &Thread| {
                    t.message
                        .and_then(|m| messages.get(m as usize))
                        .is_some_and(|m| m.is_reply)
                };
                // Under a dummy, or under a thread whose root is not a reply.
                if existing.message.is_none() || (!is_reply(existing) && is_reply(&root)) {
                    existing.children.push(root);
                } else if is_reply(existing) && !is_reply(&root) {
                    let mut root = root;
                    root.children.push(std::mem::take(existing));
                    *existing = root;
                } else {
                    let first = std::mem::take(existing);
                    *existing = Thread {
                        message: None,
                        children: vec![first, root],
                    };
                }
            }
        }
    }
    // Siblings in order of date (a dummy: its first child's), then the message numbers.
    fn date_of(t: &Thread, messages: &[Summary]) -> (i64, u32) {
        match t.message.and_then(|m| messages.get(m as usize)) {
            Some(m) => (m.date, m.seq),
            None => t
                .children
                .first()
                .map_or((i64::MAX, u32::MAX), |c| date_of(c, messages)),
        }
    }
    // Dates are read before the numbers replace the indexes.
    let mut keyed: Vec<((i64, u32), Thread)> = (gathered.into_iter())
        .map(|t| {
            let mut t = t;
            sort_children(&mut t, messages);
            (date_of(&t, messages), t)
        })
        .collect();
    keyed.sort_by_key(|(k, _)| *k);
    fn sort_children(t: &mut Thread, messages: &[Summary]) {
        for c in &mut t.children {
            sort_children(c, messages);
        }
        t.children.sort_by_key(|c| date_of(c, messages));
    }
    fn renumber(t: Thread, messages: &[Summary], number: &dyn Fn(&Summary) -> u32) -> Thread {
        Thread {
            message: t.message.and_then(|m| messages.get(m as usize)).map(number),
            children: (t.children.into_iter())
                .map(|c| renumber(c, messages, number))
                .collect(),
        }
    }
    keyed
        .into_iter()
        .map(|(_, t)| renumber(t, messages, &number))
        .collect()
}

/// The THREAD response's thread list: `(1 2 (3)(4 5))(6)`; a message with one reply is a
/// chain, several replies are parenthesised siblings (RFC 5256 section 4).
pub fn write_threads(out: &mut String, threads: &[Thread]) {
    for t in threads {
        out.push('(');
        write_members(out, t);
        out.push(')');
    }
}

fn write_members(out: &mut String, t: &Thread) {
    let mut node = t;
    let mut first = true;
    // A chain of single replies, iteratively (no recursion for long chains).
    loop {
        if let Some(m) = node.message {
            if !first {
                out.push(' ');
            }
            out.push_str(&m.to_string());
            first = false;
        }
        match node.children.as_slice() {
            [only] if node.message.is_some() => node = only,
            children => {
                if !children.is_empty() && !first {
                    out.push(' ');
                }
                for c in children {
                    out.push('(');
                    write_members(out, c);
                    out.push(')');
                }
                return;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn base_subjects() {
        assert_eq!(base_subject("Re: Fwd:  hello   world").0, "HELLO WORLD");
        assert!(base_subject("Re: hi").1);
        assert!(!base_subject("hi").1);
        assert_eq!(base_subject("[list] Re: [x] RE: news (fwd)").0, "NEWS");
        assert_eq!(base_subject("[Fwd: The subject]").0, "THE SUBJECT");
        assert_eq!(base_subject("Re[2]: status").0, "STATUS");
        // A blob alone is the subject.
        assert_eq!(base_subject("[only]").0, "[ONLY]");
        assert_eq!(base_subject("").0, "");
        assert_eq!(base_subject("Ré: été").0, "RÉ: ÉTÉ");
    }

    fn msg(seq: u32, date: i64, subject: &str, id: &str, refs: &[&str]) -> Summary {
        let (subject, is_reply) = base_subject(subject);
        Summary {
            seq,
            uid: seq * 10,
            date,
            subject,
            is_reply,
            message_id: id.into(),
            references: refs.iter().map(|r| r.to_string()).collect(),
            ..Summary::default()
        }
    }

    fn threads_text(threads: &[Thread]) -> String {
        let mut s = String::new();
        write_threads(&mut s, threads);
        s
    }

    #[test]
    fn sorting_by_several_keys_and_reverse() {
        let mut a = msg(1, 30, "b", "", &[]);
        a.size = 5;
        let mut b = msg(2, 10, "a", "", &[]);
        b.size = 5;
        let mut c = msg(3, 20, "b", "", &[]);
        c.size = 1;
        let seqs = |v: Vec<Summary>| v.iter().map(|m| m.seq).collect::<Vec<_>>();
        let all = vec![a, b, c];
        assert_eq!(
            seqs(sort(all.clone(), &[(SortKey::Date, false)])),
            [2, 3, 1]
        );
        assert_eq!(
            seqs(sort(
                all.clone(),
                &[(SortKey::Subject, false), (SortKey::Date, true)]
            )),
            [2, 1, 3]
        );
        assert_eq!(seqs(sort(all, &[(SortKey::Size, true)])), [1, 2, 3]);
    }

    #[test]
    fn ordered_subject_threads() {
        let all = vec![
            msg(1, 10, "hello", "", &[]),
            msg(2, 20, "other", "", &[]),
            msg(3, 30, "Re: hello", "", &[]),
            msg(4, 40, "Re: hello", "", &[]),
        ];
        assert_eq!(
            threads_text(&ordered_subject(&all, |m| m.seq)),
            "(1 (3)(4))(2)"
        );
        assert_eq!(
            threads_text(&ordered_subject(&all[..3], |m| m.uid)),
            "(10 30)(20)"
        );
    }

    #[test]
    fn reference_threads() {
        let all = vec![
            msg(1, 10, "plan", "a@x", &[]),
            msg(2, 20, "Re: plan", "b@x", &["a@x"]),
            msg(3, 30, "Re: plan", "c@x", &["a@x", "b@x"]),
            msg(4, 25, "Re: plan", "d@x", &["a@x"]),
            msg(5, 5, "lunch", "e@x", &[]),
            // Its parent is not here: a dummy holds it... and gathers by subject.
            msg(6, 50, "Re: missing", "f@x", &["gone@x"]),
            msg(7, 60, "Re: missing", "g@x", &["gone2@x"]),
            // A loop in References does not hang anything.
            msg(8, 70, "loop", "h@x", &["h@x", "i@x", "h@x"]),
        ];
        let text = threads_text(&references(&all, |m| m.seq));
        assert_eq!(text, "(5)(1 (2 3)(4))((6)(7))(8)");
    }
}
