//! The spam engine: SpamAssassin's rule language ([`rules`]), compiled with a
//! multi-pattern prefilter ([`compile`], [`atoms`]), and scanning ([`scan`]).

pub mod actions;
pub mod atom_search;
pub mod atoms;
pub mod bayes;
pub mod cache;
pub mod chain;
pub mod compile;
mod dates;
pub mod eval;
pub mod html_evals;
pub mod meta;
pub mod replace_tags;
pub mod rules;
pub mod scan;
pub mod stock;

use std::path::Path;

pub use compile::{Report, Ruleset, ScoreSet};
pub use scan::{Hit, RuleCosts, ScanInput, Verdict};

/// Gannet's built-in rules, always loaded (the Bayes verdict's rules).
pub const DEFAULT_RULES: &str = include_str!("default.cf");

/// Gannet's own heuristic rules: loaded only without SpamAssassin's stock rules.
pub const HEURISTIC_RULES: &str = include_str!("heuristics.cf");

/// The built-in rules plus every `.cf` file of `dirs`; Gannet's heuristic rules too,
/// unless one of `dirs` holds SpamAssassin's stock rules (its `50_scores.cf`), which test
/// the same things (the cross-validation found them flagging ham twice over).
pub fn load(dirs: &[impl AsRef<Path>]) -> std::io::Result<Ruleset> {
    load_cached(dirs, None)
}

/// As [`load`], with the compile cache in `cache_dir` ([`cache`]).
pub fn load_cached(
    dirs: &[impl AsRef<Path>],
    cache_dir: Option<&Path>,
) -> std::io::Result<Ruleset> {
    let mut source = rules::RuleSource::default();
    source.add_text(DEFAULT_RULES, None);
    let stock = dirs
        .iter()
        .any(|d| d.as_ref().join("50_scores.cf").is_file());
    if !stock {
        source.add_text(HEURISTIC_RULES, None);
    }
    for d in dirs {
        source.add_dir(d.as_ref())?;
    }
    Ok(Ruleset::compile_cached(source, cache_dir))
}

