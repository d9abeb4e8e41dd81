//! The `signed_content` template of a recipe (`{timestamp}.{body}`): parsed once at compile
//! time into literal bytes and placeholders, so a request only concatenates.

use crate::config::recipe::PLACEHOLDERS;

/// Most characters of an unknown placeholder's name quoted in the error.
const MAX_SHOWN_NAME_CHARS: usize = 32;

/// One piece of a parsed template.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Part {
    /// Bytes signed as they are (`{{` and `}}` already unescaped).
    Lit(Vec<u8>),
    /// `{timestamp}`: the timestamp as the sender wrote it.
    Timestamp,
    /// `{id}`: the value of `id_header`.
    Id,
    /// `{url}`: the full external URL.
    Url,
    /// `{method}`: the HTTP method.
    Method,
    /// `{body}`: the raw body.
    Body,
    /// `{form_params}`: the form body's decoded pairs, sorted, keys and values concatenated (Twilio).
    FormParams,
}

/// Parses a `signed_content` template; the error says what is wrong and how to write it.
pub fn parse_template(template: &str) -> Result<Vec<Part>, String> {
    let mut parts = Vec::new();
    let mut lit = Vec::new();
    let mut rest = template;
    while let Some(c) = rest.chars().next() {
        if let Some(after) = rest.strip_prefix("{{") {
            lit.push(b'{');
            rest = after;
        } else if let Some(after) = rest.strip_prefix("}}") {
            lit.push(b'}');
            rest = after;
        } else if c == '{' {
            let end = rest
                .find('}')
                .ok_or_else(|| "unclosed `{` (write `{{` for a literal brace)".to_owned())?;
            let name = &rest[1..end];
            let part = match name {
                "timestamp" => Part::Timestamp,
                "id" => Part::Id,
                "url" => Part::Url,
                "method" => Part::Method,
                "body" => Part::Body,
                "form_params" => Part::FormParams,
                _ => {
                    // The name as written, cut: an error is one line, whatever the template holds.
                    let shown: String = name.chars().take(MAX_SHOWN_NAME_CHARS).collect();
                    let cut = if shown.len() < name.len() { "…" } else { "" };
                    return Err(format!(
                        "unknown placeholder {{{shown}{cut}}}; allowed: {}",
                        PLACEHOLDERS
                            .iter()
                            .map(|p| format!("{{{p}}}"))
                            .collect::<Vec<_>>()
                            .join(", ")
                    ));
                }
            };
            if !lit.is_empty() {
                parts.push(Part::Lit(std::mem::take(&mut lit)));
            }
            parts.push(part);
            rest = &rest[end + 1..];
        } else if c == '}' {
            return Err("unmatched `}` (write `}}` for a literal brace)".to_owned());
        } else {
            let mut buf = [0u8; 4];
            lit.extend_from_slice(c.encode_utf8(&mut buf).as_bytes());
            rest = &rest[c.len_utf8()..];
        }
    }
    if !lit.is_empty() {
        parts.push(Part::Lit(lit));
    }
    Ok(parts)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn template_parses_placeholders_literals_and_escapes() {
        let parts = parse_template("v0:{timestamp}:{body}{{x}}").unwrap();
        assert_eq!(
            parts,
            vec![
                Part::Lit(b"v0:".to_vec()),
                Part::Timestamp,
                Part::Lit(b":".to_vec()),
                Part::Body,
                Part::Lit(b"{x}".to_vec()),
            ]
        );
        assert!(parse_template("{bogus}")
            .unwrap_err()
            .contains("unknown placeholder {bogus}"));
        assert!(parse_template("{body").is_err());
        assert!(parse_template("body}").is_err());
        assert_eq!(parse_template("é{url}").unwrap()[0], Part::Lit("é".as_bytes().to_vec()));
    }

    /// fuzz/corpus/recipe_template/crash-a26da69f…: an unknown placeholder of 4 KB was quoted whole.
    #[test]
    fn an_unknown_placeholder_is_quoted_cut() {
        let template = format!("{{u{}}}", "\0z".repeat(2000));
        let error = parse_template(&template).unwrap_err();
        assert!(error.len() < 300, "{} bytes", error.len());
        assert!(error.starts_with("unknown placeholder {u\0z"), "{error}");
        assert!(parse_template("{bogus}").unwrap_err().contains("{bogus}"));
    }
}
