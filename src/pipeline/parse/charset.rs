//! Text encodings of a body: a charset label resolved to an encoding, bytes decoded exactly (a
//! malformed sequence is an error, never U+FFFD), a byte-order mark or an XML declaration
//! honoured where the format says so. The rules are listed in [`super::records`].

use std::borrow::Cow;

use encoding_rs::{Encoding, REPLACEMENT, UTF_16BE, UTF_16LE, UTF_8};

use super::error::{echo, ParseError};

/// Maps a charset label to an encoding; UTF-8 (and its subset US-ASCII) is `UTF_8`.
pub(crate) fn resolve_charset(label: &str) -> Result<&'static Encoding, ParseError> {
    let trimmed = label.trim();
    // encoding_rs follows WHATWG, which maps "us-ascii" to windows-1252; we
    // validate ASCII as UTF-8 instead so stray high bytes are errors, not "é".
    if trimmed.eq_ignore_ascii_case("us-ascii") || trimmed.eq_ignore_ascii_case("ascii") {
        return Ok(UTF_8);
    }
    match Encoding::for_label(trimmed.as_bytes()) {
        // "replacement" stands for encodings that are unsafe to decode (ISO-2022-KR...).
        Some(enc) if enc != REPLACEMENT => Ok(enc),
        _ => Err(ParseError::UnsupportedCharset(echo(label))),
    }
}

/// Decodes `bytes` exactly: UTF-8 is validated in place, anything else is
/// transcoded without replacement characters. No BOM handling.
pub(crate) fn decode_exact<'a>(bytes: &'a [u8], encoding: &'static Encoding) -> Result<Cow<'a, str>, ParseError> {
    if encoding == UTF_8 {
        return std::str::from_utf8(bytes)
            .map(Cow::Borrowed)
            .map_err(|e| ParseError::malformed("charset", format!("invalid UTF-8 at byte {}", e.valid_up_to())));
    }
    encoding
        .decode_without_bom_handling_and_without_replacement(bytes)
        .ok_or_else(|| ParseError::malformed("charset", format!("invalid {} byte sequence", encoding.name())))
}

/// Decodes a JSON or XML body; a leading byte-order mark overrides `encoding`.
pub(crate) fn decode_text<'a>(body: &'a [u8], encoding: &'static Encoding) -> Result<Cow<'a, str>, ParseError> {
    match Encoding::for_bom(body) {
        Some((bom_encoding, bom_len)) => decode_exact(body.get(bom_len..).unwrap_or(&[]), bom_encoding),
        None => decode_exact(body, encoding),
    }
}

/// Reads the `encoding` pseudo-attribute of a leading `<?xml ...?>` declaration.
fn xml_declared_encoding(body: &[u8]) -> Option<&str> {
    let rest = body.strip_prefix(b"<?xml")?;
    // The declaration is short; bounding the search keeps a hostile body from costing a full scan.
    let window = &rest[..rest.len().min(512)];
    let decl = &window[..window.windows(2).position(|w| w == b"?>")?];
    let decl = std::str::from_utf8(decl).ok()?;
    let after = &decl[decl.find("encoding")? + "encoding".len()..];
    let after = after.trim_start().strip_prefix('=')?.trim_start();
    let quote = after.chars().next().filter(|&c| c == '"' || c == '\'')?;
    let value = &after[1..];
    value.find(quote).map(|end| &value[..end])
}

/// The encoding of an XML body: the Content-Type's charset, else its declaration, else UTF-8.
pub(crate) fn xml_encoding(body: &[u8], declared: Option<&'static Encoding>) -> Result<&'static Encoding, ParseError> {
    if let Some(encoding) = declared {
        return Ok(encoding);
    }
    match xml_declared_encoding(body) {
        None => Ok(UTF_8),
        Some(label) => {
            let encoding = resolve_charset(label)?;
            // The declaration was readable as ASCII bytes, so the body cannot
            // really be UTF-16 whatever it claims.
            if encoding == UTF_16LE || encoding == UTF_16BE {
                Ok(UTF_8)
            } else {
                Ok(encoding)
            }
        }
    }
}
