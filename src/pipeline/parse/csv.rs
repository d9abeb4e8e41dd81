//! `text/csv` bodies (RFC 4180) to one record per row, with a small parser of its own: the
//! body is decoded text already, rows are scanned with `memchr`, one pass, no backtracking.
//!
//! - Keys come from the header row, or from the listener's `content.csv.columns` (then the
//!   body has no header row, unless `header_row = true` says to skip one). A record is a JSON
//!   object in column order; every value is a string (no type inference).
//! - The delimiter and the quote are the listener's (`,` and `"` by default; no quote at all
//!   when `quote = ""`). A quoted field may hold delimiters, line breaks and doubled quotes.
//! - Rows end at CRLF, LF or CR; the last row may lack one; empty lines are skipped.
//! - 400, naming the row (and its line): a row with more or fewer fields than there are
//!   columns, a quote inside an unquoted field, text after a closing quote, a quoted field
//!   never closed, a header that names a column twice.
//! - 413: more than `max_rows` data rows, more than [`MAX_COLUMNS`] columns, or records whose
//!   total JSON would exceed [`OUTPUT_EXPANSION`] times the body (each row repeats the names).

use serde_json::Value;

use super::error::{echo, ParseError};
use super::record::Record;
use crate::config::body_format::CsvOptions;

/// Most columns of a CSV body: keeps a header of a million empty names from becoming records
/// of a million keys.
pub const MAX_COLUMNS: usize = 10_000;

fn malformed(reason: String) -> ParseError {
    ParseError::malformed("csv", reason)
}

fn over_limit(reason: String) -> ParseError {
    ParseError::OverLimit { kind: "csv", reason }
}

/// Reads rows of fields, one at a time.
struct Rows<'a> {
    text: &'a str,
    at: usize,
    /// The line the next row starts on (1-based).
    line: usize,
    /// The row about to be read (1-based, the header included; empty lines are not rows).
    row: usize,
    delimiter: u8,
    quote: Option<u8>,
}

/// Where a row started, to name it in errors.
#[derive(Clone, Copy)]
struct Position {
    row: usize,
    line: usize,
}

impl std::fmt::Display for Position {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "row {} (line {})", self.row, self.line)
    }
}

impl<'a> Rows<'a> {
    /// The next non-empty row into `fields` (cleared first), or `None` at the end of the body.
    /// At most `max_fields` fields are read: one more is a 413 (`limit_error`) at once.
    fn next_row(
        &mut self,
        fields: &mut Vec<String>,
        max_fields: usize,
        limit_error: &dyn Fn(Position) -> ParseError,
    ) -> Result<Option<Position>, ParseError> {
        fields.clear();
        let bytes = self.text.as_bytes();
        loop {
            // Skip empty lines.
            match bytes.get(self.at) {
                None => return Ok(None),
                Some(b'\n') => {
                    self.at += 1;
                    self.line += 1;
                }
                Some(b'\r') => {
                    self.at += if bytes.get(self.at + 1) == Some(&b'\n') { 2 } else { 1 };
                    self.line += 1;
                }
                Some(_) => break,
            }
        }
        let position = Position {
            row: self.row,
            line: self.line,
        };
        self.row += 1;
        loop {
            if fields.len() == max_fields {
                return Err(limit_error(position));
            }
            let field_number = fields.len() + 1;
            let field = if self.quote.is_some() && bytes.get(self.at).copied() == self.quote {
                self.quoted_field(position, field_number)?
            } else {
                let start = self.at;
                let end =
                    memchr::memchr3(self.delimiter, b'\n', b'\r', &bytes[start..]).map_or(bytes.len(), |i| start + i);
                let raw = &self.text[start..end];
                if let Some(quote) = self.quote {
                    if memchr::memchr(quote, raw.as_bytes()).is_some() {
                        return Err(malformed(format!(
                            "{position}, field {field_number}: a quote inside an unquoted field \
                             (quote the whole field and double the quote, or set content.csv.quote = \"\")"
                        )));
                    }
                }
                self.at = end;
                raw.to_string()
            };
            fields.push(field);
            match bytes.get(self.at) {
                None => return Ok(Some(position)),
                Some(b'\n') => {
                    self.at += 1;
                    self.line += 1;
                    return Ok(Some(position));
                }
                Some(b'\r') => {
                    self.at += if bytes.get(self.at + 1) == Some(&b'\n') { 2 } else { 1 };
                    self.line += 1;
                    return Ok(Some(position));
                }
                Some(_) => self.at += 1, // the delimiter: another field follows
            }
        }
    }

