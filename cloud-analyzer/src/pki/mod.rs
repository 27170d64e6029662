//! A small PKI for the fleet (`cloud-analyzer pki ...`): a CA in one private folder, client
//! certificates whose CN is the identity the broker's ACL knows (a device id, `cascade-analyzer`,
//! `cascade-alerts`), the broker's server certificate, and revocation through a CRL that Mosquitto
//! reads (`crlfile`). See `design/pki.md`.
//!
//! The CA folder (0700) holds `ca.pem`, `ca.key` (0600), `crl.pem`, `index.txt` (every
//! certificate issued, revoked or not) and `crlnumber`.

mod files;
mod index;
mod params;

use std::path::{Path, PathBuf};

use rcgen::{
    CertificateRevocationListParams, CertifiedIssuer, Issuer, KeyIdMethod, KeyPair,
    RevokedCertParams, SerialNumber,
};
use time::OffsetDateTime;

use files::{Access, Lock};
pub use index::{Entry, Index, Kind, rfc3339};
pub use params::MAX_DAYS;

pub const CA_CERT: &str = "ca.pem";
pub const CA_KEY: &str = "ca.key";
pub const CRL: &str = "crl.pem";
pub const INDEX: &str = "index.txt";
pub const CRL_NUMBER: &str = "crlnumber";
/// The analyzer's CN: `deploy/mosquitto.acl` grants it every device's crops and the alerts.
pub const ANALYZER_CN: &str = "cascade-analyzer";
/// Alert consumers' CN: read-only, alerts only.
pub const ALERTS_CN: &str = "cascade-alerts";

#[derive(Debug, thiserror::Error)]
pub enum PkiError {
    #[error("{path}: {source}")]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("{0} exists: refusing to overwrite a CA (choose another --dir)")]
    CaExists(PathBuf),
    #[error("no CA in {0} (make one with `cloud-analyzer pki init --dir {0}`)")]
    NoCa(PathBuf),
    #[error("the CA's name must be one line of text, not {0:?}")]
    BadName(String),
    #[error(
        "{0:?} is not a device id: 1-64 of A-Z a-z 0-9 - _ . (no /, + or #), and not a reserved \
         name ({reserved}, {ANALYZER_CN}, {ALERTS_CN})",
        reserved = cascade_shared::topics::RESERVED_DEVICE_IDS.join(", ")
    )]
    BadDeviceId(String),
    #[error("{0:?} is not a host name or IP address")]
    BadHost(String),
    #[error("a server certificate needs at least one --host")]
    NoHosts,
    #[error("--days must be 1 to {MAX_DAYS}, not {0}")]
    BadDays(u32),
    #[error(
        "{cn} already has a live {kind} certificate (serial {serial}): revoke it first \
         (`pki revoke {serial}`), or pass --force to issue another beside it"
    )]
    Live {
        kind: Kind,
        cn: String,
        serial: String,
    },
    #[error("{0} exists: pass --force to replace it")]
    FileExists(PathBuf),
    #[error("no certificate with the serial or name {0:?} in the index")]
    NotFound(String),
    #[error("every certificate with the serial or name {0:?} is revoked already")]
    AlreadyRevoked(String),
    #[error("the CA expired at {}: make a new one (`pki init`) and reissue", rfc3339(*.0))]
    CaExpired(OffsetDateTime),
    #[error("{path}:{line}: {reason}")]
    BadIndex {
        path: PathBuf,
        line: usize,
        reason: String,
    },
    #[error("certificate: {0}")]
    Rcgen(#[from] rcgen::Error),
}

impl PkiError {
    fn io(path: &Path, source: std::io::Error) -> PkiError {
        PkiError::Io {
            path: path.to_path_buf(),
            source,
        }
    }
}

/// Who a certificate is for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Identity {
    /// A device: CN and DNS SAN = its id.
    Device(String),
    Analyzer,
    Alerts,
    /// The broker: CN = the first host, a SAN per host (DNS name or IP address).
    Server(Vec<String>),
}

