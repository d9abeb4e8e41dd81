//! NDJSON / JSON Lines bodies (`application/x-ndjson`, `application/jsonl`) to one record per
//! line, each validated and copied exactly as a JSON body's records are ([`super::json`]).
//!
//! - Lines end at LF (a CR before it is dropped); the last line may lack one; lines of only
//!   whitespace are skipped.
//! - A line is one record whatever its type (an array line is one record); with a resource
//!   path, each line's selection is, as in a JSON body.
//! - A line that is not valid JSON (or nests too deep) is a 400 naming the line; more than
//!   `max_lines` records is a 413, refused as soon as the count is passed.

use memchr::memchr;

use super::error::ParseError;
use super::json::{parse_json, parse_json_value};
use super::record::Record;
use crate::config::resource_path::ResourcePath;

/// The records of an NDJSON text; see the module docs.
pub(crate) fn parse_ndjson(
    text: &str,
    resource_path: Option<&ResourcePath>,
    max_depth: usize,
    max_lines: usize,
) -> Result<Vec<Record>, ParseError> {
    let mut records = Vec::new();
    let mut rest = text;
    let mut line_number = 0usize;
    let mut lines_with_records = 0usize;
    while !rest.is_empty() {
        line_number += 1;
        let (line, next) = match memchr(b'\n', rest.as_bytes()) {
            Some(end) => (&rest[..end], &rest[end + 1..]),
            None => (rest, ""),
        };
        rest = next;
        let line = line.strip_suffix('\r').unwrap_or(line);
        if line.bytes().all(|b| matches!(b, b' ' | b'\t' | b'\r')) {
            continue;
        }
        lines_with_records += 1;
        if lines_with_records > max_lines {
            return Err(ParseError::OverLimit {
                kind: "ndjson",
                reason: format!("more than {max_lines} lines"),
            });
        }
        let in_line = |error: ParseError| ParseError::InLine {
            line: line_number,
            error: Box::new(single_line(error)),
        };
        match resource_path {
            None => records.push(parse_json_value(line, max_depth).map_err(in_line)?),
            Some(path) => records.extend(parse_json(line, Some(path), max_depth).map_err(in_line)?),
        }
    }
    Ok(records)
}

/// serde_json's position within the line is always on its line 1: say only the column.
fn single_line(error: ParseError) -> ParseError {
    match error {
        ParseError::Malformed { kind, reason } => ParseError::Malformed {
            kind: if kind == "json" { "ndjson" } else { kind },
            reason: reason.replace(" at line 1 column ", " at column "),
        },
        other => other,
    }
}

#[cfg(test)]
mod tests {
    use super::super::limits::ParseLimits;
    use super::super::records::{parse_records, tests::values};
    use super::*;
    use proptest::prelude::*;
    use serde_json::{json, Value};

    fn parse(body: &str) -> Result<Vec<Value>, ParseError> {
        parse_ndjson(body, None, 128, 100).map(|records| values(&records))
    }

    #[test]
    fn one_record_per_line_kept_as_sent() {
        let records = parse_ndjson("{\"b\": 1.50, \"a\": [1, 2]}\r\n\n  \n[1,2]\n\"x\"", None, 128, 100).unwrap();
        let texts: Vec<&str> = records.iter().map(Record::json).collect();
        assert_eq!(texts, [r#"{"b":1.50,"a":[1,2]}"#, "[1,2]", r#""x""#]);
        assert_eq!(parse("").unwrap(), Vec::<Value>::new());
        assert_eq!(parse("\n\n").unwrap(), Vec::<Value>::new());
    }

    #[test]
    fn a_resource_path_selects_in_each_line() {
        let path = ResourcePath::parse("data.items").unwrap();
        let body = "{\"data\":{\"items\":[{\"n\":1},{\"n\":2}]}}\n{\"data\":{\"items\":{\"n\":3}}}\n";
        let records = parse_ndjson(body, Some(&path), 128, 100).unwrap();
        assert_eq!(values(&records), vec![json!({"n":1}), json!({"n":2}), json!({"n":3})]);
        let error = parse_ndjson("{\"data\":{}}\n", Some(&path), 128, 100).unwrap_err();
        assert_eq!((error.status(), error.kind()), (400, "resource_path"));
        assert!(error.to_string().starts_with("line 1: resource path"), "{error}");
    }

    #[test]
    fn a_bad_line_is_400_naming_the_line() {
        let error = parse("{\"a\":1}\n\n{\"a\": }\n{}").unwrap_err();
        assert_eq!((error.status(), error.kind()), (400, "ndjson"));
        assert_eq!(
            error.to_string(),
            "line 3: malformed NDJSON body: expected value at column 7"
        );
        let error = parse_ndjson("{}\n[[[1]]]", None, 2, 100).unwrap_err();
        assert_eq!(
            error,
            ParseError::InLine {
                line: 2,
                error: Box::new(ParseError::TooDeep { limit: 2 })
            }
        );
        // Two values on one line are not one line of JSON.
        assert_eq!(parse("{} {}").unwrap_err().status(), 400);
        let error = parse_records(
            b"{\"a\":\"\xff\"}\n",
            Some("application/x-ndjson"),
            None,
            &ParseLimits::default(),
        )
        .unwrap_err();
        assert_eq!((error.status(), error.kind()), (400, "charset"));
    }

    #[test]
    fn more_lines_than_the_limit_are_413() {
        assert_eq!(parse(&"{}\n".repeat(100)).unwrap().len(), 100);
        let error = parse(&"{}\n".repeat(1_000_000)).unwrap_err();
        assert_eq!(
            (error.status(), error.to_string().as_str()),
            (413, "NDJSON body over a limit: more than 100 lines")
        );
    }

    #[test]
    fn media_types() {
        for ct in [
            "application/x-ndjson",
            "application/jsonl",
            "application/x-jsonlines; charset=utf-8",
        ] {
            let records = parse_records(b"{\"a\":1}\n{\"a\":2}\n", Some(ct), None, &ParseLimits::default()).unwrap();
            assert_eq!(records.len(), 2, "{ct}");
        }
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(256))]

        #[test]
        fn lines_of_json_round_trip(items in proptest::collection::vec(any::<i64>(), 0..20)) {
            let body: String = items.iter().map(|n| format!("{{\"n\":{n}}}\n")).collect();
            let expected: Vec<Value> = items.iter().map(|n| json!({"n": n})).collect();
            prop_assert_eq!(parse(&body).unwrap(), expected);
        }

        #[test]
        fn token_soup_never_panics(
            tokens in proptest::collection::vec(prop::sample::select(vec![
                "{", "}", "[", "]", "\"a\"", ":", ",", "1", "\n", "\r\n", " ", "\\",
            ]), 0..80),
        ) {
            if let Err(e) = parse(&tokens.concat()) {
                prop_assert!(matches!(e.status(), 400 | 413), "{}", e);
            }
        }
    }
}
