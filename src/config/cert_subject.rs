//! `sources.NAME.client_cert_subject`: the client certificate a source's sender must present,
//! named by its subject's attributes (`"CN=crm.example.com"`, `"CN=crm, O=Example Corp"`).

use std::fmt;

/// The attributes a client certificate's subject must have; others it has do not matter, so
/// `"CN=crm.example.com"` is enough for a subject `CN=crm.example.com, O=Example, C=GB`.
#[derive(Clone, PartialEq, Eq)]
pub struct CertSubject(Vec<(String, String)>);

impl CertSubject {
    /// `ATTR=value` pairs separated by commas, as nginx's `$ssl_client_s_dn` and
    /// `openssl x509 -noout -subject` print them. Attribute names compare without case; values
    /// exactly. A value cannot hold a comma (rare in certificate subjects).
    pub fn parse(text: &str) -> Option<CertSubject> {
        let text = text.trim();
        let text = text.strip_prefix("subject=").unwrap_or(text);
        let pairs = text
            .split([',', '/'])
            .map(str::trim)
            .filter(|p| !p.is_empty())
            .map(|pair| {
                let (attr, value) = pair.split_once('=')?;
                let (attr, value) = (attr.trim(), value.trim());
                let known = attr.chars().all(|c| c.is_ascii_alphanumeric() || c == '.');
                (known && !attr.is_empty() && !value.is_empty())
                    .then(|| (attr.to_ascii_uppercase(), value.to_string()))
            })
            .collect::<Option<Vec<_>>>()?;
        (!pairs.is_empty()).then_some(CertSubject(pairs))
    }

    /// Whether a subject, given as (attribute short name, value) pairs, has every attribute
    /// this one names with the same value.
    pub fn matches(&self, subject: &[(String, String)]) -> bool {
        self.0.iter().all(|(attr, value)| {
            subject
                .iter()
                .any(|(a, v)| a.eq_ignore_ascii_case(attr) && v == value)
        })
    }
}

impl fmt::Display for CertSubject {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let text: Vec<String> = self.0.iter().map(|(a, v)| format!("{a}={v}")).collect();
        f.write_str(&text.join(", "))
    }
}

impl fmt::Debug for CertSubject {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "CertSubject({self})")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn subject(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
        pairs
            .iter()
            .map(|(a, v)| (a.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn the_named_attributes_must_all_match_and_others_do_not_matter() {
        let want = CertSubject::parse("CN=crm.example.com, o=Example Corp").unwrap();
        assert_eq!(want.to_string(), "CN=crm.example.com, O=Example Corp");
        let full = subject(&[
            ("C", "GB"),
            ("O", "Example Corp"),
            ("CN", "crm.example.com"),
        ]);
        assert!(want.matches(&full));
        assert!(!want.matches(&subject(&[("CN", "crm.example.com")])));
        assert!(!want.matches(&subject(&[
            ("CN", "crm.example.org"),
            ("O", "Example Corp")
        ])));
    }

    #[test]
    fn openssl_and_nginx_spellings_are_read_and_nonsense_is_refused() {
        for text in [
            "subject=CN = crm.example.com",
            "/CN=crm.example.com",
            "CN=crm.example.com",
        ] {
            let s = CertSubject::parse(text).unwrap();
            assert_eq!(s.to_string(), "CN=crm.example.com", "{text}");
        }
        for bad in ["", "crm.example.com", "CN=", "=x", "C N=x"] {
            assert_eq!(CertSubject::parse(bad), None, "{bad:?}");
        }
    }
}
