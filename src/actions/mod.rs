//! Governance core: what a sanction decision does downstream (MDE indicators, appliance block
//! lists), the built-in alert policies, and alert export. Everything here is pure: no I/O, no
//! SQLite, no clock (days and timestamps are passed in), so the lead can wire it to the cache
//! and the console and every rule is testable on plain data.
pub mod alert_export;
pub mod apply;
pub mod blocklist;
pub mod indicators;
pub mod policy;

/// Why a string was refused as a domain to enforce on.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DomainError {
    #[error("empty domain")]
    Empty,
    #[error("control or invisible character")]
    ControlCharacter,
    #[error("non-ASCII characters (convert to punycode first)")]
    NonAscii,
    #[error("character {0:?} is not allowed in a domain name")]
    ForbiddenCharacter(char),
    #[error("empty label")]
    EmptyLabel,
    #[error("label longer than 63 characters")]
    LabelTooLong,
    #[error("label starts or ends with a hyphen")]
    HyphenAtLabelEdge,
    #[error("domain longer than 253 characters")]
    TooLong,
    #[error("an IP address, not a domain")]
    IpAddress,
    #[error("a public suffix or single label: blocking it would block a whole TLD")]
    PublicSuffix,
    #[error("too long for this appliance's syntax")]
    TooLongForFormat,
}

/// Normalises a domain taken from the catalog, a log or an operator, and refuses anything that
/// could widen or break the generated enforcement: every downstream format (proxy config lines,
/// CLI commands, CSV cells, JSON) relies on the result being plain lower-case LDH labels.
///
/// Accepted leniently: surrounding spaces, upper case, one leading `*.` or `.` (the wildcard
/// and Zscaler/Squid spellings of "this domain and its subdomains"), one trailing dot.
pub fn normalize_domain(raw: &str) -> Result<String, DomainError> {
    // Control characters are checked before trimming: a trailing "\n" is exactly how a
    // second config line would be smuggled in, so it is refused, not tidied away.
    if raw.chars().any(crate::sanitize::is_unsafe) {
        return Err(DomainError::ControlCharacter);
    }
    let s = raw.trim_matches(' ');
    if !s.is_ascii() {
        return Err(DomainError::NonAscii);
    }
    let mut s = s.to_ascii_lowercase();
    if let Some(rest) = s.strip_prefix("*.") {
        s = rest.to_owned();
    } else if let Some(rest) = s.strip_prefix('.') {
        s = rest.to_owned();
    }
    if let Some(rest) = s.strip_suffix('.') {
        s = rest.to_owned();
    }
    if s.is_empty() {
        return Err(DomainError::Empty);
    }
    if let Some(c) = s.chars().find(|c| !(c.is_ascii_lowercase() || c.is_ascii_digit() || *c == '-' || *c == '.')) {
        return Err(DomainError::ForbiddenCharacter(c));
    }
    if s.len() > 253 {
        return Err(DomainError::TooLong);
    }
    for label in s.split('.') {
        if label.is_empty() {
            return Err(DomainError::EmptyLabel);
        }
        if label.len() > 63 {
            return Err(DomainError::LabelTooLong);
        }
        if label.starts_with('-') || label.ends_with('-') {
            return Err(DomainError::HyphenAtLabelEdge);
        }
    }
    if s.split('.').all(|l| l.bytes().all(|b| b.is_ascii_digit())) {
        return Err(DomainError::IpAddress);
    }
    if is_public_suffix(&s) {
        return Err(DomainError::PublicSuffix);
    }
    Ok(s)
}

/// ICANN suffixes ("com", "co.uk") and unknown single labels are refused; private-section
/// suffixes ("blogspot.com") are real services an operator may mean to block whole.
fn is_public_suffix(domain: &str) -> bool {
    if !domain.contains('.') {
        return true;
    }
    match psl::suffix(domain.as_bytes()) {
        Some(suffix) => suffix.as_bytes() == domain.as_bytes() && suffix.typ() != Some(psl::Type::Private),
        None => false,
    }
}

/// True when `domain` is a strict subdomain of `parent` (label boundary, not substring).
pub fn is_subdomain_of(domain: &str, parent: &str) -> bool {
    domain.len() > parent.len()
        && domain.ends_with(parent)
        && domain.as_bytes().get(domain.len() - parent.len() - 1) == Some(&b'.')
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn normalizes_lenient_spellings() {
        assert_eq!(normalize_domain(" DropBox.COM. ").unwrap(), "dropbox.com");
        assert_eq!(normalize_domain("*.mega.nz").unwrap(), "mega.nz");
        assert_eq!(normalize_domain(".wetransfer.com").unwrap(), "wetransfer.com");
        assert_eq!(normalize_domain("xn--80ak6aa92e.com").unwrap(), "xn--80ak6aa92e.com");
        assert_eq!(normalize_domain("blogspot.com").unwrap(), "blogspot.com");
    }

    #[test]
    fn refuses_injection_and_overbroad_domains() {
        assert_eq!(normalize_domain("evil.com\nhttp_access allow all"), Err(DomainError::ControlCharacter));
        assert_eq!(normalize_domain("dropbox.com\n"), Err(DomainError::ControlCharacter));
        assert_eq!(normalize_domain("a.com;reboot"), Err(DomainError::ForbiddenCharacter(';')));
        assert_eq!(normalize_domain("\"x\".com"), Err(DomainError::ForbiddenCharacter('"')));
        assert_eq!(normalize_domain("a b.com"), Err(DomainError::ForbiddenCharacter(' ')));
        assert_eq!(normalize_domain("com"), Err(DomainError::PublicSuffix));
        assert_eq!(normalize_domain("co.uk"), Err(DomainError::PublicSuffix));
        assert_eq!(normalize_domain("*"), Err(DomainError::ForbiddenCharacter('*')));
        assert_eq!(normalize_domain("10.0.0.1"), Err(DomainError::IpAddress));
        assert_eq!(normalize_domain("a..com"), Err(DomainError::EmptyLabel));
        assert_eq!(normalize_domain("-a.com"), Err(DomainError::HyphenAtLabelEdge));
        assert_eq!(normalize_domain("bücher.de"), Err(DomainError::NonAscii));
        assert_eq!(normalize_domain("a\u{200b}.com"), Err(DomainError::ControlCharacter));
        assert_eq!(normalize_domain(""), Err(DomainError::Empty));
    }

    #[test]
    fn subdomain_test_respects_label_boundary() {
        assert!(is_subdomain_of("www.dropbox.com", "dropbox.com"));
        assert!(!is_subdomain_of("notdropbox.com", "dropbox.com"));
        assert!(!is_subdomain_of("dropbox.com", "dropbox.com"));
    }
}
