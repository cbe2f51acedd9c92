//! The wall clock, read in one place: Unix seconds. Protocol cores never read it (time is
//! passed in); the runtime, delivery and the admin commands do, through here.

use std::time::{SystemTime, UNIX_EPOCH};

/// Seconds since the Unix epoch (0 if the clock says otherwise).
pub fn unix_now() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs() as i64)
}
