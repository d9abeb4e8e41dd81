//! The body formats a listener can accept, the HTTP methods its senders use, and the options of
//! the formats that have some (multipart limits, the CSV dialect, NDJSON's line limit).

use serde::{Deserialize, Serialize};

/// The body formats hookpipe accepts.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum BodyFormat {
    /// `application/json`, `*/*+json`.
    Json,
    /// `application/xml`, `text/xml`, `*/*+xml`.
    Xml,
    /// `application/x-www-form-urlencoded`.
    Form,
    /// `multipart/form-data` (RFC 7578): text fields and files, one record.
    Multipart,
    /// `text/csv` (RFC 4180): one record per row.
    Csv,
    /// `application/x-ndjson`, `application/jsonl`: one record per line.
    Ndjson,
    /// No body: the query string is the record (GET webhooks, query-only POSTs).
    Query,
}

impl BodyFormat {
    /// Lower-case name for logs and metrics.
    pub fn as_str(self) -> &'static str {
        match self {
            BodyFormat::Json => "json",
            BodyFormat::Xml => "xml",
            BodyFormat::Form => "form",
            BodyFormat::Multipart => "multipart",
            BodyFormat::Csv => "csv",
            BodyFormat::Ndjson => "ndjson",
            BodyFormat::Query => "query",
        }
    }
}

/// The methods a listener answers by default (others: 405).
pub const DEFAULT_METHODS: [&str; 2] = ["POST", "PUT"];

/// The methods a listener may accept: OPTIONS and HEAD are not deliveries.
pub const ACCEPTABLE_METHODS: [&str; 5] = ["GET", "POST", "PUT", "PATCH", "DELETE"];

/// `content.methods` by default: POST and PUT, as before methods were configurable.
pub fn default_methods() -> Vec<String> {
    DEFAULT_METHODS.iter().map(|method| method.to_string()).collect()
}

/// `[listeners.content.multipart]`: the limits of `multipart/form-data` bodies.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct MultipartOptions {
    /// Most parts (fields and files) in one body; more is a 413.
    #[serde(default = "default_max_parts")]
    pub max_parts: usize,
    /// Most bytes of one part's headers; more is a 413.
    #[serde(default = "default_max_part_header_bytes")]
    pub max_part_header_bytes: usize,
    /// Most bytes of one file; more is a 413. A file goes into the record base64-encoded, and a
    /// record must fit in a page (`pipeline.max_page_bytes`, 5 MB).
    #[serde(default = "default_max_file_bytes")]
    pub max_file_bytes: usize,
}

impl Default for MultipartOptions {
    fn default() -> Self {
        MultipartOptions {
            max_parts: default_max_parts(),
            max_part_header_bytes: default_max_part_header_bytes(),
            max_file_bytes: default_max_file_bytes(),
        }
    }
}

/// As many parts as a form body may have fields (`pipeline.max_form_fields`' default).
fn default_max_parts() -> usize {
    1000
}

/// 8 KiB: a browser's part headers are about 150 bytes; a long percent-encoded file name fits.
fn default_max_part_header_bytes() -> usize {
    8 * 1024
}

/// 2 MiB: base64 makes it 2.7 MB, which leaves room in a 5 MB page for the rest of the record.
fn default_max_file_bytes() -> usize {
    2 * 1024 * 1024
}

/// `[listeners.content.csv]`: the dialect of `text/csv` bodies.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct CsvOptions {
    /// Column names, in order. Without them the first row names the columns.
    #[serde(default)]
    pub columns: Option<Vec<String>>,
    /// Whether the first row is a header row; by default it is unless `columns` are given (a
    /// header row with `columns` given is skipped).
    #[serde(default)]
    pub header_row: Option<bool>,
    /// The field separator: one ASCII character (`","`, `";"`, `"\t"`, `"|"`).
    #[serde(default = "default_delimiter")]
    pub delimiter: String,
    /// The quote character: one ASCII character, or `""` for none (quotes are then plain text).
    #[serde(default = "default_quote")]
    pub quote: String,
    /// The charset when the Content-Type names none (RFC 7111's `charset` parameter wins).
    #[serde(default = "default_csv_charset")]
    pub charset: String,
    /// Most data rows in one body; more is a 413.
    #[serde(default = "default_max_rows")]
    pub max_rows: usize,
}

impl Default for CsvOptions {
    fn default() -> Self {
        CsvOptions {
            columns: None,
            header_row: None,
            delimiter: default_delimiter(),
            quote: default_quote(),
            charset: default_csv_charset(),
            max_rows: default_max_rows(),
        }
    }
}

