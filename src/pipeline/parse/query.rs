//! Query-string records: a request without a body, to a listener that accepts `query`, has its
//! query string as its one record (GET webhooks, query-only POSTs), read by the form rules.
//!
//! - The pairs are decoded as a urlencoded form body is (strict `%XX`, UTF-8, repeated names
//!   become arrays, at most `pipeline.max_form_fields` pairs), and a resource path selects in
//!   the object as in a form.
//! - The listener's token parameter (`token` verification with `query`) is the listener's
//!   secret: it is left out of the record, as a body token is cut out of a JSON body.
//! - An empty query string (or one holding only the token) gives no record: the request is
//!   answered, nothing is published (a sender's endpoint check).

use std::borrow::Cow;

use encoding_rs::UTF_8;

use super::error::ParseError;
use super::limits::ParseLimits;
use super::record::Record;
use super::records::one_object;
use crate::config::resource_path::ResourcePath;
use crate::urlencoded;

/// The records of a query string; see the module docs.
pub(crate) fn parse_query(
    query: &str,
    token_param: Option<&str>,
    resource_path: Option<&ResourcePath>,
    limits: &ParseLimits,
) -> Result<Vec<Record>, ParseError> {
    let query = without_param(query.as_bytes(), token_param);
    if urlencoded::pieces(&query).next().is_none() {
        return Ok(Vec::new());
    }
    let record = super::form::parse_form(&query, UTF_8, limits.max_form_fields).map_err(|error| match error {
        ParseError::Malformed { kind: "form", reason } => ParseError::Malformed { kind: "query", reason },
        other => other,
    })?;
    one_object(record, resource_path)
}

/// `query` without the pairs whose (decoded) name is `param`.
fn without_param<'a>(query: &'a [u8], param: Option<&str>) -> Cow<'a, [u8]> {
    let Some(param) = param else {
        return Cow::Borrowed(query);
    };
    let is_param = |piece: &[u8]| {
        let (key, _) = urlencoded::split_pair(piece);
        urlencoded::decode_lenient(key) == param.as_bytes()
    };
    if !urlencoded::pieces(query).any(is_param) {
        return Cow::Borrowed(query);
    }
    let kept: Vec<&[u8]> = urlencoded::pieces(query).filter(|piece| !is_param(piece)).collect();
    Cow::Owned(kept.join(&b'&'))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn parse(query: &str, token: Option<&str>) -> Result<Vec<serde_json::Value>, ParseError> {
        parse_query(query, token, None, &ParseLimits::default())
            .map(|records| records.iter().map(Record::to_value).collect())
    }

    #[test]
    fn the_query_is_one_record_without_the_token() {
        assert_eq!(
            parse("event=sms&from=%2B4912&tag=a&tag=b", None).unwrap(),
            vec![json!({"event": "sms", "from": "+4912", "tag": ["a", "b"]})]
        );
        assert_eq!(
            parse("a=1&token=s3cr3t&%74oken=again&b=2", Some("token")).unwrap(),
            vec![json!({"a": "1", "b": "2"})]
        );
        assert_eq!(parse("", None).unwrap(), Vec::<serde_json::Value>::new());
        assert_eq!(
            parse("token=s3cr3t", Some("token")).unwrap(),
            Vec::<serde_json::Value>::new()
        );
        assert_eq!(parse("&&", None).unwrap(), Vec::<serde_json::Value>::new());
    }

    #[test]
    fn bad_queries_are_400_or_413() {
        let error = parse("a=%zz", None).unwrap_err();
        assert_eq!(
            (error.status(), error.to_string().as_str()),
            (400, "malformed query string: invalid percent-encoding in field 1")
        );
        assert_eq!(parse("a=%ff", None).unwrap_err().kind(), "charset");
        assert_eq!(parse(&"x=1&".repeat(1001), None).unwrap_err().status(), 413);
    }
}
