//! `text/csv` bodies into one record per row. Two halves, chosen by the first byte:
//! - built: a table of fields (with delimiters, quotes, line breaks in them) written as RFC 4180
//!   says, in a dialect chosen by the input (delimiter, quote or none, header row or
//!   `columns`); the records must be exactly the rows, a 413 over `max_rows`, a 400 for a
//!   header naming a column twice;
//! - raw: any body in any valid dialect and charset: a 4xx, or compact records that are
//!   objects of strings, all with the same keys, at most `max_rows` of them.
//! Both: each record's text is bounded by the body's (see `bounded`: rows repeat the header).
#![no_main]

use hookpipe::config::body_format::CsvOptions;
use hookpipe::config::listener::ContentOptions;
use hookpipe::fuzzing::serde_json::{Map, Value};
use hookpipe::pipeline::parse::records::{detect_media_type, parse_detected, ParseLimits};
use hookpipe_fuzz::{check_error, check_records, Input};
use libfuzzer_sys::fuzz_target;

const DELIMITERS: &[&str] = &[",", ";", "\t", "|"];
const QUOTES: &[&str] = &["\"", "'", ""];

/// A dialect from the input: always one `CsvOptions::problems` accepts.
fn dialect(input: &mut Input<'_>) -> CsvOptions {
    let mut csv = CsvOptions {
        delimiter: DELIMITERS[input.below(DELIMITERS.len())].to_string(),
        quote: QUOTES[input.below(QUOTES.len())].to_string(),
        ..CsvOptions::default()
    };
    if input.flag() {
        csv.max_rows = 2;
    }
    assert!(csv.problems().is_empty());
    csv
}

/// The records' text is bounded by the body's, but not linearly: every row repeats the header's
/// names (a row of empty fields writes each name again). Each record is at most the whole body
/// escaped (6 bytes per byte) plus its punctuation (`{}`, and `"":"",` per column).
fn bounded(records: &[hookpipe::pipeline::parse::record::Record], body: usize) -> bool {
    records
        .iter()
        .all(|record| record.json().len() <= 6 * body + 8 * body + 8)
}

fn encode_field(field: &str, csv: &CsvOptions, out: &mut String) {
    match csv.quote_byte() {
        Some(quote) => {
            let quote = quote as char;
            let special = field.is_empty()
                || field.contains(quote)
                || field.contains(csv.delimiter.as_str())
                || field.contains(['\r', '\n']);
            if special {
                out.push(quote);
                for c in field.chars() {
                    if c == quote {
                        out.push(quote);
                    }
                    out.push(c);
                }
                out.push(quote);
            } else {
                out.push_str(field);
            }
        }
        None => out.push_str(field),
    }
}

fn built(mut input: Input<'_>) {
    let mut csv = dialect(&mut input);
    let width = 1 + input.below(4);
    let height = input.below(5);
    // Without quoting a field cannot hold a delimiter or a line break, and an empty line is no row.
    let unquoted_ok = |field: &str| !field.contains(csv.delimiter.as_str()) && !field.contains(['\r', '\n']);
    let mut names: Vec<String> = (0..width).map(|_| input.text()).collect();
    let header_row = input.flag();
    if !header_row {
        // `columns` are validated unique.
        for (index, name) in names.iter_mut().enumerate() {
            name.push_str(&format!("#{index}"));
        }
        csv.columns = Some(names.clone());
    }
    let rows: Vec<Vec<String>> = (0..height)
        .map(|_| (0..width).map(|_| input.text()).collect())
        .collect();
    if csv.quote.is_empty() {
        let blank_row = |row: &Vec<String>| row.len() == 1 && row[0].is_empty();
        let unusable = names.iter().any(|f| !unquoted_ok(f))
            || rows.iter().flatten().any(|f| !unquoted_ok(f))
            || rows.iter().any(blank_row)
            || (header_row && names.len() == 1 && names[0].is_empty());
        if unusable {
            return;
        }
    }
    let mut body = String::new();
    let line_end = ["\r\n", "\n", "\r"][input.below(3)];
    let write_row = |row: &[String], body: &mut String| {
        for (index, field) in row.iter().enumerate() {
            if index > 0 {
                body.push_str(&csv.delimiter);
            }
            encode_field(field, &csv, body);
        }
        body.push_str(line_end);
    };
    if header_row {
        write_row(&names, &mut body);
    }
    for row in &rows {
        write_row(row, &mut body);
    }
    if body.starts_with('\u{FEFF}') {
        // A leading byte-order mark is not text: it is skipped.
        return;
    }
    let mut options = ContentOptions::default();
    options.csv = csv.clone();
    let media = detect_media_type(Some("text/csv")).expect("csv");
    let result = parse_detected(body.as_bytes(), &media, None, &ParseLimits::default(), &options);
    let mut unique = std::collections::HashSet::new();
    let duplicate_names = header_row && !names.iter().all(|name| unique.insert(name.as_str()));
    match result {
        Ok(records) => {
            assert!(!duplicate_names, "a header naming a column twice was accepted");
            assert!(rows.len() <= csv.max_rows, "{} rows over max_rows", rows.len());
            let values = check_records(&records);
            let expected: Vec<Value> = rows
                .iter()
                .map(|row| {
                    let object: Map<String, Value> = names
                        .iter()
                        .cloned()
                        .zip(row.iter().cloned().map(Value::String))
                        .collect();
                    Value::Object(object)
                })
                .collect();
            assert_eq!(values, expected, "records differ from the rows written:\n{body:?}");
            assert!(
                !header_row || bounded(&records, body.len()), // with `columns` the names are the configuration's, not the body's
                "records too long for the body"
            );
        }
        Err(error) if duplicate_names => assert_eq!(error.status(), 400, "{error:?}"),
        Err(error) if rows.len() > csv.max_rows => assert_eq!(error.status(), 413, "{error:?}"),
        Err(error) => panic!("refused a table written as RFC 4180 says: {error:?}\n{body:?}"),
    }
}

fn raw(mut input: Input<'_>) {
    let mut options = ContentOptions::default();
    options.csv = dialect(&mut input);
    if input.flag() {
        options.csv.columns = Some(vec!["a".into(), "b".into(), "c".into()]);
        options.csv.header_row = Some(input.flag());
    }
    let content_type = [
        "text/csv",
        "text/csv; charset=utf-8",
        "text/csv; charset=windows-1252",
        "text/csv; charset=utf-16le",
    ][input.below(4)];
    let body = input.rest();
    let media = detect_media_type(Some(content_type)).expect("csv");
    match parse_detected(body, &media, None, &ParseLimits::default(), &options) {
        Ok(records) => {
            assert!(records.len() <= options.csv.max_rows);
            let values = check_records(&records);
            let keys = |value: &Value| -> Vec<String> {
                let object = value.as_object().expect("a row is an object");
                assert!(object.values().all(Value::is_string), "a field is a string");
                object.keys().cloned().collect()
            };
            if let Some(first) = values.first() {
                let first_keys = keys(first);
                assert!(
                    values.iter().all(|value| keys(value) == first_keys),
                    "rows have different keys"
                );
            }
            assert!(bounded(&records, body.len()), "records too long for the body");
        }
        Err(error) => check_error(&error),
    }
}

fuzz_target!(|data: &[u8]| {
    let mut input = Input::new(data);
    if input.flag() {
        built(input)
    } else {
        raw(input)
    }
});
