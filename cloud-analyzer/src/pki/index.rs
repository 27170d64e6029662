//! `index.txt`: every certificate the CA has issued, one tab-separated line each
//! (`serial kind cn not-after revoked-at`), the CA's own first. The CRL is made from it.

use std::fmt;
use std::path::Path;

use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;

use super::PkiError;

pub const HEADER: &str = "# serial\tkind\tcn\tnot_after\trevoked_at (- while valid)";

/// What a certificate is for; the kind decides its key usages and its file names.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Ca,
    Device,
    Analyzer,
    Alerts,
    Server,
}

impl Kind {
    const ALL: [Kind; 5] = [
        Kind::Ca,
        Kind::Device,
        Kind::Analyzer,
        Kind::Alerts,
        Kind::Server,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Kind::Ca => "ca",
            Kind::Device => "device",
            Kind::Analyzer => "analyzer",
            Kind::Alerts => "alerts",
            Kind::Server => "server",
        }
    }

    fn parse(s: &str) -> Option<Kind> {
        Kind::ALL.into_iter().find(|k| k.as_str() == s)
    }
}

impl fmt::Display for Kind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// One issued certificate.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Entry {
    /// Upper-case hex, as `openssl x509 -serial` prints it.
    pub serial: String,
    pub kind: Kind,
    pub cn: String,
    pub not_after: OffsetDateTime,
    pub revoked_at: Option<OffsetDateTime>,
}

impl Entry {
    /// Neither revoked nor expired at `now`.
    pub fn is_live(&self, now: OffsetDateTime) -> bool {
        self.revoked_at.is_none() && self.not_after > now
    }

    /// Whether `target` names this certificate: its serial (any case, colons allowed) or its CN.
    pub fn is_named(&self, target: &str) -> bool {
        let serial = target.replace(':', "");
        self.cn == target || self.serial.eq_ignore_ascii_case(&serial)
    }

    fn line(&self) -> String {
        let revoked = self.revoked_at.map_or_else(|| "-".to_string(), rfc3339);
        let not_after = rfc3339(self.not_after);
        let (serial, kind, cn) = (&self.serial, self.kind, &self.cn);
        format!("{serial}\t{kind}\t{cn}\t{not_after}\t{revoked}")
    }

    fn parse(line: &str) -> Result<Entry, String> {
        let fields: Vec<&str> = line.split('\t').collect();
        let [serial, kind, cn, not_after, revoked] = fields[..] else {
            return Err(format!("{} fields, not 5", fields.len()));
        };
        let revoked_at = match revoked {
            "-" => None,
            t => Some(parse_time(t)?),
        };
        Ok(Entry {
            serial: serial.to_string(),
            kind: Kind::parse(kind).ok_or_else(|| format!("unknown kind {kind:?}"))?,
            cn: cn.to_string(),
            not_after: parse_time(not_after)?,
            revoked_at,
        })
    }
}

/// The whole index, in issuing order.
#[derive(Debug, Clone, Default)]
pub struct Index {
    pub entries: Vec<Entry>,
}

impl Index {
    pub fn read(path: &Path) -> Result<Index, PkiError> {
        let text = std::fs::read_to_string(path).map_err(|e| PkiError::io(path, e))?;
        let mut entries = Vec::new();
        for (n, line) in text.lines().enumerate() {
            if line.starts_with('#') || line.trim().is_empty() {
                continue;
            }
            let entry = Entry::parse(line).map_err(|reason| PkiError::BadIndex {
                path: path.to_path_buf(),
                line: n + 1,
                reason,
            })?;
            entries.push(entry);
        }
        Ok(Index { entries })
    }

    pub fn text(&self) -> String {
        let mut out = format!("{HEADER}\n");
        for e in &self.entries {
            out.push_str(&e.line());
            out.push('\n');
        }
        out
    }

    /// The CA's own entry (the first of its kind).
    pub fn ca(&self) -> Option<&Entry> {
        self.entries.iter().find(|e| e.kind == Kind::Ca)
    }

    pub fn has_serial(&self, serial: &str) -> bool {
        self.entries.iter().any(|e| e.serial == serial)
    }

    /// A live certificate of this kind and CN, if there is one.
    pub fn live(&self, kind: Kind, cn: &str, now: OffsetDateTime) -> Option<&Entry> {
        self.entries
            .iter()
            .find(|e| e.kind == kind && e.cn == cn && e.is_live(now))
    }

    pub fn revoked(&self) -> impl Iterator<Item = &Entry> {
        self.entries.iter().filter(|e| e.revoked_at.is_some())
    }
}

/// `2026-01-31T12:00:00Z`: whole seconds, UTC.
pub fn rfc3339(t: OffsetDateTime) -> String {
    t.truncate_to_second()
        .format(&Rfc3339)
        .unwrap_or_else(|_| t.unix_timestamp().to_string())
}

fn parse_time(s: &str) -> Result<OffsetDateTime, String> {
    OffsetDateTime::parse(s, &Rfc3339).map_err(|e| format!("time {s:?}: {e}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn entries_round_trip() {
        let now = OffsetDateTime::now_utc().truncate_to_second();
        let index = Index {
            entries: vec![Entry {
                serial: "4A0F".into(),
                kind: Kind::Device,
                cn: "edge-01".into(),
                not_after: now,
                revoked_at: Some(now),
            }],
        };
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("index.txt");
        std::fs::write(&path, index.text()).expect("write");
        let back = Index::read(&path).expect("read");
        assert_eq!(back.entries, index.entries);
        assert!(back.entries[0].is_named("4a:0f") && back.entries[0].is_named("edge-01"));
    }

    #[test]
    fn a_damaged_line_is_named() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("index.txt");
        std::fs::write(&path, format!("{HEADER}\n4A\tdevice\tedge-01\n")).expect("write");
        let e = Index::read(&path).expect_err("refused").to_string();
        assert!(e.contains("index.txt:2") && e.contains("3 fields"), "{e}");
    }
}
