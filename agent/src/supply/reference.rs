//! An OCI reference as a gate is named by: `oci://host[:port]/repo[:tag][@sha256:hex]`,
//! checked against the distribution spec's grammar.

use super::oci::OciError;

/// `oci://host[:port]/repository[:tag][@sha256:hex]`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Reference {
    pub registry: String,
    pub repository: String,
    pub tag: Option<String>,
    /// `sha256:<hex>`.
    pub digest: Option<String>,
}

impl Reference {
    pub fn parse(text: &str) -> Result<Reference, OciError> {
        let bad = || OciError::BadReference(text.to_owned());
        let rest = text.strip_prefix("oci://").unwrap_or(text);
        let (rest, digest) = match rest.split_once('@') {
            Some((r, d)) => {
                let hex = d.strip_prefix("sha256:").ok_or_else(bad)?;
                if hex.len() != 64 || !hex.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f')) {
                    return Err(bad());
                }
                (r, Some(d.to_owned()))
            }
            None => (rest, None),
        };
        let (registry, path) = rest.split_once('/').ok_or_else(bad)?;
        let (repository, tag) = match path.rsplit_once(':') {
            Some((r, t)) if !t.contains('/') => (r, Some(t.to_owned())),
            _ => (path, None),
        };
        // The distribution spec's grammar: each path component starts and
        // ends with [a-z0-9] (so no `.` or `..` components).
        let alnum = |b: u8| matches!(b, b'a'..=b'z' | b'0'..=b'9');
        let repo_ok = !repository.is_empty()
            && repository.split('/').all(|c| {
                let b = c.as_bytes();
                !b.is_empty()
                    && alnum(b[0])
                    && alnum(b[b.len() - 1])
                    && b.iter()
                        .all(|&x| alnum(x) || matches!(x, b'.' | b'_' | b'-'))
            });
        let host_ok = !registry.is_empty()
            && registry.bytes().all(|b| {
                b.is_ascii_alphanumeric() || matches!(b, b'.' | b'-' | b':' | b'[' | b']')
            });
        let tag_ok = tag.as_deref().is_none_or(|t| {
            !t.is_empty()
                && t.len() <= 128
                && t.bytes()
                    .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-'))
        });
        if !host_ok || !repo_ok || !tag_ok {
            return Err(bad());
        }
        Ok(Reference {
            registry: registry.to_owned(),
            repository: repository.to_owned(),
            tag,
            digest,
        })
    }

    /// This reference pinned to `digest`.
    pub fn pinned(&self, digest: &str) -> Reference {
        Reference {
            digest: Some(digest.to_owned()),
            ..self.clone()
        }
    }

    pub(super) fn base_url(&self) -> String {
        let host = self
            .registry
            .rsplit_once(':')
            .map_or(self.registry.as_str(), |(h, _)| h);
        let scheme = if matches!(host, "localhost" | "127.0.0.1" | "[::1]") {
            "http"
        } else {
            "https"
        };
        format!("{scheme}://{}/v2/{}", self.registry, self.repository)
    }

    /// What a manifest request names: the digest when pinned, else the tag.
    pub(super) fn manifest_ref(&self) -> &str {
        self.digest
            .as_deref()
            .or(self.tag.as_deref())
            .unwrap_or("latest")
    }
}

impl std::fmt::Display for Reference {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "oci://{}/{}", self.registry, self.repository)?;
        if let Some(t) = &self.tag {
            write!(f, ":{t}")?;
        }
        if let Some(d) = &self.digest {
            write!(f, "@{d}")?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn references_parse_and_print() {
        let hex = "a".repeat(64);
        let r =
            Reference::parse(&format!("oci://127.0.0.1:5000/team/gate:1.0@sha256:{hex}")).unwrap();
        assert_eq!(r.registry, "127.0.0.1:5000");
        assert_eq!(r.repository, "team/gate");
        assert_eq!(r.tag.as_deref(), Some("1.0"));
        assert_eq!(r.digest, Some(format!("sha256:{hex}")));
        assert_eq!(
            r.to_string(),
            format!("oci://127.0.0.1:5000/team/gate:1.0@sha256:{hex}")
        );
        assert_eq!(r.base_url(), "http://127.0.0.1:5000/v2/team/gate");
        let r = Reference::parse("registry.example.com/gates/judge").unwrap();
        assert_eq!((r.tag.as_deref(), r.manifest_ref()), (None, "latest"));
        assert_eq!(r.base_url(), "https://registry.example.com/v2/gates/judge");
        for bad in [
            "oci://host",
            "oci://host/Upper",
            "oci://host/a//b",
            "oci://host/a@sha256:abc",
            "oci://host/a@md5:aa",
            "oci://host/a:",
            "oci:///a",
            "oci://host/../x",
            "oci://host/a/./b",
            "oci://host/-a",
            "oci://host?x=/a",
        ] {
            assert!(Reference::parse(bad).is_err(), "{bad}");
        }
    }
}