    /// A quoted field starting at `self.at` (its opening quote); leaves `self.at` after the
    /// closing quote, which must be followed by a delimiter, a line end or the end.
    fn quoted_field(&mut self, position: Position, field_number: usize) -> Result<String, ParseError> {
        let bytes = self.text.as_bytes();
        let quote = self.quote.unwrap_or(b'"');
        let mut value = String::new();
        let mut at = self.at + 1;
        loop {
            let Some(offset) = memchr::memchr(quote, &bytes[at..]) else {
                return Err(malformed(format!(
                    "{position}, field {field_number}: a quoted field is never closed"
                )));
            };
            let segment = &self.text[at..at + offset];
            self.line += memchr::memchr_iter(b'\n', segment.as_bytes()).count();
            value.push_str(segment);
            at += offset + 1;
            if bytes.get(at) == Some(&quote) {
                // A doubled quote is one quote of the value.
                value.push(quote as char);
                at += 1;
                continue;
            }
            match bytes.get(at) {
                None | Some(b'\n' | b'\r') => break,
                Some(&b) if b == self.delimiter => break,
                Some(_) => {
                    return Err(malformed(format!(
                        "{position}, field {field_number}: text after the closing quote"
                    )))
                }
            }
        }
        self.at = at;
        Ok(value)
    }
}

/// Every row repeats the column names, so records can be far larger than the body (a 5 MB
/// header over rows of empty fields would make gigabytes): their total JSON is capped at this
/// many times the body, and at least [`OUTPUT_FLOOR`] bytes.
pub(crate) const OUTPUT_EXPANSION: usize = 16;
/// The least total record size a CSV body may produce, however short it is.
pub(crate) const OUTPUT_FLOOR: usize = 1 << 20;

fn output_budget(body_len: usize) -> usize {
    body_len.saturating_mul(OUTPUT_EXPANSION).max(OUTPUT_FLOOR)
}

/// The records of a CSV text; see the module docs.
pub(crate) fn parse_csv(text: &str, options: &CsvOptions) -> Result<Vec<Record>, ParseError> {
    let mut rows = Rows {
        text,
        at: 0,
        line: 1,
        row: 1,
        delimiter: options.delimiter_byte(),
        quote: options.quote_byte(),
    };
    let mut fields = Vec::new();
    let too_wide = |position: Position| over_limit(format!("{position} has more than {MAX_COLUMNS} fields"));
    let header = if options.has_header_row() {
        rows.next_row(&mut fields, MAX_COLUMNS, &too_wide)?
            .map(|position| (position, fields.clone()))
    } else {
        None
    };
    let columns: Vec<String> = match (&options.columns, header) {
        (Some(columns), Some((position, header))) => {
            if header.len() != columns.len() {
                return Err(malformed(format!(
                    "{position} (the header row) has {} fields; content.csv.columns names {}",
                    header.len(),
                    columns.len()
                )));
            }
            columns.clone()
        }
        (Some(columns), None) => columns.clone(),
        (None, Some((position, header))) => {
            let mut seen = std::collections::HashSet::with_capacity(header.len());
            for name in &header {
                if !seen.insert(name.as_str()) {
                    return Err(malformed(format!(
                        "{position} (the header row) names column \"{}\" twice",
                        echo(name)
                    )));
                }
            }
            header
        }
        // An empty body: no header, no rows.
        (None, None) => return Ok(Vec::new()),
    };
    // Each key's JSON text, once.
    let keys: Vec<String> = columns
        .iter()
        .map(|name| Value::String(name.clone()).to_string())
        .collect();
    let width = keys.len();
    let budget = output_budget(text.len());
    let mut written = 0usize;
    let mut records = Vec::new();
    let wrong_count = |position: Position, found: usize| {
        let expected = if options.columns.is_some() {
            format!("content.csv.columns names {width}")
        } else {
            format!("the header has {width}")
        };
        malformed(format!("{position} has {found} fields; {expected}"))
    };
    let too_many_fields = |position: Position| {
        let expected = if options.columns.is_some() {
            format!("content.csv.columns names {width}")
        } else {
            format!("the header has {width}")
        };
        malformed(format!("{position} has more than {width} fields; {expected}"))
    };
    while let Some(position) = rows.next_row(&mut fields, width, &too_many_fields)? {
        if fields.len() != width {
            return Err(wrong_count(position, fields.len()));
        }
        if records.len() == options.max_rows {
            return Err(over_limit(format!("more than {} rows", options.max_rows)));
        }
        let mut json = Vec::with_capacity(2 + fields.iter().map(|f| f.len() + 8).sum::<usize>());
        json.push(b'{');
        for (index, (key, value)) in keys.iter().zip(&fields).enumerate() {
            if index > 0 {
                json.push(b',');
            }
            json.extend_from_slice(key.as_bytes());
            json.push(b':');
            serde_json::to_writer(&mut json, value.as_str()).map_err(|e| malformed(e.to_string()))?;
        }
        json.push(b'}');
        // Keys and values are JSON strings written by serde_json: valid UTF-8.
        let json = String::from_utf8(json).map_err(|e| malformed(e.to_string()))?;
        written += json.len();
        if written > budget {
            return Err(over_limit(format!(
                "its records would take more than {budget} bytes ({OUTPUT_EXPANSION}× the body)"
            )));
        }
        records.push(Record::from_compact_json(json));
    }
    Ok(records)
}

