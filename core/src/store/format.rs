//! The store's on-disk format version, written when a store is made and checked at
//! every open, before anything else reads or writes: a store written by a newer gannet
//! (a format this one does not know) is refused with an error that says so, rather than
//! misread; an older one is brought up to date by the migrations here, each run once,
//! in order, and logged. An image upgrade replaces the binary and keeps the data
//! partition; this is what makes that safe both ways.

use super::kv::{Cf, KvStore, StoreError, WriteOp};

/// The format this build reads and writes.
pub const FORMAT_VERSION: u32 = 1;

/// Where the version is kept, in [`Cf::Meta`].
const KEY: &[u8] = b"format_version";

/// What opening found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Opened {
    /// An empty store, now stamped with [`FORMAT_VERSION`].
    New,
    /// A store already in this format.
    Current,
    /// A store of an older format, migrated to this one.
    Migrated { from: u32 },
}

/// One step from `to - 1` to `to`: what it does to the data, for the log.
struct Migration {
    to: u32,
    what: &'static str,
    run: fn(&dyn KvStore) -> Result<(), StoreError>,
}

/// Every migration, oldest first. Version 0 is a store made before the version was
/// recorded (the first builds): its layout is version 1's, so the step only stamps it.
const MIGRATIONS: &[Migration] = &[Migration {
    to: 1,
    what: "record the format version (the layout is unchanged)",
    run: |_| Ok(()),
}];

/// Checks (and migrates, or stamps) the store's format; called by `Store::open`.
pub(super) fn check(kv: &dyn KvStore) -> Result<Opened, StoreError> {
    check_against(kv, FORMAT_VERSION, MIGRATIONS)
}

fn check_against(
    kv: &dyn KvStore,
    known: u32,
    migrations: &[Migration],
) -> Result<Opened, StoreError> {
    let found = match kv.get(Cf::Meta, KEY)? {
        Some(bytes) => Some(decode(&bytes)?),
        None => None,
    };
    let found = match found {
        Some(v) if v == known => return Ok(Opened::Current),
        Some(v) if v > known => {
            return Err(StoreError::Refused(format!(
                "the store is in format {v}, written by a newer gannet; this one knows formats \
                 up to {known}: run the newer gannet (an older image cannot read data a newer one \
                 has written)"
            )))
        }
        Some(v) => v,
        None if is_empty(kv)? => {
            stamp(kv, known)?;
            return Ok(Opened::New);
        }
        None => 0,
    };
    for step in migrations.iter().filter(|m| m.to > found && m.to <= known) {
        tracing::warn!(
            from = step.to - 1,
            to = step.to,
            what = step.what,
            "store format migration"
        );
        (step.run)(kv)?;
        stamp(kv, step.to)?;
        tracing::warn!(to = step.to, "store format migration done");
    }
    Ok(Opened::Migrated { from: found })
}

fn decode(bytes: &[u8]) -> Result<u32, StoreError> {
    let array: [u8; 4] = bytes.try_into().map_err(|_| StoreError::Corrupt {
        cf: "meta",
        detail: format!("format_version has {} bytes, not 4", bytes.len()),
    })?;
    Ok(u32::from_be_bytes(array))
}

fn stamp(kv: &dyn KvStore, version: u32) -> Result<(), StoreError> {
    kv.write(
        &[WriteOp::Put {
            cf: Cf::Meta,
            key: KEY.to_vec(),
            value: version.to_be_bytes().to_vec(),
        }],
        true,
    )
}

/// No record at all: a store just made.
fn is_empty(kv: &dyn KvStore) -> Result<bool, StoreError> {
    for cf in Cf::ALL {
        let mut any = false;
        kv.scan_prefix(cf, &[], &mut |_, _| {
            any = true;
            false
        })?;
        if any {
            return Ok(false);
        }
    }
    Ok(true)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::memory::MemoryStore;

    fn put(kv: &dyn KvStore, cf: Cf, key: &[u8], value: &[u8]) {
        kv.write(
            &[WriteOp::Put {
                cf,
                key: key.to_vec(),
                value: value.to_vec(),
            }],
            false,
        )
        .unwrap();
    }

    #[test]
    fn a_new_store_is_stamped_and_then_current() {
        let kv = MemoryStore::default();
        assert_eq!(check(&kv).unwrap(), Opened::New);
        assert_eq!(check(&kv).unwrap(), Opened::Current);
    }

    #[test]
    fn a_store_from_before_the_version_is_migrated_once() {
        let kv = MemoryStore::default();
        put(&kv, Cf::Routes, b"@example.test", b"x");
        assert_eq!(check(&kv).unwrap(), Opened::Migrated { from: 0 });
        assert_eq!(check(&kv).unwrap(), Opened::Current);
    }

    #[test]
    fn migrations_run_in_order_from_the_found_version() {
        let kv = MemoryStore::default();
        put(&kv, Cf::Meta, KEY, &1u32.to_be_bytes());
        let steps = [
            Migration {
                to: 1,
                what: "never",
                run: |_| panic!("already at 1"),
            },
            Migration {
                to: 2,
                what: "two",
                run: |kv| {
                    put(kv, Cf::Meta, b"two", b"");
                    Ok(())
                },
            },
            Migration {
                to: 3,
                what: "three",
                run: |kv| {
                    assert!(kv.get(Cf::Meta, b"two").unwrap().is_some(), "2 before 3");
                    Ok(())
                },
            },
        ];
        assert_eq!(
            check_against(&kv, 3, &steps).unwrap(),
            Opened::Migrated { from: 1 }
        );
        assert_eq!(check_against(&kv, 3, &steps).unwrap(), Opened::Current);
    }

    #[test]
    fn a_newer_format_is_refused_and_left_alone() {
        let kv = MemoryStore::default();
        put(&kv, Cf::Meta, KEY, &7u32.to_be_bytes());
        let e = check(&kv).unwrap_err().to_string();
        assert!(e.contains("format 7") && e.contains("newer gannet"), "{e}");
        assert_eq!(
            kv.get(Cf::Meta, KEY).unwrap(),
            Some(7u32.to_be_bytes().to_vec())
        );
        put(&kv, Cf::Meta, KEY, b"bad");
        assert!(matches!(check(&kv), Err(StoreError::Corrupt { .. })));
    }
}
