//! `response.wait` of a listener: whether the sender's answer waits for the import worker to
//! import (or fail) every record of the request (`wait = "import"`, README "Wait for import"),
//! and the keys that go with it: `wait_timeout_ms`, `failure_status`, `failure_body`.

use std::ops::RangeInclusive;

use serde::{Deserialize, Serialize};

/// What a listener's success answer waits for.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum WaitFor {
    /// Kafka's acknowledgement of every record (the default): the data is durable.
    #[default]
    None,
    /// The import worker's result for every record: imported, or failed for good.
    Import,
}

impl WaitFor {
    /// Whether this is the default (it is then left out when the listener is written out).
    pub fn is_none(&self) -> bool {
        *self == WaitFor::None
    }
}

/// `wait_timeout_ms` when unset: the default `server.request_timeout_ms`, so the whole answer
/// takes at most about twice what a sender already allows for one.
pub const DEFAULT_WAIT_TIMEOUT_MS: u64 = 10_000;
/// Accepted `wait_timeout_ms`: at least 100 ms (less is shorter than one import), at most two
/// minutes (beyond it, load balancers and senders have long given up).
pub const WAIT_TIMEOUT_MS: RangeInclusive<u64> = 100..=120_000;
/// `failure_status` when unset and some record failed for another reason than its data.
pub const DEFAULT_FAILURE_STATUS: u16 = 502;
/// `failure_status` when unset and every failed record was refused by the target as invalid
/// (a 4xx other than 408 and 429, or a per-record rejection) or failed the listener's schema.
pub const INVALID_FAILURE_STATUS: u16 = 422;

/// The problems of a listener's wait keys (`response.wait`, `wait_timeout_ms`,
/// `failure_status`, `failure_body`), as `(key, message)` with keys under the listener.
pub fn problems(
    wait: WaitFor,
    success_status: u16,
    wait_timeout_ms: Option<u64>,
    failure_status: Option<u16>,
    failure_body: Option<&str>,
) -> Vec<(String, String)> {
    let mut problems = Vec::new();
    if wait != WaitFor::Import {
        for (key, set) in [
            ("response.wait_timeout_ms", wait_timeout_ms.is_some()),
            ("response.failure_status", failure_status.is_some()),
            ("response.failure_body", failure_body.is_some()),
        ] {
            if set {
                problems.push((key.into(), "applies only with response.wait = \"import\"".into()));
            }
        }
    }
    if wait == WaitFor::Import && success_status == 202 {
        problems.push((
            "response.status".into(),
            "202 is the answer of a wait that did not finish in time: with wait = \"import\" choose 200, 201 or 204"
                .into(),
        ));
    }
    if let Some(timeout) = wait_timeout_ms.filter(|ms| !WAIT_TIMEOUT_MS.contains(ms)) {
        problems.push((
            "response.wait_timeout_ms".into(),
            format!(
                "must be between {} and {} (2 minutes), not {timeout}",
                WAIT_TIMEOUT_MS.start(),
                WAIT_TIMEOUT_MS.end()
            ),
        ));
    }
    if let Some(status) = failure_status.filter(|status| !(400..=599).contains(status)) {
        problems.push((
            "response.failure_status".into(),
            format!("must be a 4xx or 5xx status (a failed import is no success), not {status}"),
        ));
    }
    if let Some(Err(message)) = failure_body.map(crate::templates::validate) {
        problems.push(("response.failure_body".into(), message));
    }
    problems
}