/// The threshold of a spam level: off (never), low 15, medium 10, high 5.
pub fn level_threshold(level: &str) -> Option<f64> {
    match level {
        "low" => Some(15.0),
        "medium" => Some(10.0),
        "high" => Some(5.0),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ruleset(extra: &str) -> Ruleset {
        let mut src = rules::RuleSource::default();
        src.add_text(DEFAULT_RULES, None);
        src.add_text(HEURISTIC_RULES, None);
        src.add_text(extra, None);
        Ruleset::compile(src)
    }

    /// Found by the spam_rules fuzz target: a backslash before a multi-byte character
    /// in a rule's regex was copied by slicing two bytes, inside the character.
    #[test]
    fn an_escaped_multibyte_character_compiles() {
        assert_eq!(compile::translate_escapes("a\\éb\\"), "a\\éb\\");
        assert_eq!(
            compile::translate_escapes("é\\eé\\Zé\\101é\\é\\10é\\"),
            "é\\x1Bé(?:\\n?\\z)é\\x{41}é\\é\\10é\\"
        );
        let rs = ruleset("body GANNET_T_E /caf\\é/\nscore GANNET_T_E 1.0\n");
        let v = rs.scan(b"Subject: x\r\n\r\ncaf\xc3\xa9\r\n");
        assert!(names(&v).contains(&"GANNET_T_E"), "{:?}", names(&v));
    }

    fn names(v: &Verdict) -> Vec<&str> {
        v.hits.iter().map(|h| h.name.as_str()).collect()
    }

    /// `html_text_match` over the link texts, titles and comments of the HTML parts, as
    /// SpamAssassin's stock rules use it (`__HTML_LINK_IMAGE`, `__HTML_TITLE_120`,
    /// `HTML_COMMENT_SAVED_URL`).
    #[test]
    fn html_text_match_reads_links_titles_and_comments() {
        let rs = ruleset(
            "body T_LINK_IMAGE eval:html_text_match('anchor', '<img>')\nscore T_LINK_IMAGE 1\n\
             body T_TITLE_SALE eval:html_text_match('title', 'Sale')\nscore T_TITLE_SALE 1\n\
             body T_SAVED eval:html_text_match('comment', '<!-- saved from url=\\(\\d{4}\\)')\nscore T_SAVED 1\n",
        );
        let v = rs.scan(
            b"Content-Type: text/html\r\n\r\n<title>Big Sale</title><!-- saved from url=(0022)http://x/ -->\
              <a href=\"http://x.example/\"><img src=\"a.gif\"></a>\r\n",
        );
        for rule in ["T_LINK_IMAGE", "T_TITLE_SALE", "T_SAVED"] {
            assert!(names(&v).contains(&rule), "{rule}: {:?}", names(&v));
        }
        // An image outside any link, another title, no comment: none of them.
        let v = rs.scan(b"Content-Type: text/html\r\n\r\n<title>Hello</title><img src=\"a.gif\"> <a href=\"http://x/\">x</a>\r\n");
        assert!(
            names(&v).iter().all(|n| !n.starts_with("T_")),
            "{:?}",
            names(&v)
        );
    }

    /// `html_title_subject_ratio`: a title much longer than the Subject.
    #[test]
    fn a_title_much_longer_than_the_subject() {
        let rs = ruleset(
            "body T_TITLE_LONG eval:html_title_subject_ratio('3.5')\nscore T_TITLE_LONG 1\n",
        );
        let message = |subject: &str| {
            format!("Subject: {subject}\r\nContent-Type: text/html\r\n\r\n<title>Your Gateway to Wealth Today</title>hi\r\n")
        };
        // 28 characters of title against "Hi" (2 and its line end): 9.3 times.
        let v = rs.scan(message("Hi").as_bytes());
        assert!(names(&v).contains(&"T_TITLE_LONG"), "{:?}", names(&v));
        // Against a Subject of 9 (10 with the line end): 2.8 times, under 3.5.
        let v = rs.scan(message("Your gate").as_bytes());
        assert!(!names(&v).contains(&"T_TITLE_LONG"), "{:?}", names(&v));
    }

    /// Found by the cross-validation against SpamAssassin: a meta over an eval Gannet
    /// lacks (`!__MIME_BASE64`-like) read the eval as false and fired.
    #[test]
    fn a_meta_over_an_eval_gannet_lacks_never_fires() {
        let rs = ruleset(
            "body __T_UNKNOWN eval:check_something_gannet_lacks()
             meta T_OVER_UNKNOWN !__T_UNKNOWN
score T_OVER_UNKNOWN 2.0
             body __T_KNOWN /hello/
meta T_OVER_KNOWN __T_KNOWN
score T_OVER_KNOWN 1.0
",
        );
        let v = rs.scan(b"Subject: x\r\n\r\nhello\r\n");
        assert!(names(&v).contains(&"T_OVER_KNOWN"), "{v:?}");
        assert!(!names(&v).contains(&"T_OVER_UNKNOWN"), "{v:?}");
    }

    #[test]
    fn yahoo_mail_that_never_passed_yahoo_is_forged() {
        let rs =
            ruleset("header T_FY eval:check_for_forged_yahoo_received_headers()\nscore T_FY 1.0\n");
        let hit = |from: &str, received: &str| {
            let msg = format!("Received: {received}\r\nFrom: {from}\r\nSubject: s\r\n\r\nhi\r\n");
            names(&rs.scan(msg.as_bytes())).contains(&"T_FY")
        };
        let elsewhere = "from spamhost ([203.0.113.9]) by mx.example.test with SMTP";
        let webmail = "from [198.51.100.4] by web12.mail.yahoo.com via HTTP; Sat, 5 Dec 2026";
        assert!(hit("Bob <bob@yahoo.com>", elsewhere));
        assert!(!hit("Bob <bob@yahoo.com>", webmail));
        assert!(!hit("Bob <bob@example.com>", elsewhere));
    }

    /// FORGED_HOTMAIL_RCVD2's eval: a hotmail.com sender whose mail never passed Hotmail
    /// (nor a relay that only claims the name).
    #[test]
    fn hotmail_senders_without_hotmail_relays() {
        let rs = ruleset(
            "header T_NOHM eval:check_for_no_hotmail_received_headers()\nscore T_NOHM 1.0\n",
        );
        let hit = |from: &str, received: &str, extra: &str| {
            let msg =
                format!("Received: {received}\r\nFrom: {from}\r\n{extra}Subject: s\r\n\r\nhi\r\n");
            names(&rs.scan(msg.as_bytes())).contains(&"T_NOHM")
        };
        let elsewhere = "from spamhost ([203.0.113.9]) by mx.example.test with SMTP";
        let hotmail =
            "from hotmail.com (f135.law8.hotmail.com [216.33.241.135]) by mx.example.test";
        let claims = "from hotmail.com ([203.0.113.9]) by mx.example.test with SMTP";
        assert!(hit("Bob <bob@hotmail.com>", elsewhere, ""));
        assert!(!hit(
            "Bob <bob@hotmail.com>",
            hotmail,
            "X-Originating-IP: [198.51.100.7]\r\n"
        ));
        // Without the originating address, a relay named hotmail.com is a forgery of
        // another kind (FORGED_HOTMAIL_RCVD's), not this one.
        assert!(!hit("Bob <bob@hotmail.com>", hotmail, ""));
        assert!(!hit("Bob <bob@hotmail.com>", claims, ""));
        assert!(!hit("Bob <bob@nothotmail.com>", elsewhere, ""));
        assert!(!hit("Bob <bob@example.com>", elsewhere, ""));
    }

    /// FREEMAIL_REPLYTO's eval: From and Reply-To at different free mail addresses, or a
    /// free Reply-To and another free address in the body; not for list senders.
    #[test]
    fn freemail_reply_to_differs() {
        let rs = ruleset(
            "freemail_domains gmail.com yahoo.com\n\
             header T_FMRT eval:check_freemail_replyto('replyto')\nscore T_FMRT 1.0\n",
        );
        let hit = |headers: &str, body: &str| {
            let msg = format!("{headers}Subject: s\r\n\r\n{body}\r\n");
            names(&rs.scan(msg.as_bytes())).contains(&"T_FMRT")
        };
        assert!(hit("From: a@gmail.com\r\nReply-To: b@yahoo.com\r\n", "hi"));
        assert!(!hit("From: a@gmail.com\r\nReply-To: a@gmail.com\r\n", "hi"));
        assert!(!hit(
            "From: a@example.com\r\nReply-To: b@example.org\r\n",
            "hi"
        ));
        assert!(hit(
            "From: a@example.com\r\nReply-To: b@yahoo.com\r\n",
            "write to c@gmail.com today"
        ));
        // An address quoted before "wrote:" is not one the sender gives.
        assert!(!hit(
            "From: a@example.com\r\nReply-To: b@yahoo.com\r\n",
            "c@gmail.com wrote: hello"
        ));
        assert!(!hit(
            "Return-Path: <list-bounces@example.com>\r\nFrom: a@gmail.com\r\nReply-To: b@yahoo.com\r\n",
            "hi"
        ));
        // 'reply': replies go to a free mail From, and the body gives another address.
        let rs = ruleset(
            "freemail_domains gmail.com yahoo.com\n\
             header T_FMR eval:check_freemail_replyto('reply')\nscore T_FMR 1.0\n",
        );
        let hit = |headers: &str, body: &str| {
            let msg = format!("{headers}Subject: s\r\n\r\n{body}\r\n");
            names(&rs.scan(msg.as_bytes())).contains(&"T_FMR")
        };
        assert!(hit("From: a@gmail.com\r\n", "write to c@yahoo.com today"));
        assert!(!hit("From: a@gmail.com\r\n", "write to a@gmail.com today"));
        assert!(!hit(
            "From: a@example.com\r\n",
            "write to c@yahoo.com today"
        ));
        assert!(!hit(
            "From: a@gmail.com\r\nReply-To: b@example.com\r\n",
            "write to c@yahoo.com today"
        ));
    }

    /// SpamAssassin's unparseable relays: a `from` clause without both an address and a
    /// `by`, but not a local hand-off.
    #[test]
    fn unparseable_received_headers_are_counted() {
        let relays = |received: &str| {
            crate::mime::relays::Relays::from_received([received].into_iter()).unparseable
        };
        assert_eq!(relays("from nowhere (HELO x) with SMTP id 1"), 1);
        assert_eq!(
            relays("from a.example (a.example [203.0.113.9]) by b.example with SMTP"),
            0
        );
        assert_eq!(
            relays("from virtual-access.org by bolero.conactive.com ; Thu, 20 Feb 2003"),
            0
        );
        assert_eq!(
            relays("from www-data by h.example (Exim 4.50) with local for <x@y>"),
            0
        );
        assert_eq!(relays("by h.example (Postfix, from userid 1000) id 1"), 0);
    }

    /// The `ALL-EXTERNAL` pseudo-header starts at the Received header of the first
    /// external relay; `check_body_length` and `mime_attachment` as SpamAssassin has them.
    #[test]
    fn external_headers_body_length_and_attachments() {
        let rs = ruleset(
            "header T_TWO_EXT ALL-EXTERNAL =~ /(?:^|\\n)Received:\\s.+\\nReceived:\\s/s\nscore T_TWO_EXT 1.0\n\
             body T_SHORT eval:check_body_length('128')\nscore T_SHORT 1.0\n\
             body T_ATTACH eval:check_for_mime('mime_attachment')\nscore T_ATTACH 1.0\n",
        );
        let internal = "Received: from lan.example.test (lan.example.test [192.168.1.5]) by mx.example.test\r\n";
        let external =
            "Received: from a.example.net (a.example.net [203.0.113.9]) by b.example.net\r\n";
        let hits = |msg: String| -> Vec<String> {
            names(&rs.scan(msg.as_bytes()))
                .into_iter()
                .filter(|n| n.starts_with("T_"))
                .map(str::to_owned)
                .collect()
        };
        // Two external hops after an internal one: both their headers, not the internal's.
        let two = hits(format!(
            "{internal}{external}{external}Subject: s\r\n\r\nhi\r\n"
        ));
        assert!(two.contains(&"T_TWO_EXT".to_owned()), "{two:?}");
        assert!(two.contains(&"T_SHORT".to_owned()), "{two:?}");
        let one = hits(format!("{internal}{external}Subject: s\r\n\r\nhi\r\n"));
        assert_eq!(one, ["T_SHORT"]);
        // One external hop alone: a single Received header, and a longer body.
        let none = hits(format!(
            "{external}Subject: s\r\n\r\n{}\r\n",
            "x".repeat(200)
        ));
        assert!(none.is_empty(), "{none:?}");
        let attached = hits(
            "Subject: s\r\nContent-Type: multipart/mixed; boundary=b\r\n\r\n--b\r\n\
             Content-Type: text/plain\r\n\r\nhi\r\n--b\r\nContent-Type: application/zip\r\n\
             Content-Disposition: ATTACHMENT; filename=a.zip\r\n\r\nPK\r\n--b--\r\n"
                .to_owned(),
        );
        assert!(attached.contains(&"T_ATTACH".to_owned()), "{attached:?}");
    }

    /// `subject_is_all_caps` as SpamAssassin's: several words, 10 characters or more
    /// past reply prefixes, ASCII letters all capitals, not in a capitals-heavy charset.
    #[test]
    fn all_capital_subjects() {
        let rs = ruleset("header T_CAPS eval:subject_is_all_caps()\nscore T_CAPS 1.0\n");
        let fired = |subject: &str| {
            names(&rs.scan(format!("Subject: {subject}\r\n\r\nbody\r\n").as_bytes()))
                .contains(&"T_CAPS")
        };
        assert!(fired("FREE MONEY INSIDE 100%"));
        assert!(fired("Re: Fwd: FREE MONEY NOW"));
        assert!(!fired("FREEMONEYINSIDE"), "one word");
        assert!(!fired("BIG SALE"), "under 10 characters");
        assert!(!fired("Re: BIG SALE"), "under 10 once the prefix is gone");
        assert!(!fired("FREE money inside"));
        assert!(!fired("=?koi8-r?B?88/C2dTJ0Q==?= NEWS TODAY"));
    }

    /// `check_illegal_chars` as SpamAssassin's: raw 8-bit bytes that are not UTF-8 count,
    /// valid UTF-8 passes, controls count, TAB does not.
    #[test]
    fn illegal_characters_in_a_raw_subject() {
        let rs = ruleset(
            "header T_ILLEGAL eval:check_illegal_chars('Subject','0.00','2')\nscore T_ILLEGAL 1.0\n",
        );
        let fired = |subject: &[u8]| {
            let mut msg = b"Subject: ".to_vec();
            msg.extend_from_slice(subject);
            msg.extend_from_slice(b"\r\n\r\nbody\r\n");
            names(&rs.scan(&msg)).contains(&"T_ILLEGAL")
        };
        assert!(fired(b"caf\xe9 cr\xe8me"), "two Latin-1 bytes");
        assert!(!fired(b"caf\xe9 creme"), "one is under the count");
        assert!(!fired("café crème".as_bytes()), "valid UTF-8");
        assert!(fired(b"a\x01b\x02c"), "controls");
        assert!(!fired(b"a\tb\tc"), "TAB is allowed");
    }

    /// `check_for_uppercase(75, 100)`: mostly capitals over at least 200 characters of
    /// lines with words, unless the charset writes capitals anyway.
    #[test]
    fn shouting_bodies() {
        let rs = ruleset("body T_UPPER eval:check_for_uppercase('75','100')\nscore T_UPPER 1.0\n");
        let shout = "BUY NOW AND SAVE BIG ON EVERY ORDER TODAY ONLY. ".repeat(6);
        let fired = |head: &str, body: &str| {
            names(&rs.scan(format!("Subject: s\r\n{head}\r\n{body}\r\n").as_bytes()))
                .contains(&"T_UPPER")
        };
        assert!(fired("", &shout));
        assert!(!fired("", &shout.to_lowercase()));
        assert!(!fired("", "SHORT BUT LOUD"), "under 200 characters");
        assert!(!fired(
            "Content-Type: text/plain; charset=koi8-r\r\n",
            &shout
        ));
    }

    /// A body paragraph ends with its newline, as in SpamAssassin's body array: a pattern
    /// that needs white space before the end matches there.
    #[test]
    fn a_paragraph_ends_with_its_newline() {
        let rs = ruleset("body T_BLANK_END /circle one\\)\\s{1,3}$/\nscore T_BLANK_END 1.0\n");
        let v = rs.scan(b"Subject: s\r\n\r\nDESIRED INCOME (circle one)\r\n\r\n$100 $300\r\n");
        assert!(names(&v).contains(&"T_BLANK_END"), "{:?}", names(&v));
    }

    /// `tvd_vertical_words(0, 10)`: every line longer than 5 characters has fewer than
    /// one space per ten other characters.
    #[test]
    fn vertical_words_measures_the_space_ratio_of_the_lines() {
        let rs = ruleset("body T_TVD eval:tvd_vertical_words('0','10')\nscore T_TVD 1.0\n");
        let fired = |msg: &str| names(&rs.scan(msg.as_bytes())).contains(&"T_TVD");
        assert!(fired(
            "Subject: Hi\r\n\r\nCHEAPMEDSONLINENOPRESCRIPTIONNEEDED\r\n"
        ));
        assert!(!fired(
            "Subject: Hi\r\n\r\nA sentence with the usual spaces in it.\r\n"
        ));
        // The subject is a line of the body too.
        assert!(!fired(
            "Subject: a normal subject line\r\n\r\nCHEAPMEDSONLINENOW\r\n"
        ));
        // No line longer than 5 characters: no measure, no hit.
        assert!(!fired("Subject: Hi\r\n\r\nok\r\n"));
    }

    #[test]
    fn transfer_encodings_of_the_parts_are_counted() {
        let rs =
            ruleset("rawbody T_B64 eval:check_for_mime('mime_base64_count')\nscore T_B64 1.0\n");
        let single = b"Subject: s\r\nContent-Transfer-Encoding: base64\r\n\r\naGk=\r\n";
        let verdict = rs.scan(single);
        let hits: Vec<&str> = names(&verdict)
            .into_iter()
            .filter(|n| n.starts_with("T_"))
            .collect();
        assert_eq!(hits, ["T_B64"]);
        let multi = b"Subject: s\r\nContent-Type: multipart/mixed; boundary=b\r\n\r\n--b\r\n\
            Content-Type: text/plain\r\nContent-Transfer-Encoding: quoted-printable\r\n\r\nhi=\r\n--b--\r\n";
        let verdict = rs.scan(multi);
        assert!(!names(&verdict).contains(&"T_B64"), "{verdict:?}");
    }

    #[test]
    fn a_dictionary_run_of_recipients_is_suspicious() {
        let rs = ruleset(
            "header T_SIM eval:similar_recipients('0.65','undef')\nscore T_SIM 1.0\n\
             header T_SORT eval:sorted_recipients()\nscore T_SORT 1.0\n",
        );
        let scan = |to: &str| {
            let msg = format!("To: {to}\r\nSubject: s\r\n\r\nhi\r\n");
            let v = rs.scan(msg.as_bytes());
            (names(&v).contains(&"T_SIM"), names(&v).contains(&"T_SORT"))
        };
        let run = "jo1@aa.example, jo2@ab.example, jo3@ac.example, jo4@ad.example, \
                   jo5@ae.example, jo6@af.example, jo7@ag.example";
        assert_eq!(scan(run), (true, true));
        let friends = "alice@one.example, bob@two.example, carol@three.example, \
                       dave@four.example, erin@five.example";
        assert_eq!(scan(friends), (false, false));
    }

    #[test]
    fn html_only_and_form_actions() {
        let rs = ruleset(
            "body T_HTML_ONLY eval:check_for_mime_html_only()\nscore T_HTML_ONLY 1.0\n\
             uri T_IP_URI m{^https?://\\d+\\.\\d+\\.\\d+\\.\\d+/}\nscore T_IP_URI 1.0\n",
        );
        let html = b"Subject: s\r\nContent-Type: text/html\r\n\r\n\
            <form method=post action=\"http://203.0.113.7/r.asp\"><input name=a></form>\r\n";
        let verdict = rs.scan(html);
        let hits = names(&verdict);
        assert!(
            hits.contains(&"T_HTML_ONLY") && hits.contains(&"T_IP_URI"),
            "{hits:?}"
        );
        let both = b"Subject: s\r\nContent-Type: multipart/alternative; boundary=b\r\n\r\n\
            --b\r\nContent-Type: text/plain\r\n\r\nhi\r\n--b\r\nContent-Type: text/html\r\n\r\n<b>hi</b>\r\n--b--\r\n";
        let verdict = rs.scan(both);
        assert!(!names(&verdict).contains(&"T_HTML_ONLY"));
    }

    /// SpamAssassin's envelope sender: the Return-Path the final delivery put on top, not
    /// one added before a relay, and none for mail fetched by fetchmail with an X-Sender.
    #[test]
    fn the_envelope_sender_is_the_one_final_delivery_wrote() {
        let rs = ruleset("header T_EF EnvelopeFrom =~ /bob\\@x\\.example/\nscore T_EF 1.0\n");
        let hit = |msg: &str| names(&rs.scan(msg.as_bytes())).contains(&"T_EF");
        assert!(hit(
            "Return-Path: <bob@x.example>\r\nReceived: from a by b\r\nSubject: s\r\n\r\nhi\r\n"
        ));
        assert!(!hit(
            "Received: from a by b\r\nReturn-Path: <bob@x.example>\r\nSubject: s\r\n\r\nhi\r\n"
        ));
        assert!(!hit(
            "Return-Path: <bob@x.example>\r\nX-Sender: carol@y.example\r\n\
             Received: from pop.y.example by here (fetchmail-6.4 POP3)\r\nSubject: s\r\n\r\nhi\r\n"
        ));
        assert!(hit(
            "X-Envelope-From: <bob@x.example>\r\nReturn-Path: <c@d.example>\r\nSubject: s\r\n\r\nhi\r\n"
        ));
        // What the last untrusted relay recorded comes first.
        assert!(hit(
            "Return-Path: <c@d.example>\r\nReceived: from mx.x.example (mx.x.example [203.0.113.5]) \
             by mail.example.test (Postfix) with ESMTP id 1 (envelope-from <bob@x.example>)\r\n\
             Subject: s\r\n\r\nhi\r\n"
        ));
        // An Envelope-Sender a relay added is passed over for the Return-Path on top.
        assert!(hit(
            "Return-Path: <bob@x.example>\r\nReceived: from a by b\r\nEnvelope-Sender: c@d.example\r\n\
             Subject: s\r\n\r\nhi\r\n"
        ));
    }

    #[test]
    fn the_two_examples_score_one_point_three() {
        let rs = ruleset("");
        // The HTML part: about a quarter markup.
        // About a fifth of the HTML part is markup.
        let html = "<div><b>Great deals today at http://deals.shop.biz/today</b></div>";
        let msg = format!(
            "From: a@example.org\r\nTo: b@example.test\r\nDate: Sun, 29 Nov 2026 10:00:00 +0000\r\nSubject: deals\r\nMIME-Version: 1.0\r\nContent-Type: text/html\r\n\r\n{html}\r\n"
        );
        let v = rs.scan(msg.as_bytes());
        assert_eq!(
            names(&v),
            ["BIZ_TLD", "HTML_20_30"],
            "{v:?} {:?}",
            rs.report
        );
        assert!(
            rs.report.skipped.is_empty(),
            "the built-in rules all load: {:?}",
            rs.report
        );
        assert!((v.score - 1.3).abs() < 1e-9, "{v:?}");
    }

    #[test]
    fn rule_kinds_meta_and_headers() {
        let rs = ruleset(
            r#"
header FROM_ADMIN   From:name =~ /^Admin$/
header TO_OR_CC     ToCc =~ /boss\@example\.test/
header ALL_XMAILER  ALL =~ /^X-Mailer: Bulk/m
header NO_LIST      List-Id !~ /./ [if-unset: ]
mimeheader EXE_ATT  Content-Type =~ /\.exe/
full   FULL_MARK    /MARKER-123/
rawbody RAW_HTML    /<blink>/i
meta   COMBO        (FROM_ADMIN + TO_OR_CC + ALL_XMAILER) >= 2
score  COMBO        2.5
"#,
        );
        let msg = b"From: \"Admin\" <admin@example.org>\r\nTo: x@example.test\r\nCc: boss@example.test\r\nX-Mailer: Bulk 1.0\r\nSubject: hi\r\nDate: x\r\nMIME-Version: 1.0\r\nContent-Type: multipart/mixed; boundary=b\r\n\r\n--b\r\nContent-Type: text/html\r\n\r\n<blink>MARKER-123</blink>\r\n--b\r\nContent-Type: application/octet-stream; name=\"a.exe\"\r\n\r\nxx\r\n--b--\r\n";
        let v = rs.scan(msg);
        for want in [
            "FROM_ADMIN",
            "TO_OR_CC",
            "ALL_XMAILER",
            "NO_LIST",
            "EXE_ATT",
            "FULL_MARK",
            "RAW_HTML",
            "COMBO",
        ] {
            assert!(names(&v).contains(&want), "{want} missing: {:?}", names(&v));
        }
        assert!(!names(&v).contains(&"GANNET_NO_DATE"));
        assert!(!names(&v).contains(&"GANNET_NO_TO"));
    }

    #[test]
    fn sub_rules_do_not_score_and_meta_combines_them() {
        let rs = ruleset("");
        let v = rs.scan(b"To: a@b\r\nDate: x\r\nSubject: hello\r\n\r\nYou have won the lottery!\r\nClaim your prize now.\r\n");
        assert_eq!(names(&v), ["GANNET_LOTTERY"]);
        assert_eq!(v.score, 4.0);
        let v =
            rs.scan(b"To: a@b\r\nDate: x\r\nSubject: hello\r\n\r\nYou have won the lottery!\r\n");
        assert!(v.hits.is_empty(), "{v:?}");
    }

    #[test]
    fn body_rules_match_within_one_paragraph() {
        // As in SpamAssassin, a body rule sees one paragraph at a time: `\s` does not
        // reach into the next one. Counting (`tflags multiple`) adds up over paragraphs.
        let rs = ruleset(
            "body CROSS /lottery\\s+claim/i\nscore CROSS 1\n\
             body __PRIZE /prize/\ntflags __PRIZE multiple\n\
             meta THREE_PRIZES __PRIZE > 2\nscore THREE_PRIZES 1\n",
        );
        let msg = |body: &str| format!("To: a@b\r\nDate: x\r\nSubject: s\r\n\r\n{body}");
        let v = rs.scan(msg("You won the lottery\r\n\r\nClaim it now\r\n").as_bytes());
        assert!(!names(&v).contains(&"CROSS"), "{v:?}");
        let v = rs.scan(msg("You won the lottery\r\nclaim it now\r\n").as_bytes());
        assert!(names(&v).contains(&"CROSS"), "{v:?}");
        let v = rs.scan(msg("a prize\r\n\r\nprize\r\n\r\nanother prize, prize\r\n").as_bytes());
        assert!(names(&v).contains(&"THREE_PRIZES"), "{v:?}");
        let v = rs.scan(msg("a prize\r\n\r\nprize\r\n").as_bytes());
        assert!(!names(&v).contains(&"THREE_PRIZES"), "{v:?}");
    }

    #[test]
    fn a_rule_needing_several_atoms_runs_where_one_paragraph_has_them() {
        // Three fields in a row: the rule needs three of its atoms in one paragraph, so
        // a message with them spread over paragraphs does not run it; the verdicts
        // stay those of the regex.
        let form = "(?:(?:name|phone|city):\\s*_{3,}\\s*){3}";
        let spelled =
            "(?:(?:n[_\\W]?a[_\\W]?m[_\\W]?e|c[_\\W]?i[_\\W]?t[_\\W]?y):\\s*_{3,}\\s*){2}";
        let rs = ruleset(&format!(
            "body FORM /{form}/i\nscore FORM 1\nbody SPELLED /{spelled}/i\nscore SPELLED 1\n"
        ));
        for rule in ["FORM", "SPELLED"] {
            let i = rs.by_name[rule];
            assert!(rs.atom_times[i] > 1, "{rule}: {}", rs.atom_times[i]);
        }
        let msg = |body: &str| format!("To: a@b\r\nDate: x\r\nSubject: s\r\n\r\n{body}");
        let v = rs.scan(msg("Name: ____ Phone: ____ City: ____\r\n").as_bytes());
        assert_eq!(names(&v), ["FORM"], "{v:?}");
        let v = rs.scan(msg("N.a.m.e: ____ c-i-t-y: ___\r\n").as_bytes());
        assert_eq!(names(&v), ["SPELLED"], "{v:?}");
        let spread = "Name: ____\r\n\r\nPhone: ____\r\n\r\nCity: ____ name city\r\n";
        let v = rs.scan(msg(spread).as_bytes());
        assert!(v.hits.is_empty(), "{v:?}");
    }

    #[test]
    fn look_alike_words_are_gated_by_their_chain() {
        // A letter-by-letter rule has no atom; the chain gate names it only where its
        // letters occur in order (or on text with character references, where it
        // always runs); the verdicts are the regex's.
        let rs = ruleset(
            "body LOOK /\\b(?!pills)(?:p|&\\#112;)[\\W_]?[i1!|l][\\W_]?[l1|]{1,2}[\\W_]?[s5\\$]\\b/i\n\
             score LOOK 1\n",
        );
        assert_eq!(rs.report.chained.get("body"), Some(&1), "{:?}", rs.report);
        let i = rs.by_name["LOOK"];
        let named = |text: &str| {
            let mut c = Vec::new();
            rs.candidates(rules::Kind::Body, text, &mut c);
            c.contains(&i)
        };
        assert!(!named("nothing to see here"));
        assert!(named("buy p1ll5 now"));
        assert!(named("buy pills now"), "the plain word passes the gate");
        assert!(named("&#112;i11s and nothing else"));
        let msg = |body: &str| format!("To: a@b\r\nDate: x\r\nSubject: s\r\n\r\n{body}\r\n");
        assert_eq!(names(&rs.scan(msg("buy p.1.l.5 now").as_bytes())), ["LOOK"]);
        assert!(rs.scan(msg("buy pills now").as_bytes()).hits.is_empty());
        assert!(rs.scan(msg("nothing to see").as_bytes()).hits.is_empty());
    }

    #[test]
    fn ascii_atoms_narrow_rules_on_ascii_text_only() {
        let rs = ruleset("body LOOKALIKE /[p\\xF0-\\xFF](?:a|\\xC3[\\xA0-\\xA5])[y\\xE0-\\xFF]/\nscore LOOKALIKE 1\n");
        assert_eq!(rs.report.ascii_atoms.get("body"), Some(&1));
        let i = rs.by_name["LOOKALIKE"];
        let candidates = |text: &str| {
            let mut c = Vec::new();
            rs.candidates(rules::Kind::Body, text, &mut c);
            c.contains(&i)
        };
        assert!(candidates("please pay now"));
        assert!(!candidates("nothing to see"), "ASCII text without the atom");
        assert!(
            candidates("caf\u{e9} without the atom"),
            "not ASCII: it runs"
        );
        // The verdicts follow: the look-alike spelling is still caught.
        let msg = |body: &str| {
            format!("To: a@b\r\nDate: x\r\nSubject: s\r\nContent-Type: text/plain; charset=utf-8\r\n\r\n{body}\r\n")
        };
        assert!(names(&rs.scan(msg("p\u{e0}y me").as_bytes())).contains(&"LOOKALIKE"));
        assert!(names(&rs.scan(msg("pay me").as_bytes())).contains(&"LOOKALIKE"));
        assert!(!names(&rs.scan(msg("nothing").as_bytes())).contains(&"LOOKALIKE"));
    }

    #[test]
    fn outlook_message_ids_carry_their_time() {
        let rs = ruleset(
            "header OUTLOOK_BAD eval:check_outlook_message_id()\nscore OUTLOOK_BAD 1\n\
             header RCVD_REMOVED eval:gated_through_received_hdr_remover()\nscore RCVD_REMOVED 1\n",
        );
        let msg = |token: &str, received: &str| {
            format!(
                "{received}Date: Mon, 1 Jan 2024 00:00:00 +0000\r\nTo: a@b\r\nFrom: c@d\r\n\
                 Message-ID: <abcd{token}$0123abcd$0123abcd@host.example>\r\nSubject: s\r\n\r\nhi\r\n"
            )
        };
        let relay = "Received: from mx.example (mx.example [192.0.2.1]) by mail.example with ESMTP; Mon, 1 Jan 2024 00:00:05 +0000\r\n";
        // The token of 2024-01-01 00:00 UTC (SpamAssassin's formula) agrees with the Date.
        let v = rs.scan(msg("01da3c45", relay).as_bytes());
        assert!(!names(&v).contains(&"OUTLOOK_BAD"), "{v:?}");
        assert!(!names(&v).contains(&"RCVD_REMOVED"), "{v:?}");
        // A token days away from both the Date and the Received time is forged.
        let v = rs.scan(msg("01da6355", relay).as_bytes());
        assert!(names(&v).contains(&"OUTLOOK_BAD"), "{v:?}");
        // No Received header at all: the Message-ID tests cannot be trusted.
        let v = rs.scan(msg("01da3c45", "").as_bytes());
        assert!(names(&v).contains(&"RCVD_REMOVED"), "{v:?}");
        let msn = "Received: from groups.msn.com (tk2.msn.com [192.0.2.9]) by x; Mon, 1 Jan 2024 00:00:05 +0000\r\n";
        assert!(names(&rs.scan(msg("01da3c45", msn).as_bytes())).contains(&"RCVD_REMOVED"));
    }

    #[test]
    fn envelope_sender_matches_the_relay_that_handed_it_in() {
        let rs = ruleset("header RP_RCVD eval:check_mailfrom_matches_rcvd()\nscore RP_RCVD 1\n");
        let msg = |return_path: &str, rdns: &str| {
            format!(
                "Return-Path: <{return_path}>\r\n\
                 Received: from mail.sender.example ({rdns} [203.0.113.7]) by mx.gannet.test with ESMTP id 1; Mon, 1 Jan 2024 00:00:05 +0000\r\n\
                 To: a@b\r\nFrom: c@d\r\nDate: Mon, 1 Jan 2024 00:00:00 +0000\r\nSubject: s\r\n\r\nhi\r\n"
            )
        };
        let hit = |m: String| names(&rs.scan(m.as_bytes())).contains(&"RP_RCVD");
        assert!(hit(msg("bounce@news.shop.co.uk", "out3.mailer.shop.co.uk")));
        assert!(!hit(msg(
            "bounce@news.shop.co.uk",
            "out3.mailer.other.co.uk"
        )));
        assert!(hit(msg("x@example.org", "smtp.example.org")));
        assert!(!hit(msg("x@example.org", "unknown")), "no reverse DNS name");
    }

    #[test]
    fn metas_read_the_network_tests_answered_before_the_scan() {
        let rs = ruleset(
            "header SPF_PASS eval:check_for_spf_pass()\nscore SPF_PASS -0.1\n\
             header __NO_XM exists:X-Nothing\n\
             meta AUTHENTIC SPF_PASS || __NO_XM\nscore AUTHENTIC -1\n",
        );
        assert!(rs.runnable()[rs.by_name["AUTHENTIC"]]);
        let msg = b"To: a@b\r\nFrom: c@d\r\nDate: x\r\nSubject: s\r\n\r\nhi\r\n";
        assert!(names(&rs.scan(msg)).is_empty());
        let v = rs.scan_with_facts(msg, &["SPF_PASS".to_string()]);
        // The meta sees the SPF result; the SPF hit itself is the caller's to add.
        assert_eq!(names(&v), ["AUTHENTIC"]);
    }

    #[test]
    fn prefilter_selects_candidates_and_reports() {
        let rs = ruleset("body ODD /\\d{3}-\\d{4}/\n");
        assert_eq!(rs.report.without_atom.get("body"), Some(&1));
        let mut c = Vec::new();
        rs.candidates(rules::Kind::Body, "please CLICK HERE now", &mut c);
        let names: Vec<&str> = c.iter().map(|&i| rs.rules[i].name.as_str()).collect();
        assert!(
            names.contains(&"GANNET_CLICK")
                && names.contains(&"ODD")
                && !names.contains(&"GANNET_DRUGS")
        );
    }

    #[test]
    fn headers_and_levels() {
        let v = Verdict {
            score: 6.25,
            hits: vec![Hit {
                name: "A".into(),
                score: 6.25,
                describe: String::new(),
            }],
            ..Verdict::default()
        };
        let h = v.headers(Some(5.0));
        assert!(h.starts_with("X-Spam-Flag: YES\r\nX-Spam-Score: 6.2\r\nX-Spam-Level: ******\r\nX-Spam-Status: Yes, score=6.2 required=5.0 tests=A\r\n"), "{h}");
        assert!(!v.headers(Some(10.0)).contains("X-Spam-Flag"));
        assert!(v
            .headers(None)
            .contains("X-Spam-Status: No, score=6.2 required=none tests=A"));
        assert_eq!(level_threshold("high"), Some(5.0));
        assert_eq!(level_threshold("off"), None);
    }

    #[test]
    fn garbage_and_backtracking_stay_bounded() {
        let rs = ruleset("body EVIL /(a+)+\\1b/\n");
        assert_eq!(rs.report.backtracking, 1);
        let text = format!("Subject: x\r\n\r\n{}\r\n", "a".repeat(30));
        let t = std::time::Instant::now();
        let _ = rs.scan(text.as_bytes());
        assert!(t.elapsed().as_secs() < 2);
        let _ = rs.scan(b"\xff\xfe\x00garbage without headers");
    }

    #[test]
    fn relay_date_and_domain_evals_and_nice_defaults() {
        let rs = ruleset(
            "header TRUSTED eval:check_all_trusted()\n\
             header NO_RDNS X-Spam-Relays-Untrusted =~ /^[^\\]]+ rdns= /\n\
             header PAST_3_6 eval:check_for_shifted_date('-6', '-3')\n\
             header DIFF_DOMAINS eval:check_equal_from_domains()\n\
             header LISTY exists:List-Id\ntflags LISTY nice\n",
        );
        let scan = |m: &str| {
            let v = rs.scan(m.as_bytes());
            let names: Vec<String> = v.hits.iter().map(|h| h.name.clone()).collect();
            (
                names,
                v.hits.iter().find(|h| h.name == "LISTY").map(|h| h.score),
            )
        };
        // From a public host without reverse DNS, dated 4 hours before it was received.
        let (hits, _) = scan(
            "Return-Path: <bounce@lists.example.net>\r\n\
             Received: from helo.example (unknown [203.0.113.5]) by mx.example.test (Postfix) with ESMTP id A1; Sun, 29 Nov 2026 14:00:00 +0000\r\n\
             From: Ann <ann@example.org>\r\nTo: b@example.test\r\nDate: Sun, 29 Nov 2026 10:00:00 +0000\r\nSubject: s\r\n\r\nbody\r\n",
        );
        assert!(hits.contains(&"NO_RDNS".to_string()), "{hits:?}");
        assert!(hits.contains(&"PAST_3_6".to_string()), "{hits:?}");
        assert!(hits.contains(&"DIFF_DOMAINS".to_string()), "{hits:?}");
        assert!(!hits.contains(&"TRUSTED".to_string()), "{hits:?}");
        // Only a private hop, same domains, on time; a nice rule scores -1 by default.
        let (hits, listy) = scan(
            "Return-Path: <ann@mail.example.org>\r\n\
             Received: from pc (pc.lan [192.168.1.20]) by mx.example.test (Postfix) with ESMTP id A2; Sun, 29 Nov 2026 10:01:00 +0000\r\n\
             From: Ann <ann@example.org>\r\nTo: b@example.test\r\nList-Id: <l.example.org>\r\nDate: Sun, 29 Nov 2026 10:00:00 +0000\r\nSubject: s\r\n\r\nbody\r\n",
        );
        assert!(hits.contains(&"TRUSTED".to_string()), "{hits:?}");
        for absent in ["NO_RDNS", "PAST_3_6", "DIFF_DOMAINS"] {
            assert!(!hits.contains(&absent.to_string()), "{absent}: {hits:?}");
        }
        assert_eq!(listy, Some(-1.0));
    }

    #[test]
    fn freemail_domains_exact_wildcard_and_exempt() {
        let rs = ruleset(
            "freemail_domains gmail.com hotmail.* yahoo.co*.*\n\
             header FM_FROM eval:check_freemail_from()\n\
             header FM_REPLYTO eval:check_freemail_header('Reply-To', '\\d@')\n",
        );
        let hits = |m: &str| -> Vec<String> {
            rs.scan(m.as_bytes())
                .hits
                .into_iter()
                .map(|h| h.name)
                .collect()
        };
        let h = hits("From: A <a@gmail.com>\r\nReply-To: b7@hotmail.fr\r\nSubject: s\r\n\r\nx\r\n");
        assert!(
            h.contains(&"FM_FROM".into()) && h.contains(&"FM_REPLYTO".into()),
            "{h:?}"
        );
        let h = hits("From: a@yahoo.co.uk\r\nReply-To: b@hotmail.fr\r\nSubject: s\r\n\r\nx\r\n");
        assert!(
            h.contains(&"FM_FROM".into()) && !h.contains(&"FM_REPLYTO".into()),
            "{h:?}"
        );
        // Role addresses and other domains are not free mail.
        let h = hits("From: support@gmail.com\r\nSubject: s\r\n\r\nx\r\n");
        assert!(!h.contains(&"FM_FROM".into()), "{h:?}");
        let h = hits("From: a@gmail.com.example\r\nSubject: s\r\n\r\nx\r\n");
        assert!(!h.contains(&"FM_FROM".into()), "{h:?}");
    }
}
