//! Parameters of a header value (`; a=b; charset="x"`): a media type's, or a multipart part's
//! `Content-Disposition`, read once for the parse dispatch and the multipart parser.

/// The parameters of `; a=b; charset="x"` in order (RFC 9110 syntax, quoted strings may contain
/// `;` and backslash escapes): a media type's, or a part's `Content-Disposition`.
pub(crate) fn header_params(params: &str) -> Vec<(&str, String)> {
    let mut found = Vec::new();
    let mut rest = params;
    loop {
        rest = rest.trim_start_matches(|c: char| c == ';' || c.is_ascii_whitespace());
        if rest.is_empty() {
            return found;
        }
        let name_end = rest.find(['=', ';']).unwrap_or(rest.len());
        let name = rest[..name_end].trim();
        rest = &rest[name_end..];
        let value = match rest.strip_prefix('=') {
            None => String::new(),
            Some(after_eq) => {
                let after_eq = after_eq.trim_start();
                if let Some(quoted) = after_eq.strip_prefix('"') {
                    let mut value = String::new();
                    let mut chars = quoted.char_indices();
                    let mut consumed = quoted.len();
                    while let Some((i, c)) = chars.next() {
                        match c {
                            '"' => {
                                consumed = i + 1;
                                break;
                            }
                            '\\' => {
                                if let Some((_, escaped)) = chars.next() {
                                    value.push(escaped);
                                }
                            }
                            c => value.push(c),
                        }
                    }
                    rest = &quoted[consumed..];
                    value
                } else {
                    let end = after_eq.find(';').unwrap_or(after_eq.len());
                    rest = &after_eq[end..];
                    after_eq[..end].trim().to_owned()
                }
            }
        };
        found.push((name, value));
    }
}
