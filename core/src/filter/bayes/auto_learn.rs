//! Auto-learning (SpamAssassin's `bayes_auto_learn` and its AutoLearnThreshold plugin):
//! a delivered message whose rules alone score very low is learned as ham, one that
//! scores very high as spam, so the classifier keeps up with the mail without anyone
//! training it. Off by default (`spam.bayes_auto_learn`), as a wrong auto-learned verdict
//! teaches the filter its own mistakes.
//!
//! The score that decides is SpamAssassin's: the hits' points in the score set without
//! Bayes (the same network tests), leaving out rules flagged `noautolearn` or `userconf`
//! and the classifier's own `BAYES_*` rules (`tflags learn`). A message is learned as spam
//! only if at least 3 of those points come from header tests and 3 from body tests (one
//! kind alone is too easily tripped), and neither way when the classifier already says
//! the opposite firmly (its own rules' points below -1 for spam, above 1 for ham).

use crate::filter::compile::{AutoLearnRole, Ruleset, ScoreSet};
use crate::filter::rules::Kind;
use crate::filter::scan::Verdict;

/// The thresholds (SpamAssassin's `bayes_auto_learn_threshold_nonspam` and `_spam`).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Thresholds {
    /// Learned as ham below this.
    pub ham_below: f64,
    /// Learned as spam at or above this.
    pub spam_at: f64,
}

impl Default for Thresholds {
    fn default() -> Self {
        Thresholds {
            ham_below: 0.1,
            spam_at: 12.0,
        }
    }
}

/// Points a spam needs from each of header and body tests.
const MIN_HEADER_POINTS: f64 = 3.0;
const MIN_BODY_POINTS: f64 = 3.0;
/// The classifier's own points past which it is taken to disagree.
const LEARNER_SAID_HAM: f64 = -1.0;
const LEARNER_SAID_SPAM: f64 = 1.0;

/// The points auto-learning weighs, from a verdict.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct Points {
    /// Every counted hit, in the score set without Bayes.
    pub total: f64,
    pub header: f64,
    pub body: f64,
    /// The learner's own rules, in the set the scan used.
    pub learner: f64,
}

/// Weighs `verdict`'s hits as auto-learning does. Hits of no rule in `rules` (the SPF
/// result and DNS blocklists added after the scan) count as header tests, as
/// SpamAssassin's own SPF and DNSBL tests are.
pub fn points(rules: &Ruleset, verdict: &Verdict) -> Points {
    let set = ScoreSet {
        bayes: false,
        network: verdict.score_set.network,
    }
    .index();
    let mut p = Points::default();
    for hit in &verdict.hits {
        let Some(rule) = rules
            .by_name
            .get(&hit.name)
            .and_then(|&i| rules.rules.get(i))
        else {
            p.total += hit.score;
            p.header += hit.score;
            continue;
        };
        let times = if rule.max_hits > 1 && rule.scores[verdict.score_set.index()] != 0.0 {
            // A counting rule's hit carries its count times its score.
            hit.score / rule.scores[verdict.score_set.index()]
        } else {
            1.0
        };
        match rule.autolearn {
            AutoLearnRole::Ignored => continue,
            AutoLearnRole::Learner => {
                p.learner += hit.score;
                continue;
            }
            AutoLearnRole::Counts => {}
        }
        let score = rule.scores[set] * times;
        p.total += score;
        match rule.kind {
            Kind::Header | Kind::MimeHeader => p.header += score,
            Kind::Body | Kind::RawBody | Kind::Uri | Kind::Full => p.body += score,
            Kind::Meta => {}
        }
    }
    p
}

