//! The daily purge: at start, then every day at `quarantine.purge_at` (UTC), held
//! messages past their expiry are deleted (with their blobs, when nothing else refers to
//! them), message traces older than `trace.retention`, and the Bayes databases' oldest
//! rare tokens past `spam.bayes_max_tokens`. A thread of its own that sleeps in between.

use std::time::Duration;

use anyhow::Context;
use gannet_core::clock::unix_now;
use gannet_core::config::Quarantine;
use gannet_core::delivery::outbound::Wake;
use gannet_core::delivery::quarantine;
use gannet_core::store::Store;

const DAY: i64 = 86_400;

/// Seconds from `now` to the next `second_of_day` (UTC), at least one.
fn until_next(now: i64, second_of_day: i64) -> i64 {
    let today = now - now.rem_euclid(DAY);
    let mut next = today + second_of_day;
    if next <= now {
        next += DAY;
    }
    next - now
}

/// Runs one purge now; logs what it did.
fn purge_now(store: &Store, trace_retention: i64, bayes_max_tokens: usize) {
    let now = unix_now();
    // The console's per-minute counts: two days.
    if let Err(e) = store.drop_stats_before(now.div_euclid(60) - 2 * 24 * 60) {
        tracing::error!(error = %e, "dropping old per-minute counts failed");
    }
    match gannet_core::store::trace::purge(store, now - trace_retention) {
        Ok(0) => {}
        Ok(n) => tracing::info!(messages = n, "message traces past their retention purged"),
        Err(e) => tracing::error!(error = %e, "trace purge failed"),
    }
    if bayes_max_tokens > 0 {
        expire_bayes(store, bayes_max_tokens);
    }
    match quarantine::purge(store, now) {
        Ok((_, 0)) => {}
        Ok((changes, n)) => match store.commit_blocking(changes) {
            Ok(_) => tracing::info!(deleted = n, "quarantine purged"),
            Err(e) => tracing::error!(error = %e, "quarantine purge failed"),
        },
        Err(e) => tracing::error!(error = %e, "quarantine purge: cannot list"),
    }
}

/// Expires each Bayes scope's tokens past `max_tokens`.
fn expire_bayes(store: &Store, max_tokens: usize) {
    use gannet_core::store::bayes;
    let scopes = match bayes::scopes(store) {
        Ok(scopes) => scopes,
        Err(e) => return tracing::error!(error = %e, "Bayes expiry: cannot list the databases"),
    };
    for scope in scopes {
        match bayes::expire(store, scope, max_tokens) {
            Ok(0) => {}
            Ok(n) => tracing::info!(scope, expired = n, "Bayes tokens expired"),
            Err(e) => tracing::error!(scope, error = %e, "Bayes expiry failed"),
        }
    }
}

pub(crate) fn spawn(
    store: Store,
    config: &Quarantine,
    trace_retention: Duration,
    bayes_max_tokens: usize,
    _wake: Wake,
) -> anyhow::Result<()> {
    let trace_retention = trace_retention.as_secs() as i64;
    let at = i64::from(
        config
            .purge_second_of_day()
            .map_err(anyhow::Error::msg)
            .context("quarantine.purge_at")?,
    );
    std::thread::Builder::new()
        .name("purge".into())
        .spawn(move || loop {
            purge_now(&store, trace_retention, bayes_max_tokens);
            let wait = until_next(unix_now(), at);
            std::thread::sleep(Duration::from_secs(wait as u64));
        })?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_next_purge_is_later_today_or_tomorrow() {
        let midnight = 1_796_000_000 - 1_796_000_000 % DAY;
        assert_eq!(until_next(midnight + 3600, 3 * 3600), 2 * 3600);
        assert_eq!(until_next(midnight + 3 * 3600, 3 * 3600), DAY);
        assert_eq!(until_next(midnight + 4 * 3600, 3 * 3600), DAY - 3600);
    }
}