impl Identity {
    pub fn kind(&self) -> Kind {
        match self {
            Identity::Device(_) => Kind::Device,
            Identity::Analyzer => Kind::Analyzer,
            Identity::Alerts => Kind::Alerts,
            Identity::Server(_) => Kind::Server,
        }
    }

    pub fn common_name(&self) -> &str {
        match self {
            Identity::Device(id) => id,
            Identity::Analyzer => ANALYZER_CN,
            Identity::Alerts => ALERTS_CN,
            Identity::Server(hosts) => hosts.first().map_or("", String::as_str),
        }
    }

    fn names(&self) -> Vec<&str> {
        match self {
            Identity::Server(hosts) => hosts.iter().map(String::as_str).collect(),
            _ => vec![self.common_name()],
        }
    }

    /// `server` for the broker (the names `deploy/mosquitto.conf` uses), the CN otherwise.
    fn file_stem(&self) -> &str {
        match self {
            Identity::Server(_) => "server",
            _ => self.common_name(),
        }
    }

    fn validate(&self) -> Result<(), PkiError> {
        match self {
            Identity::Device(id) if !valid_device_id(id) => Err(PkiError::BadDeviceId(id.clone())),
            Identity::Server(hosts) if hosts.is_empty() => Err(PkiError::NoHosts),
            Identity::Server(hosts) => match hosts.iter().find(|h| !params::valid_host(h)) {
                Some(bad) => Err(PkiError::BadHost(bad.clone())),
                None => Ok(()),
            },
            _ => Ok(()),
        }
    }
}

/// A device id the topics accept, and not a service's CN (which the ACL grants more).
pub fn valid_device_id(id: &str) -> bool {
    cascade_shared::topics::valid_device_id(id)
        && ![ANALYZER_CN, ALERTS_CN]
            .iter()
            .any(|s| s.eq_ignore_ascii_case(id))
}

/// How to issue: the CA folder, the lifetime, where the pair goes (default: the CA folder), and
/// whether a live certificate for the same identity or existing files may be replaced.
#[derive(Debug, Clone)]
pub struct IssueOptions {
    pub dir: PathBuf,
    pub days: u32,
    pub out: Option<PathBuf>,
    pub force: bool,
}

/// A certificate just issued and where its files are.
#[derive(Debug, Clone)]
pub struct Issued {
    pub entry: Entry,
    pub cert: PathBuf,
    pub key: PathBuf,
}

/// Creates a CA in `dir` (made 0700): key, self-signed certificate, index, empty CRL.
pub fn init(dir: &Path, name: &str, days: u32) -> Result<Entry, PkiError> {
    if name.trim().is_empty() || name.contains(['\t', '\n', '\r']) {
        return Err(PkiError::BadName(name.to_string()));
    }
    let now = now();
    let end = params::not_after(now, days, None)?;
    refuse_existing_ca(dir)?;
    cascade_shared::private::dir(dir).map_err(|e| PkiError::io(dir, e))?;
    let _lock = Lock::take(dir)?;
    refuse_existing_ca(dir)?;
    let mut index = Index::default();
    let (serial, serial_hex) = params::new_serial(&index);
    let ca =
        CertifiedIssuer::self_signed(params::ca(name, serial, now, end), KeyPair::generate()?)?;
    let entry = Entry {
        serial: serial_hex,
        kind: Kind::Ca,
        cn: name.to_string(),
        not_after: end,
        revoked_at: None,
    };
    index.entries.push(entry.clone());
    files::write(
        &dir.join(CA_KEY),
        ca.key().serialize_pem().as_bytes(),
        Access::Private,
    )?;
    files::write(&dir.join(CA_CERT), ca.pem().as_bytes(), Access::Public)?;
    files::write(&dir.join(INDEX), index.text().as_bytes(), Access::Private)?;
    write_crl(dir, &ca, &index, now)?;
    Ok(entry)
}

