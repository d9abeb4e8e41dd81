//! `HOOKPIPE_A__B__C` environment overrides, applied to the TOML tree before it is deserialized.

use super::error::{single, ConfigErrors};

/// Prefix of environment variables that override configuration keys.
pub const ENV_PREFIX: &str = "HOOKPIPE_";
/// Separator between key segments in an environment override (`HOOKPIPE_KAFKA__BROKERS`).
pub const ENV_SEPARATOR: &str = "__";

/// Applies one environment variable if it is a `HOOKPIPE_A__B__C` override.
///
/// Segments are lower-cased; under `listeners` the next segment is a listener id (compared
/// case-insensitively, `_` matching `-`). Values are TOML literals when they parse as one
/// (numbers, booleans, arrays, quoted strings), plain strings otherwise.
pub(super) fn apply_env_override(root: &mut toml::Table, name: &str, value: &str) -> Result<(), ConfigErrors> {
    let Some(rest) = name.strip_prefix(ENV_PREFIX) else {
        return Ok(());
    };
    if !rest.contains(ENV_SEPARATOR) {
        // HOOKPIPE_CONFIG, HOOKPIPE_LOG and friends are not configuration keys.
        return Ok(());
    }
    let segments: Vec<String> = rest.split(ENV_SEPARATOR).map(|s| s.to_ascii_lowercase()).collect();
    if segments.iter().any(|s| s.is_empty()) {
        return Err(single(name, "empty key segment in environment override"));
    }
    let parsed = parse_env_value(value);
    if segments[0] == "listeners" {
        if segments.len() < 3 {
            return Err(single(name, "use HOOKPIPE_LISTENERS__<ID>__<KEY>"));
        }
        let wanted = segments[1].replace('-', "_");
        let listeners = root
            .get_mut("listeners")
            .and_then(|v| v.as_array_mut())
            .ok_or_else(|| single(name, "there are no listeners in the file to override"))?;
        let listener = listeners
            .iter_mut()
            .filter_map(|v| v.as_table_mut())
            .find(|t| {
                t.get("id")
                    .and_then(|id| id.as_str())
                    .is_some_and(|id| id.to_ascii_lowercase().replace('-', "_") == wanted)
            })
            .ok_or_else(|| single(name, format!("no listener with id `{}` in the file", segments[1])))?;
        return set_path(listener, &segments[2..], parsed, name);
    }
    set_path(root, &segments, parsed, name)
}

/// Sets `segments` (a dotted key split) in `table` to `value`, creating the tables on the way.
fn set_path(table: &mut toml::Table, segments: &[String], value: toml::Value, name: &str) -> Result<(), ConfigErrors> {
    let (last, parents) = segments.split_last().expect("at least one segment");
    let mut current = table;
    for segment in parents {
        current = current
            .entry(segment.clone())
            .or_insert_with(|| toml::Value::Table(toml::Table::new()))
            .as_table_mut()
            .ok_or_else(|| single(name, format!("`{segment}` is not a table")))?;
    }
    current.insert(last.clone(), value);
    Ok(())
}

/// A TOML literal when the text is one (`5`, `true`, `["a"]`, `"x"`), else the text as a string.
fn parse_env_value(raw: &str) -> toml::Value {
    let document = format!("v = {raw}");
    match document.parse::<toml::Table>() {
        Ok(mut table) => table.remove("v").unwrap_or_else(|| toml::Value::String(raw.into())),
        Err(_) => toml::Value::String(raw.to_string()),
    }
}

#[cfg(test)]
mod tests {
    use crate::config::test_support::{env, BASE};
    use crate::config::Settings;

    #[test]
    fn env_overrides_nested_and_listener_keys() {
        let settings = Settings::from_toml_and_env(
            BASE,
            env(&[
                ("HOOKPIPE_KAFKA__BROKERS", "127.0.0.1:9092"),
                ("HOOKPIPE_LISTENERS__ORDERS__PAGE_SIZE", "5"),
                ("HOOKPIPE_CONFIG", "ignored.toml"),
                ("PATH", "/bin"),
            ]),
        )
        .unwrap();
        assert_eq!(settings.kafka.brokers, "127.0.0.1:9092");
        assert_eq!(settings.listeners[0].page_size, 5);
    }
}
