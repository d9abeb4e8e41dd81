//! Why a body could not be turned into records, and how client text is made safe to echo
//! in that answer (control characters replaced, length bounded).

/// Longest client-supplied string (media type, charset label, tag name) echoed in an error.
const MAX_ECHO_CHARS: usize = 64;

/// Longest `Malformed` reason.
pub(crate) const MAX_REASON_CHARS: usize = 200;

const ACCEPTED_MEDIA_TYPES: &str = "accepted: application/json (and any */*+json), \
     application/xml or text/xml (and any */*+xml), application/x-www-form-urlencoded; \
     where the listener enables them: multipart/form-data, text/csv, application/x-ndjson, \
     application/jsonl";

/// Why a body could not be turned into records.
#[derive(Debug, thiserror::Error, PartialEq)]
pub enum ParseError {
    /// 415: the Content-Type is missing or not one we parse.
    #[error("{}", media_type_message(.found))]
    UnsupportedMediaType { found: Option<String> },
    /// 415: the charset label is unknown (or unusable for this format).
    #[error("unsupported charset \"{0}\"")]
    UnsupportedCharset(String),
    /// 400: the body is not valid in its declared format or charset.
    #[error("{}: {reason}", malformed_prefix(.kind))]
    Malformed { kind: &'static str, reason: String },
    /// 400: the body nests deeper than allowed.
    #[error("body nests deeper than the limit of {limit} levels")]
    TooDeep { limit: usize },
    /// 400: XML DOCTYPE declarations (and so entity declarations) are refused, never resolved.
    #[error("XML DOCTYPE declarations are not allowed")]
    Doctype,
    /// 400: the listener's resource path does not select records in this body.
    #[error("resource path \"{path}\" does not select records: {reason}")]
    ResourcePath { path: String, reason: String },
    /// 413: the form body has too many fields.
    #[error("form body has more than {limit} fields")]
    TooManyFields { limit: usize },
    /// 413: a multipart, CSV or NDJSON body is over one of its listener's limits (parts, part
    /// headers, file size, rows, lines).
    #[error("{}: {reason}", over_limit_prefix(.kind))]
    OverLimit { kind: &'static str, reason: String },
    /// The error of one line of a body made of lines (NDJSON): its status and kind, named by
    /// its line number.
    #[error("line {line}: {error}")]
    InLine { line: usize, error: Box<ParseError> },
}

impl ParseError {
    /// The HTTP status this error maps to.
    pub fn status(&self) -> u16 {
        match self {
            ParseError::UnsupportedMediaType { .. } | ParseError::UnsupportedCharset(_) => 415,
            ParseError::TooManyFields { .. } | ParseError::OverLimit { .. } => 413,
            ParseError::InLine { error, .. } => error.status(),
            ParseError::Malformed { .. }
            | ParseError::TooDeep { .. }
            | ParseError::Doctype
            | ParseError::ResourcePath { .. } => 400,
        }
    }

    /// A label from a small fixed set, safe for metrics.
    pub fn kind(&self) -> &'static str {
        match self {
            ParseError::UnsupportedMediaType { .. } => "media_type",
            ParseError::UnsupportedCharset(_) => "charset",
            ParseError::Malformed { kind, .. } => kind,
            ParseError::TooDeep { .. } => "depth",
            ParseError::Doctype => "doctype",
            ParseError::ResourcePath { .. } => "resource_path",
            ParseError::TooManyFields { .. } => "fields",
            ParseError::OverLimit { kind, .. } => kind,
            ParseError::InLine { error, .. } => error.kind(),
        }
    }

    /// A `Malformed` error with its reason cut to a log- and response-friendly length.
    pub(crate) fn malformed(kind: &'static str, reason: impl Into<String>) -> ParseError {
        ParseError::Malformed {
            kind,
            reason: truncate(reason.into(), MAX_REASON_CHARS),
        }
    }
}

fn media_type_message(found: &Option<String>) -> String {
    match found {
        None => format!("missing Content-Type header; {ACCEPTED_MEDIA_TYPES}"),
        Some(found) => format!("unsupported media type \"{found}\"; {ACCEPTED_MEDIA_TYPES}"),
    }
}

fn malformed_prefix(kind: &str) -> &'static str {
    match kind {
        "json" => "malformed JSON body",
        "xml" => "malformed XML body",
        "form" => "malformed form body",
        "multipart" => "malformed multipart body",
        "csv" => "malformed CSV body",
        "ndjson" => "malformed NDJSON body",
        "query" => "malformed query string",
        "charset" => "body is not valid in its charset",
        _ => "malformed body",
    }
}

fn over_limit_prefix(kind: &str) -> &'static str {
    match kind {
        "multipart" => "multipart body over a limit",
        "csv" => "CSV body over a limit",
        "ndjson" => "NDJSON body over a limit",
        _ => "body over a limit",
    }
}

/// Makes client-supplied text safe to echo: control characters become `?`
/// and the result is cut to `max` characters.
pub(crate) fn sanitize(s: &str, max: usize) -> String {
    let mut out: String = s
        .chars()
        .take(max)
        .map(|c| if c.is_control() { '?' } else { c })
        .collect();
    if s.chars().nth(max).is_some() {
        out.push('…');
    }
    out
}

/// Shorthand for [`sanitize`] with the usual echo length.
pub(crate) fn echo(s: &str) -> String {
    sanitize(s, MAX_ECHO_CHARS)
}

fn truncate(s: String, max: usize) -> String {
    if s.chars().nth(max).is_none() && !s.chars().any(char::is_control) {
        s
    } else {
        sanitize(&s, max)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn status_and_kind_mapping() {
        let cases = [
            (ParseError::UnsupportedMediaType { found: None }, 415, "media_type"),
            (ParseError::UnsupportedCharset("x".into()), 415, "charset"),
            (ParseError::malformed("xml", "x"), 400, "xml"),
            (ParseError::TooDeep { limit: 1 }, 400, "depth"),
            (ParseError::Doctype, 400, "doctype"),
            (
                ParseError::ResourcePath {
                    path: "a".into(),
                    reason: "b".into(),
                },
                400,
                "resource_path",
            ),
            (ParseError::TooManyFields { limit: 1 }, 413, "fields"),
            (
                ParseError::OverLimit {
                    kind: "csv",
                    reason: "x".into(),
                },
                413,
                "csv",
            ),
            (
                ParseError::InLine {
                    line: 3,
                    error: Box::new(ParseError::TooDeep { limit: 2 }),
                },
                400,
                "depth",
            ),
        ];
        for (err, status, kind) in cases {
            assert_eq!((err.status(), err.kind()), (status, kind), "{err}");
        }
    }
}