/// Whether to learn the message: `Some(true)` as spam, `Some(false)` as ham, `None` not.
/// A verdict whose scan failed is never learned.
pub fn decide(rules: &Ruleset, verdict: &Verdict, thresholds: Thresholds) -> Option<bool> {
    if verdict.error.is_some() {
        return None;
    }
    let p = points(rules, verdict);
    if p.total < thresholds.ham_below {
        return (p.learner <= LEARNER_SAID_SPAM).then_some(false);
    }
    if p.total >= thresholds.spam_at {
        let enough = p.header >= MIN_HEADER_POINTS && p.body >= MIN_BODY_POINTS;
        return (enough && p.learner >= LEARNER_SAID_HAM).then_some(true);
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::filter::scan::Hit;

    fn ruleset(text: &str) -> Ruleset {
        let mut source = crate::filter::rules::RuleSource::default();
        source.add_text(text, None);
        Ruleset::compile(source)
    }

    fn verdict(hits: &[(&str, f64)], bayes_set: bool) -> Verdict {
        Verdict {
            score: hits.iter().map(|(_, s)| s).sum(),
            hits: hits
                .iter()
                .map(|(n, s)| Hit {
                    name: n.to_string(),
                    score: *s,
                    describe: String::new(),
                })
                .collect(),
            score_set: ScoreSet {
                bayes: bayes_set,
                network: false,
            },
            ..Verdict::default()
        }
    }

    const RULES: &str = "header H_BAD Subject =~ /bad/\nscore H_BAD 4 4 3 3\n\
        body B_BAD /bad/\nscore B_BAD 5\n\
        uri U_BAD /bad/\nscore U_BAD 4\n\
        meta M_BAD H_BAD && B_BAD\nscore M_BAD 2\n\
        header WL From =~ /friend/\nscore WL -100\ntflags WL userconf nice\n\
        body BAYES_99 eval:check_bayes('0.99', '1.00')\nscore BAYES_99 0 0 3.5 3.5\ntflags BAYES_99 learn\n\
        body BAYES_00 eval:check_bayes('0.00', '0.01')\nscore BAYES_00 0 0 -1.5 -1.5\ntflags BAYES_00 nice learn\n";

    #[test]
    fn spam_needs_the_threshold_and_points_from_headers_and_body() {
        let rules = ruleset(RULES);
        let t = Thresholds::default();
        // 4 + 5 + 4 + 2 = 15 points: 4 from headers, 9 from the body and URIs.
        let spam = verdict(
            &[
                ("H_BAD", 4.0),
                ("B_BAD", 5.0),
                ("U_BAD", 4.0),
                ("M_BAD", 2.0),
            ],
            false,
        );
        assert_eq!(decide(&rules, &spam, t), Some(true));
        let p = points(&rules, &spam);
        assert_eq!((p.total, p.header, p.body), (15.0, 4.0, 9.0));
        // As many points, none from headers: not learned.
        let body_only = verdict(
            &[
                ("B_BAD", 5.0),
                ("U_BAD", 4.0),
                ("M_BAD", 2.0),
                ("U_BAD", 4.0),
            ],
            false,
        );
        assert_eq!(decide(&rules, &body_only, t), None);
        // Between the thresholds: not learned.
        assert_eq!(decide(&rules, &verdict(&[("B_BAD", 5.0)], false), t), None);
    }

    #[test]
    fn ham_is_learned_below_the_threshold_unless_the_classifier_disagrees() {
        let rules = ruleset(RULES);
        let t = Thresholds::default();
        assert_eq!(decide(&rules, &verdict(&[], false), t), Some(false));
        // The whitelist's -100 does not count: without it the message scores 5.
        let listed = verdict(&[("WL", -100.0), ("B_BAD", 5.0)], false);
        assert_eq!(decide(&rules, &listed, t), None);
        // The classifier says spam firmly: a clean-looking message is not learned as ham.
        assert_eq!(
            decide(&rules, &verdict(&[("BAYES_99", 3.5)], true), t),
            None
        );
    }

    #[test]
    fn points_are_taken_from_the_set_without_bayes() {
        let rules = ruleset(RULES);
        // Scanned in the Bayes set (H_BAD scored 3 there), weighed in set 0 (4 points);
        // the classifier's own hit is kept apart.
        let v = verdict(
            &[
                ("H_BAD", 3.0),
                ("B_BAD", 5.0),
                ("U_BAD", 4.0),
                ("BAYES_00", -1.5),
            ],
            true,
        );
        let p = points(&rules, &v);
        assert_eq!((p.total, p.learner), (13.0, -1.5));
        // The classifier says ham firmly: not learned as spam.
        assert_eq!(decide(&rules, &v, Thresholds::default()), None);
        let mut failed = verdict(&[], false);
        failed.error = Some("bug".into());
        assert_eq!(decide(&rules, &failed, Thresholds::default()), None);
    }
}
