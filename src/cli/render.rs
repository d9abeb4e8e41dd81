//! Text building blocks of the management commands' readable output: aligned tables, `key: value`
//! lines, single-line cells, pretty JSON. Everything the server sends passes through
//! [`sanitize_line`] (or [`sanitize_keep_lines`]) before it reaches the terminal, because listener
//! names, captured headers and bodies come from senders. A leaf: no other module of the crate.

use std::fmt::Display;

use serde_json::Value;

/// Keys `show` prints first, in this order; the rest follow alphabetically.
const VIEW_LEADING_KEYS: &[&str] = &[
    "id",
    "name",
    "description",
    "source",
    "public_id",
    "url",
    "created_at",
    "updated_at",
];

/// Columns padded to their widest cell, two spaces apart; the last column is not padded.
pub fn render_table(headers: &[&str], rows: &[Vec<String>]) -> String {
    let mut widths: Vec<usize> = headers.iter().map(|h| h.chars().count()).collect();
    for row in rows {
        for (index, cell) in row.iter().enumerate() {
            if let Some(width) = widths.get_mut(index) {
                *width = (*width).max(cell.chars().count());
            }
        }
    }
    let mut out = String::new();
    let header_row: Vec<String> = headers.iter().map(|h| h.to_string()).collect();
    for row in std::iter::once(&header_row).chain(rows) {
        let mut line = String::new();
        for (index, cell) in row.iter().enumerate() {
            if index > 0 {
                line.push_str("  ");
            }
            line.push_str(cell);
            if index + 1 < row.len() {
                let pad = widths[index].saturating_sub(cell.chars().count());
                line.extend(std::iter::repeat_n(' ', pad));
            }
        }
        out.push_str(line.trim_end());
        out.push('\n');
    }
    out
}

/// `show`: `key: value` lines, nested keys dotted, secrets as their fingerprints.
pub fn key_value_lines(value: &Value) -> String {
    ordered_key_value_lines(value, VIEW_LEADING_KEYS)
}

/// `key: value` lines, `leading` keys first, then the rest in the object's (alphabetical) order.
pub fn ordered_key_value_lines(value: &Value, leading: &[&str]) -> String {
    let mut pairs = Vec::new();
    if let Value::Object(object) = value {
        for key in leading {
            if let Some(child) = object.get(*key) {
                flatten(key, child, &mut pairs);
            }
        }
        for (key, child) in object {
            if !leading.contains(&key.as_str()) {
                flatten(key, child, &mut pairs);
            }
        }
    } else {
        pairs.push(("value".to_string(), cell(value)));
    }
    let width = pairs.iter().map(|(key, _)| key.chars().count()).max().unwrap_or(0);
    let mut out = String::new();
    for (key, text) in pairs {
        let pad = width - key.chars().count();
        out.push_str(&format!("{key}: {}{text}\n", " ".repeat(pad)));
    }
    out
}

/// One `(dotted key, text)` pair per leaf; lists of scalars or of secret views on one line.
fn flatten(prefix: &str, value: &Value, out: &mut Vec<(String, String)>) {
    match value {
        Value::Object(object) if !object.is_empty() => {
            for (key, child) in object {
                flatten(&format!("{prefix}.{}", sanitize_line(key)), child, out);
            }
        }
        Value::Array(items) if !items.is_empty() && items.iter().all(is_secret_view) => {
            let described: Vec<String> = items.iter().map(describe_secret).collect();
            out.push((prefix.to_string(), described.join(", ")));
        }
        Value::Array(items) if !items.is_empty() && items.iter().all(|item| !item.is_object() && !item.is_array()) => {
            let described: Vec<String> = items.iter().map(cell).collect();
            out.push((prefix.to_string(), described.join(", ")));
        }
        other => out.push((prefix.to_string(), cell(other))),
    }
}

/// A secret as the API shows it: `{"fingerprint": …}`, with `username` for basic credentials.
pub fn is_secret_view(item: &Value) -> bool {
    item.get("fingerprint").is_some_and(Value::is_string)
}