/// RFC 4180's comma.
fn default_delimiter() -> String {
    ",".into()
}

/// RFC 4180's double quote.
fn default_quote() -> String {
    "\"".into()
}

/// UTF-8, as for every other format.
fn default_csv_charset() -> String {
    "utf-8".into()
}

/// 100 000 rows: a 10 MB body of 100-byte rows.
fn default_max_rows() -> usize {
    100_000
}

impl CsvOptions {
    /// Whether the body's first row is a header row.
    pub fn has_header_row(&self) -> bool {
        self.header_row.unwrap_or(self.columns.is_none())
    }

    /// The delimiter as a byte (validated to be one ASCII character).
    pub fn delimiter_byte(&self) -> u8 {
        self.delimiter.as_bytes().first().copied().unwrap_or(b',')
    }

    /// The quote as a byte, `None` when quoting is off.
    pub fn quote_byte(&self) -> Option<u8> {
        self.quote.as_bytes().first().copied()
    }

    /// Problems with this dialect, as `(key relative to the csv table, message)`.
    pub fn problems(&self) -> Vec<(String, String)> {
        let mut problems = Vec::new();
        let special = |s: &str| s.len() == 1 && matches!(s.as_bytes()[0], b'\r' | b'\n');
        let one_ascii = |s: &str| s.len() == 1 && s.is_ascii();
        if !one_ascii(&self.delimiter) || special(&self.delimiter) {
            problems.push((
                "delimiter".into(),
                "must be one ASCII character other than CR or LF".into(),
            ));
        }
        if !(self.quote.is_empty() || one_ascii(&self.quote)) || special(&self.quote) {
            problems.push((
                "quote".into(),
                "must be one ASCII character other than CR or LF, or \"\" for none".into(),
            ));
        } else if self.quote == self.delimiter {
            problems.push(("quote".into(), "must differ from the delimiter".into()));
        }
        if encoding_rs::Encoding::for_label(self.charset.trim().as_bytes()).is_none() {
            problems.push(("charset".into(), format!("unknown charset `{}`", self.charset)));
        }
        if self.max_rows == 0 {
            problems.push(("max_rows".into(), "must be at least 1".into()));
        }
        if let Some(columns) = &self.columns {
            if columns.is_empty() {
                problems.push(("columns".into(), "must name at least one column".into()));
            }
            let mut seen = std::collections::HashSet::new();
            for column in columns {
                if !seen.insert(column.as_str()) {
                    problems.push(("columns".into(), format!("column `{column}` is named twice")));
                }
            }
        }
        problems
    }
}

/// `[listeners.content.ndjson]`: the limits of `application/x-ndjson` bodies.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct NdjsonOptions {
    /// Most lines (records) in one body; more is a 413.
    #[serde(default = "default_max_lines")]
    pub max_lines: usize,
}

impl Default for NdjsonOptions {
    fn default() -> Self {
        NdjsonOptions {
            max_lines: default_max_lines(),
        }
    }
}

/// As many lines as a CSV body may have rows.
fn default_max_lines() -> usize {
    default_max_rows()
}

impl MultipartOptions {
    /// Problems with these limits, as `(key relative to the multipart table, message)`.
    pub fn problems(&self) -> Vec<(String, String)> {
        [
            ("max_parts", self.max_parts),
            ("max_part_header_bytes", self.max_part_header_bytes),
            ("max_file_bytes", self.max_file_bytes),
        ]
        .into_iter()
        .filter(|(_, value)| *value == 0)
        .map(|(key, _)| (key.to_string(), "must be at least 1".to_string()))
        .collect()
    }
}

/// Problems with a listener's `content.methods`, as `(key, message)`; `accepts_query` says
/// whether `content.accept` lists `query`, which a GET (it has no body) needs.
pub fn method_problems(methods: &[String], accepts_query: bool) -> Vec<(String, String)> {
    let mut problems = Vec::new();
    if methods.is_empty() {
        problems.push(("content.methods".into(), "must list at least one method".into()));
    }
    for method in methods {
        if !ACCEPTABLE_METHODS.contains(&method.as_str()) {
            problems.push((
                "content.methods".into(),
                format!("unknown method `{method}`; use GET, POST, PUT, PATCH or DELETE (upper case)"),
            ));
        }
    }
    if methods.iter().any(|method| method == "GET") && !accepts_query {
        problems.push((
            "content.methods".into(),
            "a GET has no body: add \"query\" to content.accept to take its record from the query string".into(),
        ));
    }
    problems
}