fn refuse_existing_ca(dir: &Path) -> Result<(), PkiError> {
    match [CA_KEY, CA_CERT, INDEX]
        .map(|f| dir.join(f))
        .into_iter()
        .find(|p| p.exists())
    {
        Some(p) => Err(PkiError::CaExists(p)),
        None => Ok(()),
    }
}

/// Issues a certificate for `identity`: key (0600) and certificate (0644) in the output folder,
/// recorded in the index first (so that whatever was handed out can be revoked).
pub fn issue(identity: &Identity, opts: &IssueOptions) -> Result<Issued, PkiError> {
    identity.validate()?;
    let mut ca = Ca::open(&opts.dir)?;
    let now = now();
    let (kind, cn) = (identity.kind(), identity.common_name());
    if let Some(live) = ca.index.live(kind, cn, now).filter(|_| !opts.force) {
        return Err(PkiError::Live {
            kind,
            cn: cn.to_string(),
            serial: live.serial.clone(),
        });
    }
    let out = opts.out.clone().unwrap_or_else(|| opts.dir.clone());
    let stem = identity.file_stem();
    let (cert_path, key_path) = (
        out.join(format!("{stem}.pem")),
        out.join(format!("{stem}.key")),
    );
    if let Some(p) = [&key_path, &cert_path]
        .into_iter()
        .find(|p| p.exists() && !opts.force)
    {
        return Err(PkiError::FileExists(p.clone()));
    }
    let ca_end = ca.ca_entry()?.not_after;
    let end = params::not_after(now, opts.days, Some(ca_end))?;
    let (serial, serial_hex) = params::new_serial(&ca.index);
    let key = KeyPair::generate()?;
    let cert = params::leaf(identity, serial, now, end)?.signed_by(&key, &ca.issuer)?;
    let entry = Entry {
        serial: serial_hex,
        kind,
        cn: cn.to_string(),
        not_after: end,
        revoked_at: None,
    };
    ca.index.entries.push(entry.clone());
    ca.save_index()?;
    files::ensure_dir(&out)?;
    files::write(&key_path, key.serialize_pem().as_bytes(), Access::Private)?;
    files::write(&cert_path, cert.pem().as_bytes(), Access::Public)?;
    Ok(Issued {
        entry,
        cert: cert_path,
        key: key_path,
    })
}

/// Revokes every unrevoked certificate named `target` (a serial, or a CN such as a device id)
/// and rewrites the CRL. The CA itself cannot be revoked.
pub fn revoke(dir: &Path, target: &str) -> Result<Vec<Entry>, PkiError> {
    let mut ca = Ca::open(dir)?;
    let now = now();
    let mut named = ca
        .index
        .entries
        .iter_mut()
        .filter(|e| e.kind != Kind::Ca && e.is_named(target))
        .peekable();
    if named.peek().is_none() {
        return Err(PkiError::NotFound(target.to_string()));
    }
    let mut revoked = Vec::new();
    for e in named.filter(|e| e.revoked_at.is_none()) {
        e.revoked_at = Some(now);
        revoked.push(e.clone());
    }
    if revoked.is_empty() {
        return Err(PkiError::AlreadyRevoked(target.to_string()));
    }
    ca.save_index()?;
    write_crl(dir, &ca.issuer, &ca.index, now)?;
    Ok(revoked)
}

/// Signs the CRL again from the index (after a failed write, or to start a fresh `thisUpdate`).
pub fn refresh_crl(dir: &Path) -> Result<PathBuf, PkiError> {
    let ca = Ca::open(dir)?;
    write_crl(dir, &ca.issuer, &ca.index, now())?;
    Ok(dir.join(CRL))
}