/// A secret view as `fingerprint`, or `username (fingerprint)` for a basic credential.
pub fn describe_secret(item: &Value) -> String {
    match item.get("username") {
        Some(username) => format!("{} ({})", cell(username), cell(&item["fingerprint"])),
        None => cell(&item["fingerprint"]),
    }
}

/// Indented JSON, control characters escaped, with a final line break.
pub fn pretty_json(value: &Value) -> String {
    let text = serde_json::to_string_pretty(value).unwrap_or_else(|_| value.to_string());
    format!("{}\n", sanitize_keep_lines(&text))
}

/// A JSON value as one line of text: strings unquoted, null as `-`, containers as compact JSON.
pub fn cell(value: &Value) -> String {
    match value {
        Value::Null => "-".to_string(),
        Value::String(text) if text.is_empty() => "-".to_string(),
        Value::String(text) => sanitize_line(text),
        other => sanitize_line(&other.to_string()),
    }
}

/// [`cell`] for a typed field: absent or empty as `-`, else its text on one line.
pub fn optional_cell(value: Option<impl Display>) -> String {
    match value.map(|value| value.to_string()) {
        Some(text) if !text.is_empty() => sanitize_line(&text),
        _ => "-".to_string(),
    }
}

/// Like `cell` but without the `-` placeholders, for prose.
pub fn text_of(value: &Value) -> String {
    match value {
        Value::String(text) => sanitize_line(text),
        Value::Null => String::new(),
        other => sanitize_line(&other.to_string()),
    }
}

/// One line with control characters escaped, so server-provided text (listener names, captured
/// headers) cannot move the cursor or inject terminal escape sequences.
pub fn sanitize_line(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for ch in text.chars() {
        match ch {
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            c if c.is_control() => out.push_str(&c.escape_unicode().to_string()),
            c => out.push(c),
        }
    }
    out
}

/// Like `sanitize_line`, keeping line breaks and tabs.
pub fn sanitize_keep_lines(text: &str) -> String {
    text.split('\n')
        .map(|line| {
            line.split('\t')
                .map(|part| sanitize_line(part.strip_suffix('\r').unwrap_or(part)))
                .collect::<Vec<_>>()
                .join("\t")
        })
        .collect::<Vec<_>>()
        .join("\n")
}

/// At most `max_chars` characters, with `…` when some were cut.
pub fn truncate(text: &str, max_chars: usize) -> String {
    match text.char_indices().nth(max_chars) {
        Some((index, _)) => format!("{}…", &text[..index]),
        None => text.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn tables_align_columns_and_leave_the_last_unpadded() {
        let table = render_table(
            &["ID", "NAME", "URL"],
            &[
                vec!["orders".into(), "Orders".into(), "http://h/hooks/1".into()],
                vec!["f".into(), "Forms and more".into(), "-".into()],
            ],
        );
        assert_eq!(
            table,
            "ID      NAME            URL\n\
             orders  Orders          http://h/hooks/1\n\
             f       Forms and more  -\n"
        );
    }

    #[test]
    fn show_lines_lead_with_identity_and_print_fingerprints() {
        let view = json!({
            "page_size": 20,
            "verification": {"type": "basic", "credentials": [
                {"username": "shop", "fingerprint": "1a2b3c4d"},
                {"username": "shop2", "fingerprint": "5e6f7a8b"}]},
            "content": {"accept": ["json", "xml"], "max_body_bytes": null},
            "source": "api",
            "id": "orders",
            "name": "Orders\u{1b}[2J",
            "url": "http://h/hooks/x",
            "response": {},
        });
        assert_eq!(
            key_value_lines(&view),
            "id:                       orders\n\
             name:                     Orders\\u{1b}[2J\n\
             source:                   api\n\
             url:                      http://h/hooks/x\n\
             content.accept:           json, xml\n\
             content.max_body_bytes:   -\n\
             page_size:                20\n\
             response:                 {}\n\
             verification.credentials: shop (1a2b3c4d), shop2 (5e6f7a8b)\n\
             verification.type:        basic\n"
        );
    }
}