#[cfg(test)]
mod tests {
    use super::super::limits::ParseLimits;
    use super::super::records::{parse_records, tests::values};
    use super::*;
    use proptest::prelude::*;
    use serde_json::json;

    fn parse_with(body: &str, options: &CsvOptions) -> Result<Vec<Value>, ParseError> {
        parse_csv(body, options).map(|records| values(&records))
    }

    fn parse(body: &str) -> Result<Vec<Value>, ParseError> {
        parse_with(body, &CsvOptions::default())
    }

    #[test]
    fn header_row_names_the_keys_in_column_order() {
        let records = parse_csv(
            "id,name,note\r\n1,Jane,\r\n2,\"Doe, John\",\"said \"\"hi\"\"\nthen left\"\r\n",
            &CsvOptions::default(),
        )
        .unwrap();
        assert_eq!(records.len(), 2);
        assert_eq!(records[0].json(), r#"{"id":"1","name":"Jane","note":""}"#);
        assert_eq!(
            records[1].json(),
            r#"{"id":"2","name":"Doe, John","note":"said \"hi\"\nthen left"}"#
        );
    }

    #[test]
    fn line_ends_empty_lines_and_no_final_newline() {
        assert_eq!(
            parse("a,b\n\n1,2\r3,4\r\n\r\n5,6").unwrap(),
            vec![
                json!({"a":"1","b":"2"}),
                json!({"a":"3","b":"4"}),
                json!({"a":"5","b":"6"})
            ]
        );
        assert_eq!(parse("").unwrap(), Vec::<Value>::new());
        assert_eq!(parse("a,b\r\n").unwrap(), Vec::<Value>::new());
        // A quoted empty field is a value, not an empty line.
        assert_eq!(parse("a\n\"\"\n").unwrap(), vec![json!({"a": ""})]);
    }

    #[test]
    fn columns_given_in_the_listener() {
        let options = CsvOptions {
            columns: Some(vec!["sku".into(), "qty".into()]),
            ..CsvOptions::default()
        };
        assert_eq!(
            parse_with("A,1\nB,2\n", &options).unwrap(),
            vec![json!({"sku":"A","qty":"1"}), json!({"sku":"B","qty":"2"})]
        );
        let skip_header = CsvOptions {
            header_row: Some(true),
            ..options.clone()
        };
        assert_eq!(
            parse_with("Sku,Qty\nA,1\n", &skip_header).unwrap(),
            vec![json!({"sku":"A","qty":"1"})]
        );
        let error = parse_with("A,1,x\n", &options).unwrap_err();
        assert_eq!(
            error.to_string(),
            "malformed CSV body: row 1 (line 1) has more than 2 fields; content.csv.columns names 2"
        );
    }

    #[test]
    fn delimiter_quote_and_no_quote() {
        let options = CsvOptions {
            delimiter: ";".into(),
            quote: "'".into(),
            ..CsvOptions::default()
        };
        assert_eq!(
            parse_with("a;b\n'x;y';\"z\"\n", &options).unwrap(),
            vec![json!({"a":"x;y","b":"\"z\""})]
        );
        let tabs = CsvOptions {
            delimiter: "\t".into(),
            quote: String::new(),
            ..CsvOptions::default()
        };
        assert_eq!(
            parse_with("a\tb\n5\" screen\t\"x\"\n", &tabs).unwrap(),
            vec![json!({"a":"5\" screen","b":"\"x\""})]
        );
    }

    #[test]
    fn bad_rows_are_400_naming_the_row() {
        let cases = [
            ("a,b\n1,2\n3\n", "row 3 (line 3) has 1 fields; the header has 2"),
            (
                "a,b\n1,2,3\n",
                "row 2 (line 2) has more than 2 fields; the header has 2",
            ),
            ("a,b\n\"x\ny\",1\n1,2,3\n", "row 3 (line 4) has more than 2 fields"),
            (
                "a,b\n1,x\"y\n",
                "row 2 (line 2), field 2: a quote inside an unquoted field",
            ),
            (
                "a,b\n\"x\"y,1\n",
                "row 2 (line 2), field 1: text after the closing quote",
            ),
            (
                "a,b\n1,\"never closed\n",
                "row 2 (line 2), field 2: a quoted field is never closed",
            ),
            ("a,a\n1,2\n", "row 1 (line 1) (the header row) names column \"a\" twice"),
        ];
        for (body, expected) in cases {
            let error = parse(body).unwrap_err();
            assert_eq!((error.status(), error.kind()), (400, "csv"), "{body:?}");
            assert!(error.to_string().contains(expected), "{error} ≠ {expected}");
        }
    }

    #[test]
    fn limits_are_413() {
        let options = CsvOptions {
            max_rows: 2,
            ..CsvOptions::default()
        };
        assert!(parse_with("a\n1\n2\n", &options).is_ok());
        let error = parse_with("a\n1\n2\n3\n", &options).unwrap_err();
        assert_eq!(
            (error.status(), error.to_string().as_str()),
            (413, "CSV body over a limit: more than 2 rows")
        );
        let wide = ",".repeat(MAX_COLUMNS);
        assert_eq!(parse(&wide).unwrap_err().status(), 413);
    }

    #[test]
    fn records_far_larger_than_the_body_are_413() {
        // A wide header of long names over rows of empty fields: each row of 999 commas
        // repeats ~100 KB of names.
        let names: Vec<String> = (0..1000).map(|i| format!("{i:0>100}")).collect();
        let mut body = names.join(",");
        body.push('\n');
        for _ in 0..200 {
            body.push_str(&",".repeat(999));
            body.push('\n');
        }
        let error = parse(&body).unwrap_err();
        assert_eq!(error.status(), 413, "{error}");
        assert!(error.to_string().contains("16× the body"), "{error}");
        // The same rows under short names fit.
        let short: Vec<String> = (0..1000).map(|i| format!("c{i}")).collect();
        let mut body = short.join(",");
        body.push('\n');
        for _ in 0..200 {
            body.push_str(&",".repeat(999));
            body.push('\n');
        }
        assert_eq!(parse(&body).unwrap().len(), 200);
    }

    #[test]
    fn ten_million_quotes_are_one_field_parsed_in_one_pass() {
        // An opening quote, 4 999 999 doubled ones, a closing one: one value of 4 999 999 quotes.
        let body = format!("a\n{}", "\"".repeat(10_000_000));
        let records = parse_csv(&body, &CsvOptions::default()).unwrap();
        assert_eq!(records.len(), 1);
        assert_eq!(records[0].to_value()["a"].as_str().map(str::len), Some(4_999_999));
        // One fewer: the last doubled quote leaves the field open.
        let body = format!("a\n{}\n", "\"".repeat(10_000_000 - 1));
        let error = parse(&body).unwrap_err();
        assert!(error.to_string().ends_with("a quoted field is never closed"), "{error}");
    }

    #[test]
    fn through_parse_records_with_charsets() {
        let records = parse_records(
            b"\xEF\xBB\xBFname\ncaf\xc3\xa9\n",
            Some("text/csv"),
            None,
            &ParseLimits::default(),
        )
        .unwrap();
        assert_eq!(values(&records), vec![json!({"name": "café"})]);
        let records = parse_records(
            b"name\ncaf\xe9\n",
            Some("text/csv; charset=windows-1252; header=present"),
            None,
            &ParseLimits::default(),
        )
        .unwrap();
        assert_eq!(values(&records), vec![json!({"name": "café"})]);
        let error = parse_records(b"name\ncaf\xe9\n", Some("text/csv"), None, &ParseLimits::default()).unwrap_err();
        assert_eq!((error.status(), error.kind()), (400, "charset"));
        let utf16: Vec<u8> = [0xFF, 0xFE]
            .into_iter()
            .chain("a;b\n1;2\n".encode_utf16().flat_map(u16::to_le_bytes))
            .collect();
        let records = parse_records(&utf16, Some("text/csv"), None, &ParseLimits::default()).unwrap();
        assert_eq!(values(&records), vec![json!({"a;b": "1;2"})], "a BOM picks UTF-16");
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(512))]

        #[test]
        fn token_soup_never_panics(
            tokens in proptest::collection::vec(prop::sample::select(vec![
                "a", ",", "\"", "\"\"", "\r\n", "\n", "\r", " ", "é",
            ]), 0..80),
        ) {
            if let Err(e) = parse(&tokens.concat()) {
                prop_assert!(matches!(e.status(), 400 | 413), "{}", e);
            }
        }

        #[test]
        fn round_trip(rows in proptest::collection::vec(proptest::collection::vec("\\PC{0,8}", 3), 1..10)) {
            let quote = |s: &str| format!("\"{}\"", s.replace('"', "\"\""));
            let mut body = String::from("x,y,z\r\n");
            for row in &rows {
                body.push_str(&row.iter().map(|f| quote(f)).collect::<Vec<_>>().join(","));
                body.push_str("\r\n");
            }
            let expected: Vec<Value> = rows.iter().map(|r| json!({"x": r[0], "y": r[1], "z": r[2]})).collect();
            prop_assert_eq!(parse(&body).unwrap(), expected);
        }
    }
}
