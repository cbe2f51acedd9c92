//! From learned counts to a verdict: each token's probability (Robinson's f(w)), the
//! significant ones combined by chi-square (Fisher), as SpamAssassin's Bayes plugin and
//! its `CombineChi` do, with their constants.

/// Robinson's `x`: the probability of a token never seen.
const NEUTRAL: f64 = 0.538;
/// Robinson's `s`: how strongly that assumption weighs against the counts.
const STRENGTH: f64 = 0.030;
/// Tokens whose probability is within this of 0.5 say nothing and are left out.
const MIN_PROB_STRENGTH: f64 = 0.346;
/// At most this many of the most significant tokens are combined.
const SIGNIFICANT_TOKENS: usize = 150;
/// The classifier answers only once this many spam and ham messages were learned.
pub const MIN_LEARNED: u64 = 200;

/// How many learned spam and ham messages had a token.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Counts {
    pub spam: u64,
    pub ham: u64,
}

/// How many spam and ham messages were learned in all.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Totals {
    pub spam: u64,
    pub ham: u64,
}

impl Totals {
    /// Enough has been learned for a verdict (SpamAssassin's `bayes_min_spam_num` and
    /// `bayes_min_ham_num`).
    pub fn ready(&self) -> bool {
        self.spam >= MIN_LEARNED && self.ham >= MIN_LEARNED
    }
}

/// What the classifier says of a message.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Verdict {
    /// The probability that the message is spam, 0 to 1.
    pub probability: f64,
    /// How many tokens were significant enough to be combined.
    pub tokens: usize,
}

impl Verdict {
    /// The SpamAssassin rule the probability hits (`23_bayes.cf`: BAYES_00 is (0, 0.01],
    /// 0 itself included; BAYES_999 hits together with BAYES_99).
    pub fn rules(&self) -> &'static [&'static str] {
        let p = self.probability;
        const RANGES: [(f64, &[&str]); 10] = [
            (0.01, &["BAYES_00"]),
            (0.05, &["BAYES_05"]),
            (0.20, &["BAYES_20"]),
            (0.40, &["BAYES_40"]),
            (0.60, &["BAYES_50"]),
            (0.80, &["BAYES_60"]),
            (0.95, &["BAYES_80"]),
            (0.99, &["BAYES_95"]),
            (0.999, &["BAYES_99"]),
            (f64::INFINITY, &["BAYES_99", "BAYES_999"]),
        ];
        RANGES
            .iter()
            .find(|(upper, _)| p <= *upper)
            .map_or(&[], |(_, rules)| rules)
    }
}

/// The probability that a message with this token is spam; None for a token never seen.
pub fn probability(c: Counts, totals: Totals) -> Option<f64> {
    if c.spam + c.ham == 0 || totals.spam == 0 || totals.ham == 0 {
        return None;
    }
    let (s, n) = (c.spam as f64, c.ham as f64);
    let (ns, nn) = (totals.spam as f64, totals.ham as f64);
    let ratio = (s * nn) / (n * ns + s * nn);
    let seen = s + n;
    Some((STRENGTH * NEUTRAL + seen * ratio) / (STRENGTH + seen))
}

/// The verdict on a message whose tokens have `counts`; None until enough is learned or
/// when no token is significant.
pub fn classify(counts: impl IntoIterator<Item = Counts>, totals: Totals) -> Option<Verdict> {
    if !totals.ready() {
        return None;
    }
    let mut probs: Vec<f64> = counts
        .into_iter()
        .filter_map(|c| probability(c, totals))
        .filter(|p| (p - 0.5).abs() >= MIN_PROB_STRENGTH)
        .collect();
    if probs.is_empty() {
        return None;
    }
    // The most significant first (furthest from 0.5).
    probs.sort_by(|a, b| (b - 0.5).abs().total_cmp(&(a - 0.5).abs()));
    probs.truncate(SIGNIFICANT_TOKENS);
    Some(Verdict {
        probability: combine(&probs, totals),
        tokens: probs.len(),
    })
}

/// Fisher's method, as SpamAssassin's `CombineChi`: how unlikely the tokens are as
/// ham and as spam, each by a chi-square test, made one number; starting from the learned
/// shares of spam and ham.
fn combine(probs: &[f64], totals: Totals) -> f64 {
    let all = (totals.spam + totals.ham) as f64;
    // Sums of logarithms rather than SpamAssassin's products with exponent juggling: the
    // same numbers without underflow.
    let mut ln_s = (totals.spam as f64 / all).ln();
    let mut ln_h = (totals.ham as f64 / all).ln();
    for &p in probs {
        ln_s += (1.0 - p).max(f64::MIN_POSITIVE).ln();
        ln_h += p.max(f64::MIN_POSITIVE).ln();
    }
    let n = probs.len();
    let s = 1.0 - chi2q(-2.0 * ln_s, n);
    let h = 1.0 - chi2q(-2.0 * ln_h, n);
    ((s - h) + 1.0) / 2.0
}