/// Writes `crl.pem`: every revoked certificate, the next CRL number, and a `nextUpdate` at the
/// CA's own expiry. Mosquitto (OpenSSL) refuses every client once a CRL's `nextUpdate` has
/// passed, and nothing here republishes CRLs on a schedule, so it must not lapse before the CA.
fn write_crl(
    dir: &Path,
    issuer: &Issuer<'_, KeyPair>,
    index: &Index,
    now: OffsetDateTime,
) -> Result<(), PkiError> {
    let ca_end = index
        .ca()
        .ok_or_else(|| no_ca_entry(&dir.join(INDEX)))?
        .not_after;
    if ca_end <= now {
        return Err(PkiError::CaExpired(ca_end));
    }
    let number = next_crl_number(dir)?;
    let revoked_certs = index
        .revoked()
        .map(revoked_params)
        .collect::<Result<_, _>>()?;
    let params = CertificateRevocationListParams {
        this_update: now,
        next_update: ca_end,
        crl_number: SerialNumber::from_slice(&minimal_bytes(number)),
        issuing_distribution_point: None,
        revoked_certs,
        key_identifier_method: KeyIdMethod::Sha256,
    };
    let pem = params.signed_by(issuer)?.pem()?;
    files::write(&dir.join(CRL), pem.as_bytes(), Access::Public)?;
    let path = dir.join(CRL_NUMBER);
    files::write(&path, format!("{number}\n").as_bytes(), Access::Private)
}

fn revoked_params(e: &Entry) -> Result<RevokedCertParams, PkiError> {
    let serial = hex::decode(&e.serial).map_err(|err| PkiError::BadIndex {
        path: PathBuf::from(INDEX),
        line: 0,
        reason: format!("serial {:?}: {err}", e.serial),
    })?;
    Ok(RevokedCertParams {
        serial_number: SerialNumber::from_slice(&serial),
        revocation_time: e.revoked_at.unwrap_or_else(now),
        reason_code: None,
        invalidity_date: None,
    })
}

fn next_crl_number(dir: &Path) -> Result<u64, PkiError> {
    let path = dir.join(CRL_NUMBER);
    let last = match std::fs::read_to_string(&path) {
        Ok(text) => text.trim().parse::<u64>().map_err(|e| PkiError::BadIndex {
            path: path.clone(),
            line: 1,
            reason: e.to_string(),
        })?,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => 0,
        Err(e) => return Err(PkiError::io(&path, e)),
    };
    Ok(last + 1)
}

/// Big-endian bytes without leading zeros (at least one byte).
fn minimal_bytes(n: u64) -> Vec<u8> {
    let bytes = n.to_be_bytes();
    let skip = bytes.iter().take_while(|b| **b == 0).count().min(7);
    bytes[skip..].to_vec()
}

fn now() -> OffsetDateTime {
    OffsetDateTime::now_utc().truncate_to_second()
}

fn no_ca_entry(path: &Path) -> PkiError {
    PkiError::BadIndex {
        path: path.to_path_buf(),
        line: 0,
        reason: "no line of kind ca".into(),
    }
}

/// An open CA folder, locked for the duration of one command.
struct Ca {
    dir: PathBuf,
    issuer: Issuer<'static, KeyPair>,
    index: Index,
    _lock: Lock,
}

impl Ca {
    fn open(dir: &Path) -> Result<Ca, PkiError> {
        if !dir.join(CA_KEY).is_file() {
            return Err(PkiError::NoCa(dir.to_path_buf()));
        }
        let lock = Lock::take(dir)?;
        let read = |name: &str| {
            let path = dir.join(name);
            std::fs::read_to_string(&path).map_err(|e| PkiError::io(&path, e))
        };
        let key = KeyPair::from_pem(&read(CA_KEY)?)?;
        let issuer = Issuer::from_ca_cert_pem(&read(CA_CERT)?, key)?;
        let index = Index::read(&dir.join(INDEX))?;
        Ok(Ca {
            dir: dir.to_path_buf(),
            issuer,
            index,
            _lock: lock,
        })
    }

    fn ca_entry(&self) -> Result<&Entry, PkiError> {
        self.index
            .ca()
            .ok_or_else(|| no_ca_entry(&self.dir.join(INDEX)))
    }

    fn save_index(&self) -> Result<(), PkiError> {
        let text = self.index.text();
        files::write(&self.dir.join(INDEX), text.as_bytes(), Access::Private)
    }
}

#[cfg(test)]
mod tests;
