//! The attachment policy (`gannet_core::policy::attachments`) over the labelled corpus:
//! no ham message may be held; how many spam messages are held, and why, is printed (the
//! corpus is 2002-era spam: few of them carry programs).

use gannet_core::policy::attachments::{findings, AttachmentPolicy};

#[test]
fn no_ham_is_held_and_what_spam_is() {
    let policy = AttachmentPolicy::default();
    let corpus = gannet_tests::corpus();
    let (mut ham, mut spam) = (0, 0);
    let mut ham_held = Vec::new();
    let mut spam_held = Vec::new();
    for (name, raw) in &corpus {
        let found = findings(&policy, raw);
        let is_spam = name.starts_with("spam");
        if is_spam {
            spam += 1;
        } else {
            ham += 1;
        }
        if found.is_empty() {
            continue;
        }
        let why: Vec<String> = found.iter().map(|h| h.to_string()).collect();
        let line = format!("{name}: {}", why.join("; "));
        if is_spam {
            spam_held.push(line);
        } else {
            ham_held.push(line);
        }
    }
    assert_eq!((ham, spam), (2625, 500), "the corpus changed");
    println!(
        "attachments: {} of {spam} spam messages held",
        spam_held.len()
    );
    for line in &spam_held {
        println!("  spam held: {line}");
    }
    assert!(
        ham_held.is_empty(),
        "{} of {ham} ham messages held:\n{}",
        ham_held.len(),
        ham_held.join("\n")
    );
}
