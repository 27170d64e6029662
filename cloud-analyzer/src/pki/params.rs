//! What goes into each kind of certificate: subject, names, key usages, lifetime, serial.

use std::net::IpAddr;

use rcgen::{
    BasicConstraints, CertificateParams, DnType, ExtendedKeyUsagePurpose, IsCa, KeyUsagePurpose,
    SanType, SerialNumber,
};
use time::OffsetDateTime;

use super::index::{Index, Kind};
use super::{Identity, PkiError};

/// Clients and servers may have clocks this far behind the CA's.
const BACKDATE: time::Duration = time::Duration::minutes(5);
/// The longest lifetime accepted (100 years).
pub const MAX_DAYS: u32 = 36_500;

/// A fresh random serial not yet in `index`: 16 bytes, positive, upper-case hex.
pub fn new_serial(index: &Index) -> (SerialNumber, String) {
    loop {
        let mut bytes: [u8; 16] = rand::random();
        // Positive and always 16 bytes long (DER integers are signed).
        bytes[0] = (bytes[0] & 0x7f) | 0x40;
        let hex = hex::encode_upper(bytes);
        if !index.has_serial(&hex) {
            return (SerialNumber::from_slice(&bytes), hex);
        }
    }
}

/// `now + days`, no later than `limit` (a certificate never outlives its CA).
pub fn not_after(
    now: OffsetDateTime,
    days: u32,
    limit: Option<OffsetDateTime>,
) -> Result<OffsetDateTime, PkiError> {
    if !(1..=MAX_DAYS).contains(&days) {
        return Err(PkiError::BadDays(days));
    }
    let end = now + time::Duration::days(i64::from(days));
    Ok(limit.map_or(end, |l| end.min(l)))
}

/// The CA: may sign certificates and CRLs, and nothing else; no intermediate below it.
pub fn ca(
    name: &str,
    serial: SerialNumber,
    now: OffsetDateTime,
    end: OffsetDateTime,
) -> CertificateParams {
    let mut p = CertificateParams::default();
    p.distinguished_name.push(DnType::CommonName, name);
    p.is_ca = IsCa::Ca(BasicConstraints::Constrained(0));
    p.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
    p.serial_number = Some(serial);
    p.not_before = now - BACKDATE;
    p.not_after = end;
    p
}

/// An end entity: its CN, its names, client or server authentication.
pub fn leaf(
    identity: &Identity,
    serial: SerialNumber,
    now: OffsetDateTime,
    end: OffsetDateTime,
) -> Result<CertificateParams, PkiError> {
    let mut p = CertificateParams::default();
    p.distinguished_name
        .push(DnType::CommonName, identity.common_name());
    p.subject_alt_names = identity
        .names()
        .iter()
        .map(|n| san(n))
        .collect::<Result<_, _>>()?;
    p.key_usages = vec![KeyUsagePurpose::DigitalSignature];
    p.extended_key_usages = vec![match identity.kind() {
        Kind::Server => ExtendedKeyUsagePurpose::ServerAuth,
        _ => ExtendedKeyUsagePurpose::ClientAuth,
    }];
    p.use_authority_key_identifier_extension = true;
    p.serial_number = Some(serial);
    p.not_before = now - BACKDATE;
    p.not_after = end;
    Ok(p)
}

/// An IP address SAN for an address, a DNS name SAN otherwise.
fn san(name: &str) -> Result<SanType, PkiError> {
    if let Ok(ip) = name.parse::<IpAddr>() {
        return Ok(SanType::IpAddress(ip));
    }
    let dns = name
        .try_into()
        .map_err(|_| PkiError::BadHost(name.to_string()))?;
    Ok(SanType::DnsName(dns))
}

/// A name a server certificate can carry: an IP address, or a DNS name (labels of letters,
/// digits, `-` and `_`, optionally a leading `*.`).
pub fn valid_host(host: &str) -> bool {
    if host.parse::<IpAddr>().is_ok() {
        return true;
    }
    let rest = host.strip_prefix("*.").unwrap_or(host);
    !rest.is_empty()
        && rest.len() <= 253
        && rest.split('.').all(|label| {
            (1..=63).contains(&label.len())
                && label
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_'))
        })
}
