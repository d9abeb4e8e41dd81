//! What a verifier looks at and what it answers: the request as the verify stage sees it, and
//! the verdict. A leaf shared by the schemes (`scheme`), the recipe engine (`recipe`) and the
//! actor, so none of them imports another for these types.

/// Header lookup implemented by the caller; names match case-insensitively, first value, non-UTF-8 => None.
pub trait HeaderSource {
    /// The first value of header `name`.
    fn header(&self, name: &str) -> Option<&str>;
}

impl HeaderSource for [(&str, &str)] {
    fn header(&self, name: &str) -> Option<&str> {
        self.iter().find(|(k, _)| k.eq_ignore_ascii_case(name)).map(|(_, v)| *v)
    }
}

impl<const N: usize> HeaderSource for [(&str, &str); N] {
    fn header(&self, name: &str) -> Option<&str> {
        self.as_slice().header(name)
    }
}

impl HeaderSource for Vec<(String, String)> {
    fn header(&self, name: &str) -> Option<&str> {
        self.iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }
}

/// Everything a verifier may look at in one request.
pub struct VerifyRequest<'a> {
    /// HTTP method.
    pub method: &'a str,
    /// The full external URL the sender used (external base URL + path + '?' + query when present); Twilio signs it.
    pub url: &'a str,
    /// Raw query string without '?'.
    pub query: &'a str,
    /// Request headers.
    pub headers: &'a dyn HeaderSource,
    /// Exact raw bytes received.
    pub body: &'a [u8],
    /// Injected clock, Unix seconds.
    pub now_unix: i64,
}

/// What a successful verification learned about the request.
#[derive(Debug, Default, Clone, PartialEq)]
pub struct Verified {
    /// Sender's delivery/event id, when the scheme has one.
    pub delivery_id: Option<String>,
}

/// Why a request was refused; Display is what the sender sees, so it stays generic.
#[derive(Debug, thiserror::Error, PartialEq, Eq, Clone, Copy)]
pub enum VerifyError {
    /// No signature or credentials were sent.
    #[error("missing signature or credentials")]
    MissingCredentials,
    /// The signature, credentials or timestamp could not be parsed.
    #[error("malformed signature or credentials")]
    Malformed,
    /// Parsed fine but matched no active secret.
    #[error("signature or credentials do not match")]
    Mismatch,
    /// Timestamp outside the accepted window.
    #[error("request timestamp outside the accepted window")]
    Expired,
}

impl VerifyError {
    /// Metric label: "missing", "malformed", "mismatch" or "expired".
    pub fn reason(&self) -> &'static str {
        match self {
            Self::MissingCredentials => "missing",
            Self::Malformed => "malformed",
            Self::Mismatch => "mismatch",
            Self::Expired => "expired",
        }
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    /// Owned headers for a test request.
    pub(crate) fn headers(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
        pairs.iter().map(|(k, v)| ((*k).to_owned(), (*v).to_owned())).collect()
    }

    /// A POST to the test URL with `headers` and `body` at clock `now`.
    pub(crate) fn request<'a>(headers: &'a dyn HeaderSource, body: &'a [u8], now: i64) -> VerifyRequest<'a> {
        VerifyRequest {
            method: "POST",
            url: "https://hooks.example.com/in/test",
            query: "",
            headers,
            body,
            now_unix: now,
        }
    }

    #[test]
    fn errors_are_generic_and_labelled() {
        for (e, label) in [
            (VerifyError::MissingCredentials, "missing"),
            (VerifyError::Malformed, "malformed"),
            (VerifyError::Mismatch, "mismatch"),
            (VerifyError::Expired, "expired"),
        ] {
            assert_eq!(e.reason(), label);
            assert!(e.to_string().len() < 60);
        }
    }

    #[test]
    fn header_sources_match_case_insensitively() {
        let arr = [("Content-Type", "a"), ("content-type", "b")];
        assert_eq!(arr.header("CONTENT-TYPE"), Some("a"));
        let v = headers(&[("X-A", "1")]);
        assert_eq!(v.header("x-a"), Some("1"));
        assert_eq!(v.header("x-b"), None);
    }
}
