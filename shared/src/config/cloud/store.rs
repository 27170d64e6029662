//! `[store]`: where the analyzer keeps messages, crops and alerts. SQLite in a folder (the
//! embedded default, one analyzer), or a PostgreSQL server shared by analyzer replicas.

use std::path::PathBuf;
use std::time::Duration;

use serde::Deserialize;

use crate::Problems;

/// Which database holds the store.
#[derive(Debug, Clone, Copy, Default, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "snake_case")]
pub enum StoreKind {
    /// SQLite in `dir`: one analyzer; alerts folded in memory.
    #[default]
    Sqlite,
    /// A PostgreSQL server at `url` / `url_env`: any number of replicas; alerts folded in the
    /// database, in one transaction per step.
    Postgres,
}

/// `[store]`. Debug never shows `url` (it may hold a password).
#[derive(Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StoreConfig {
    /// `sqlite` or `postgres`. Default: `sqlite`.
    #[serde(default)]
    pub kind: StoreKind,
    /// The store's folder (SQLite only). No default: required with `kind = "sqlite"`.
    pub dir: Option<PathBuf>,
    /// A libpq connection string or URL (PostgreSQL only), e.g.
    /// `host=db.example.net user=cascade dbname=cascade`. Prefer `url_env` when it holds a
    /// password. Default: none.
    pub url: Option<String>,
    /// The environment variable holding the connection string (PostgreSQL only). Default: none.
    pub url_env: Option<String>,
    /// `lease_s` (PostgreSQL only): a crop stored but not decided, or an alert event committed but
    /// not published, by a replica that went silent for this long is taken over by another.
    /// Positive. Default: 30 s.
    #[serde(
        rename = "lease_s",
        default = "default_lease",
        with = "crate::config::seconds"
    )]
    pub lease: Duration,
    /// `retention_days`, in days (fractions allowed): crops and dead letters older than this are
    /// dropped; message ids are kept twice as long for de-duplication. Positive. Default: 30 days.
    #[serde(
        rename = "retention_days",
        default = "default_retention",
        with = "super::days"
    )]
    pub retention: Duration,
}

fn default_retention() -> Duration {
    Duration::from_secs(30 * 86_400)
}

fn default_lease() -> Duration {
    Duration::from_secs(30)
}

impl std::fmt::Debug for StoreConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("StoreConfig")
            .field("kind", &self.kind)
            .field("dir", &self.dir)
            .field("url", &self.url.as_ref().map(|_| "<set>"))
            .field("url_env", &self.url_env)
            .field("lease", &self.lease)
            .field("retention", &self.retention)
            .finish()
    }
}

impl StoreConfig {
    /// Records every problem of this section.
    pub fn validate(&self, p: &mut Problems) {
        p.check(
            !self.retention.is_zero(),
            "store.retention_days",
            "must be positive",
        );
        p.check(!self.lease.is_zero(), "store.lease_s", "must be positive");
        match self.kind {
            StoreKind::Sqlite => {
                p.check(
                    self.dir.is_some(),
                    "store.dir",
                    "must be set (the SQLite store's folder)",
                );
                for (set, field) in [
                    (self.url.is_some(), "url"),
                    (self.url_env.is_some(), "url_env"),
                ] {
                    p.check(
                        !set,
                        format!("store.{field}"),
                        "is for kind = \"postgres\" (this store is SQLite)",
                    );
                }
            }
            StoreKind::Postgres => {
                p.check(
                    self.url.is_some() != self.url_env.is_some(),
                    "store.url",
                    "set exactly one of url and url_env (the PostgreSQL connection string)",
                );
                p.check(
                    self.dir.is_none(),
                    "store.dir",
                    "is for kind = \"sqlite\" (this store is PostgreSQL; crops are kept in it)",
                );
                if let Some(var) = &self.url_env {
                    p.check(
                        std::env::var_os(var).is_some(),
                        "store.url_env",
                        format!("the environment variable {var} is not set"),
                    );
                }
            }
        }
    }

    /// The PostgreSQL connection string, from `url` or the variable `url_env` names.
    pub fn postgres_url(&self) -> Option<String> {
        match (&self.url, &self.url_env) {
            (Some(u), _) => Some(u.clone()),
            (None, Some(var)) => std::env::var(var).ok(),
            (None, None) => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(text: &str) -> Result<StoreConfig, toml::de::Error> {
        toml::from_str(text)
    }

    fn problems(text: &str) -> Vec<String> {
        let mut p = Problems::new();
        parse(text).expect("parses").validate(&mut p);
        p.iter().map(str::to_string).collect()
    }

    #[test]
    fn sqlite_is_the_default_and_needs_a_folder() {
        let cfg = parse("dir = \"store\"").expect("parses");
        assert_eq!(cfg.kind, StoreKind::Sqlite);
        assert_eq!(cfg.lease, Duration::from_secs(30));
        assert!(problems("dir = \"store\"").is_empty());
        let p = problems("retention_days = 1");
        assert!(p.iter().any(|m| m.contains("store.dir")), "{p:?}");
        let p = problems("dir = \"s\"\nurl = \"host=x\"");
        assert!(p.iter().any(|m| m.contains("store.url")), "{p:?}");
    }

    #[test]
    fn postgres_needs_exactly_one_url_and_never_shows_it() {
        let text = "kind = \"postgres\"\nurl = \"postgres://u:secret@h/db\"";
        assert!(problems(text).is_empty());
        let cfg = parse(text).expect("parses");
        assert_eq!(
            cfg.postgres_url().as_deref(),
            Some("postgres://u:secret@h/db")
        );
        assert!(!format!("{cfg:?}").contains("secret"));
        let p = problems("kind = \"postgres\"");
        assert!(p.iter().any(|m| m.contains("store.url")), "{p:?}");
        let p = problems("kind = \"postgres\"\nurl_env = \"CASCADE_TEST_SURELY_UNSET_VAR\"");
        assert!(p.iter().any(|m| m.contains("store.url_env")), "{p:?}");
        let p = problems("kind = \"postgres\"\nurl = \"h\"\ndir = \"d\"\nlease_s = 0");
        assert!(p.iter().any(|m| m.contains("store.dir")), "{p:?}");
        assert!(p.iter().any(|m| m.contains("store.lease_s")), "{p:?}");
    }

    #[test]
    fn unknown_fields_and_kinds_are_refused() {
        assert!(parse("dir = \"s\"\nfolder = \"x\"").is_err());
        let e = parse("kind = \"mysql\"").expect_err("unknown kind");
        assert!(e.to_string().contains("kind"), "{e}");
    }
}
