//! `dedup = { window_secs, max_ids }` of a listener: a delivery whose provider delivery id was
//! already accepted within the window is answered with the success response and published
//! nowhere (`pipeline::dedup`, README "Deduplication").

use serde::{Deserialize, Serialize};

use super::verification::VerificationConfig;

/// The longest window: the dedup topic keeps ids this long (`retention.ms`), so an instance
/// that starts reads back every id a window can still need.
pub const MAX_WINDOW_SECS: u64 = 7 * 24 * 3600;
/// Ids one listener keeps at most, whatever `max_ids` says (about 400 MB: see the README).
pub const MAX_IDS: usize = 10_000_000;
/// Default `max_ids`: a million ids, about 40 MB per listener.
pub const DEFAULT_MAX_IDS: usize = 1_000_000;

/// Deduplication of a listener's deliveries by the provider's delivery id.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct DedupOptions {
    /// How long an accepted delivery id is remembered; by default the provider's retry horizon
    /// (the verification preset's, [`provider_window_secs`]). Required for other verifications.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub window_secs: Option<u64>,
    /// Ids kept at most (the oldest are forgotten first when there are more).
    #[serde(default = "default_max_ids")]
    pub max_ids: usize,
}

fn default_max_ids() -> usize {
    DEFAULT_MAX_IDS
}

/// How long a provider retries a delivery it could not make (its published schedule, rounded
/// up): the default window of a preset's listeners.
pub fn provider_window_secs(verification: &VerificationConfig) -> Option<u64> {
    const DAY: u64 = 24 * 3600;
    Some(match verification {
        // Stripe retries live-mode events for up to three days; GitHub redelivers (by hand or
        // API) deliveries of the past three days.
        VerificationConfig::Stripe { .. } | VerificationConfig::Github { .. } => 3 * DAY,
        // Svix's schedule (the Standard Webhooks reference) ends about 28 hours after the
        // first attempt.
        VerificationConfig::StandardWebhooks { .. } => 2 * DAY,
        // Shopify: 8 retries over 4 hours; Zendesk and Twilio retry within minutes.
        VerificationConfig::Shopify { .. } | VerificationConfig::Zendesk { .. } | VerificationConfig::Twilio { .. } => {
            DAY
        }
        _ => return None,
    })
}

impl DedupOptions {
    /// The window in effect: `window_secs`, else the provider's horizon.
    pub fn window_secs(&self, verification: &VerificationConfig) -> Option<u64> {
        self.window_secs.or_else(|| provider_window_secs(verification))
    }

    /// Problems, as `(key relative to the listener, message)`.
    pub fn problems(&self, verification: &VerificationConfig) -> Vec<(String, String)> {
        let mut problems = Vec::new();
        if !yields_delivery_id(verification) {
            problems.push((
                "dedup".into(),
                format!(
                    "verification type `{}` gives no delivery id to deduplicate by; use a provider's \
                     type or a recipe with delivery_id_header or delivery_id_json",
                    verification.kind()
                ),
            ));
        }
        match self.window_secs(verification) {
            None => problems.push((
                "dedup.window_secs".into(),
                "is required for this verification type (no provider retry horizon to default to)".into(),
            )),
            Some(0) => problems.push(("dedup.window_secs".into(), "must be at least 1".into())),
            Some(window) if window > MAX_WINDOW_SECS => problems.push((
                "dedup.window_secs".into(),
                format!("must be at most {MAX_WINDOW_SECS} (7 days, the dedup topic's retention)"),
            )),
            Some(_) => {}
        }
        if self.max_ids == 0 || self.max_ids > MAX_IDS {
            problems.push(("dedup.max_ids".into(), format!("must be between 1 and {MAX_IDS}")));
        }
        problems
    }
}

/// Whether verification finds a delivery id in the requests it accepts.
pub fn yields_delivery_id(verification: &VerificationConfig) -> bool {
    verification
        .as_recipe()
        .is_some_and(|(recipe, _)| recipe.delivery_id_header.is_some() || recipe.delivery_id_json.is_some())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn verification(toml: &str) -> VerificationConfig {
        toml::from_str(toml).unwrap()
    }

    fn keys(options: &DedupOptions, verification: &VerificationConfig) -> Vec<String> {
        options.problems(verification).into_iter().map(|(key, _)| key).collect()
    }

    #[test]
    fn presets_default_to_the_providers_retry_horizon() {
        let stripe = verification("type = \"stripe\"\nsecrets = [\"whsec_x\"]");
        let options = DedupOptions {
            window_secs: None,
            max_ids: DEFAULT_MAX_IDS,
        };
        assert_eq!(options.window_secs(&stripe), Some(3 * 24 * 3600));
        assert!(keys(&options, &stripe).is_empty());
        let shopify = verification("type = \"shopify\"\nsecrets = [\"s\"]");
        assert_eq!(options.window_secs(&shopify), Some(24 * 3600));
    }

    #[test]
    fn a_verification_without_delivery_ids_cannot_deduplicate() {
        let hmac = verification(
            "type = \"hmac\"\nalgorithm = \"sha256\"\nencoding = \"hex\"\nheader = \"X-Sig\"\nsecrets = [\"s\"]",
        );
        let options = DedupOptions {
            window_secs: Some(60),
            max_ids: 10,
        };
        assert_eq!(keys(&options, &hmac), vec!["dedup"]);
        let none = VerificationConfig::None;
        let no_window = DedupOptions {
            window_secs: None,
            max_ids: 10,
        };
        assert_eq!(keys(&no_window, &none), vec!["dedup", "dedup.window_secs"]);
    }

    #[test]
    fn a_recipe_with_a_delivery_id_header_can_and_bounds_are_checked() {
        let recipe = verification(
            "type = \"recipe\"\nalgorithm = \"sha256\"\nencoding = \"hex\"\nsignature_header = \"X-Sig\"\n\
             signed_content = \"{body}\"\nsecrets = [\"s\"]\ndelivery_id_header = \"X-Id\"",
        );
        let ok = DedupOptions {
            window_secs: Some(3600),
            max_ids: MAX_IDS,
        };
        assert!(keys(&ok, &recipe).is_empty(), "{:?}", ok.problems(&recipe));
        let bad = DedupOptions {
            window_secs: Some(MAX_WINDOW_SECS + 1),
            max_ids: MAX_IDS + 1,
        };
        assert_eq!(keys(&bad, &recipe), vec!["dedup.window_secs", "dedup.max_ids"]);
        let zero = DedupOptions {
            window_secs: Some(0),
            max_ids: 0,
        };
        assert_eq!(keys(&zero, &recipe), vec!["dedup.window_secs", "dedup.max_ids"]);
    }
}
