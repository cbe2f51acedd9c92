//! Which rule directories to load when the configuration names none: SpamAssassin's own
//! rules where they are installed, as SpamAssassin itself chooses them. `sa-update`'s
//! directory (`/var/lib/spamassassin/<version>/updates_spamassassin_org`, the newest
//! version that has rules) wins over the packaged rules (`/usr/share/spamassassin`), and
//! the site directory (`/etc/spamassassin`, where an administrator's `local.cf` lives)
//! comes after either. Without stock rules Gannet runs its built-in rules alone.

use std::path::{Path, PathBuf};

/// Where the rules come from, for the start-up log and `rules check`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RulesOrigin {
    /// `spam.rules_dirs` in the configuration.
    Configured,
    /// `sa-update`'s download of SpamAssassin's rules.
    SaUpdate(PathBuf),
    /// The rules of the installed SpamAssassin package.
    Packaged(PathBuf),
    /// No stock rules were found: only the built-in ones.
    BuiltIn,
}

impl std::fmt::Display for RulesOrigin {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            RulesOrigin::Configured => f.write_str("spam.rules_dirs"),
            RulesOrigin::SaUpdate(p) => write!(f, "sa-update's rules in {}", p.display()),
            RulesOrigin::Packaged(p) => {
                write!(f, "SpamAssassin's packaged rules in {}", p.display())
            }
            RulesOrigin::BuiltIn => f.write_str("the built-in rules only"),
        }
    }
}

/// The places SpamAssassin installs its rules; a test points them elsewhere.
#[derive(Debug, Clone)]
pub struct StockPlaces {
    /// Holds one directory per SpamAssassin version (`4.000001`), `sa-update`'s target.
    pub update_root: PathBuf,
    /// The packaged rules.
    pub packaged: PathBuf,
    /// Site configuration (`local.cf`, plugin `.pre` files).
    pub site: PathBuf,
}

impl Default for StockPlaces {
    fn default() -> Self {
        StockPlaces {
            update_root: PathBuf::from("/var/lib/spamassassin"),
            packaged: PathBuf::from("/usr/share/spamassassin"),
            site: PathBuf::from("/etc/spamassassin"),
        }
    }
}

/// The directories to load: the configured ones when set (even an empty list: the
/// built-in rules only), else the stock rules found in `places`.
pub fn rules_dirs(
    configured: Option<&[PathBuf]>,
    places: &StockPlaces,
) -> (Vec<PathBuf>, RulesOrigin) {
    match configured {
        Some([]) => return (Vec::new(), RulesOrigin::BuiltIn),
        Some(dirs) => return (dirs.to_vec(), RulesOrigin::Configured),
        None => {}
    }
    let (rules, origin) = if let Some(updated) = newest_update(&places.update_root) {
        (updated.clone(), RulesOrigin::SaUpdate(updated))
    } else if has_rules(&places.packaged) {
        (
            places.packaged.clone(),
            RulesOrigin::Packaged(places.packaged.clone()),
        )
    } else {
        return (Vec::new(), RulesOrigin::BuiltIn);
    };
    let mut dirs = vec![rules];
    if places.site.is_dir() {
        dirs.push(places.site.clone());
    }
    (dirs, origin)
}

/// `sa-update`'s rules of the newest SpamAssassin version that has some.
fn newest_update(root: &Path) -> Option<PathBuf> {
    let mut versions: Vec<(Vec<u64>, PathBuf)> = std::fs::read_dir(root)
        .ok()?
        .flatten()
        .filter_map(|entry| {
            let name = entry.file_name().into_string().ok()?;
            let version = name
                .split('.')
                .map(|part| part.parse::<u64>().ok())
                .collect::<Option<Vec<_>>>()?;
            Some((version, entry.path().join("updates_spamassassin_org")))
        })
        .filter(|(_, dir)| has_rules(dir))
        .collect();
    versions.sort();
    versions.pop().map(|(_, dir)| dir)
}

/// A directory with at least one `.cf` file.
fn has_rules(dir: &Path) -> bool {
    std::fs::read_dir(dir).is_ok_and(|entries| {
        entries
            .flatten()
            .any(|e| e.path().extension().is_some_and(|x| x == "cf"))
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn places(root: &Path) -> StockPlaces {
        StockPlaces {
            update_root: root.join("var"),
            packaged: root.join("share"),
            site: root.join("etc"),
        }
    }

    fn rules_in(dir: &Path) {
        std::fs::create_dir_all(dir).unwrap();
        std::fs::write(dir.join("10_rules.cf"), "body X /x/\n").unwrap();
    }

    #[test]
    fn configured_directories_win_even_when_empty() {
        let root = tempfile::tempdir().unwrap();
        let p = places(root.path());
        rules_in(&p.packaged);
        let mine = vec![PathBuf::from("/mine")];
        assert_eq!(
            rules_dirs(Some(&mine), &p),
            (mine.clone(), RulesOrigin::Configured)
        );
        assert_eq!(rules_dirs(Some(&[]), &p), (vec![], RulesOrigin::BuiltIn));
    }

    #[test]
    fn nothing_installed_means_the_built_in_rules() {
        let root = tempfile::tempdir().unwrap();
        let p = places(root.path());
        std::fs::create_dir_all(&p.packaged).unwrap(); // a directory without rules
        assert_eq!(rules_dirs(None, &p), (vec![], RulesOrigin::BuiltIn));
    }

    #[test]
    fn packaged_rules_come_with_the_site_directory() {
        let root = tempfile::tempdir().unwrap();
        let p = places(root.path());
        rules_in(&p.packaged);
        assert_eq!(
            rules_dirs(None, &p),
            (
                vec![p.packaged.clone()],
                RulesOrigin::Packaged(p.packaged.clone())
            )
        );
        std::fs::create_dir_all(&p.site).unwrap();
        assert_eq!(
            rules_dirs(None, &p).0,
            vec![p.packaged.clone(), p.site.clone()]
        );
    }

    #[test]
    fn the_newest_sa_update_download_wins_over_the_package() {
        let root = tempfile::tempdir().unwrap();
        let p = places(root.path());
        rules_in(&p.packaged);
        rules_in(&p.update_root.join("3.004006/updates_spamassassin_org"));
        rules_in(&p.update_root.join("4.000001/updates_spamassassin_org"));
        // Newer, but empty: not used. Keys and stray files are ignored.
        std::fs::create_dir_all(p.update_root.join("4.000002/updates_spamassassin_org")).unwrap();
        std::fs::create_dir_all(p.update_root.join("sa-update-keys")).unwrap();
        let expected = p.update_root.join("4.000001/updates_spamassassin_org");
        assert_eq!(
            rules_dirs(None, &p),
            (vec![expected.clone()], RulesOrigin::SaUpdate(expected))
        );
    }
}