/// The chi-square survival function for an even number of degrees of freedom,
/// `2 * half_df`: the probability of a value at least `x2`.
fn chi2q(x2: f64, half_df: usize) -> f64 {
    let m = x2 / 2.0;
    let mut term = (-m).exp();
    let mut sum = term;
    for i in 1..half_df {
        term *= m / i as f64;
        sum += term;
    }
    sum.min(1.0)
}

#[cfg(test)]
mod tests {
    use super::*;

    const LEARNED: Totals = Totals {
        spam: 1000,
        ham: 1000,
    };

    #[test]
    fn token_probabilities_follow_robinson() {
        // Seen in spam only, many times: close to 1; a single sighting is pulled toward
        // the neutral point by the strength.
        let p = probability(Counts { spam: 50, ham: 0 }, LEARNED).unwrap();
        assert!(p > 0.999, "{p}");
        let once = probability(Counts { spam: 1, ham: 0 }, LEARNED).unwrap();
        assert!((once - (0.03 * 0.538 + 1.0) / 1.03).abs() < 1e-12, "{once}");
        let even = probability(Counts { spam: 5, ham: 5 }, LEARNED).unwrap();
        assert!((even - 0.5).abs() < 0.01, "{even}");
        assert_eq!(probability(Counts::default(), LEARNED), None);
        // Twice as much ham learned: the same counts lean to spam.
        let totals = Totals {
            spam: 500,
            ham: 1000,
        };
        assert!(probability(Counts { spam: 5, ham: 5 }, totals).unwrap() > 0.6);
    }

    #[test]
    fn chi_square_survival() {
        // With 2 degrees of freedom it is exp(-x/2).
        assert!((chi2q(2.0, 1) - (-1.0f64).exp()).abs() < 1e-12);
        assert!((chi2q(0.0, 5) - 1.0).abs() < 1e-12);
        assert!(chi2q(1000.0, 10) < 1e-100);
    }

    #[test]
    fn verdicts_and_rules() {
        let spammy = vec![Counts { spam: 40, ham: 0 }; 30];
        let v = classify(spammy, LEARNED).unwrap();
        assert!(v.probability > 0.999, "{v:?}");
        assert_eq!(v.rules(), ["BAYES_99", "BAYES_999"]);
        let hammy = vec![Counts { spam: 0, ham: 40 }; 30];
        let v = classify(hammy, LEARNED).unwrap();
        assert!(v.probability < 0.01, "{v:?}");
        assert_eq!(v.rules(), ["BAYES_00"]);
        // Mixed evidence lands in the middle.
        let mut mixed = vec![Counts { spam: 40, ham: 0 }; 10];
        mixed.extend(vec![Counts { spam: 0, ham: 40 }; 10]);
        let v = classify(mixed, LEARNED).unwrap();
        assert!((v.probability - 0.5).abs() < 0.1, "{v:?}");
        assert_eq!(v.rules(), ["BAYES_50"]);
        // Neutral tokens only, or too little learned: no verdict.
        assert_eq!(classify(vec![Counts { spam: 3, ham: 3 }; 5], LEARNED), None);
        let few = Totals {
            spam: 199,
            ham: 5000,
        };
        assert_eq!(classify(vec![Counts { spam: 40, ham: 0 }], few), None);
        // A thousand significant tokens: only 150 are combined, and nothing underflows.
        let many = vec![Counts { spam: 900, ham: 1 }; 1000];
        let v = classify(many, LEARNED).unwrap();
        assert_eq!(v.tokens, 150);
        assert!(v.probability.is_finite() && v.probability > 0.99);
        let ranges = [
            (0.0, "BAYES_00"),
            (0.03, "BAYES_05"),
            (0.1, "BAYES_20"),
            (0.3, "BAYES_40"),
            (0.7, "BAYES_60"),
            (0.9, "BAYES_80"),
            (0.97, "BAYES_95"),
            (0.995, "BAYES_99"),
        ];
        for (p, rule) in ranges {
            let v = Verdict {
                probability: p,
                tokens: 1,
            };
            assert_eq!(v.rules()[0], rule, "{p}");
        }
    }
}