/// Whether the status of a failed record says the record itself is invalid: a 4xx other than
/// 408 and 429 (which are about timing), or a 2xx (the target's per-record results rejected it,
/// `"ok": false`). Then the failure answer is 422 unless `failure_status` is set.
pub fn says_invalid(target_status: Option<u16>) -> bool {
    target_status.is_some_and(|status| {
        (200..=299).contains(&status) || ((400..=499).contains(&status) && status != 408 && status != 429)
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::test_support::{env, BASE};
    use crate::config::Settings;
    use std::time::Duration;

    fn problems_of(response: &str) -> Vec<String> {
        let text = format!("{BASE}[listeners.response]\n{response}\n");
        match Settings::from_toml_and_env(&text, env(&[])) {
            Ok(_) => Vec::new(),
            Err(errors) => errors.0.iter().map(ToString::to_string).collect(),
        }
    }

    #[test]
    fn wait_defaults_to_none_and_import_takes_its_keys() {
        let settings = Settings::from_toml_and_env(BASE, env(&[])).unwrap();
        let response = &settings.listeners[0].response;
        assert!(!response.waits_for_import());
        let written = serde_json::to_value(response).unwrap();
        assert!(written.get("wait").is_none(), "left out by default: {written}");
        let text = format!(
            "{BASE}[listeners.response]\nstatus = 200\nwait = \"import\"\nwait_timeout_ms = 3000\n\
             failure_status = 409\nfailure_body = '{{{{#each failures}}}}{{{{error}}}}{{{{/each}}}}'\n\
             body = '{{\"id\": \"{{{{results.0.target.id}}}}\"}}'\n"
        );
        let settings = Settings::from_toml_and_env(&text, env(&[])).unwrap();
        let response = &settings.listeners[0].response;
        assert!(response.waits_for_import());
        assert_eq!(response.wait_timeout(), Duration::from_secs(3));
        assert_eq!(response.failure_status, Some(409));
        assert_eq!(serde_json::to_value(response).unwrap()["wait"], "import");
        let default_timeout = problems_of("wait = \"import\"");
        assert!(default_timeout.is_empty(), "{default_timeout:?}");
    }

    #[test]
    fn wait_problems_are_named() {
        let unknown = problems_of("wait = \"sometimes\"");
        assert!(
            unknown.len() == 1
                && unknown[0].starts_with(
                    "listeners[0].response.wait: unknown variant `sometimes`, expected `none` or `import`"
                ),
            "{unknown:?}"
        );
        assert_eq!(
            problems_of("wait = \"import\"\nwait_timeout_ms = 50"),
            ["listeners[orders].response.wait_timeout_ms: must be between 100 and 120000 (2 minutes), not 50"]
        );
        assert_eq!(
            problems_of("wait = \"import\"\nwait_timeout_ms = 600000").len(),
            1,
            "over two minutes"
        );
        assert_eq!(
            problems_of("wait = \"import\"\nfailure_status = 200"),
            ["listeners[orders].response.failure_status: must be a 4xx or 5xx status (a failed import is no success), not 200"]
        );
        assert_eq!(
            problems_of("wait = \"import\"\nstatus = 202"),
            ["listeners[orders].response.status: 202 is the answer of a wait that did not finish in time: with wait = \"import\" choose 200, 201 or 204"]
        );
        let template = problems_of("wait = \"import\"\nfailure_body = '{{nosuchhelper failures}}'");
        assert_eq!(template.len(), 1, "{template:?}");
        assert!(
            template[0].starts_with("listeners[orders].response.failure_body: ")
                && template[0].contains("unknown helper `nosuchhelper`"),
            "{template:?}"
        );
        assert_eq!(
            problems_of("failure_status = 502\nwait_timeout_ms = 1000"),
            [
                "listeners[orders].response.wait_timeout_ms: applies only with response.wait = \"import\"",
                "listeners[orders].response.failure_status: applies only with response.wait = \"import\"",
            ]
        );
    }

    #[test]
    fn the_cap_on_waits_is_bounded() {
        let errors = Settings::from_toml_and_env(BASE, env(&[("HOOKPIPE_SERVER__MAX_IMPORT_WAITS", "0")]))
            .unwrap_err()
            .0;
        let found: Vec<String> = errors.iter().map(ToString::to_string).collect();
        assert_eq!(found, ["server.max_import_waits: must be between 1 and 1000000"]);
        let settings = Settings::from_toml_and_env(BASE, env(&[])).unwrap();
        assert_eq!(settings.server.max_import_waits, 1024);
    }

    #[test]
    fn the_target_calls_records_invalid_with_a_4xx_not_about_timing_or_a_per_record_rejection() {
        for (status, invalid) in [
            (Some(400), true),
            (Some(404), true),
            (Some(422), true),
            (Some(408), false),
            (Some(429), false),
            (Some(500), false),
            (Some(503), false),
            (Some(200), true),
            (Some(207), true),
            (None, false),
        ] {
            assert_eq!(says_invalid(status), invalid, "{status:?}");
        }
    }
}
