//! VerifyActor: proves the sender is who it claims to be, on the raw body bytes.

pub mod body_token;
pub mod presets;
pub mod recipe;
pub mod request;
pub mod scheme;

use std::sync::Arc;

use actix::prelude::*;
use actix_web::http::header::HeaderMap;

use crate::pipeline::dedup::{Check, Deduplicator};
use crate::pipeline::ingest_error::IngestError;
use crate::pipeline::{Accepted, Admitted, Ingest, Stage};
use crate::telemetry::events::DeliveryDeduplicated;
use request::{HeaderSource, VerifyRequest};

/// The verification stage: refuses what does not verify, answers handshakes, forwards the rest.
pub struct VerifyActor {
    next: Stage<Ingest>,
    dedup: Arc<Deduplicator>,
}

impl VerifyActor {
    /// A verify stage forwarding to `next`, deduplicating with `dedup` the deliveries of
    /// listeners that ask for it.
    pub fn new(next: Stage<Ingest>, dedup: Arc<Deduplicator>) -> VerifyActor {
        VerifyActor { next, dedup }
    }
}

impl Actor for VerifyActor {
    type Context = Context<Self>;
}

impl VerifyActor {
    /// Looks a dedup listener's delivery up: `None` when it is answered here (a duplicate, or
    /// a copy of one in flight); else the request goes on, holding its id's claim.
    fn deduplicate(&self, mut message: Ingest) -> Option<Ingest> {
        let listener = &message.webhook.listener;
        let Some(options) = &listener.config.dedup else {
            return Some(message);
        };
        let Some(id) = message.delivery_id.as_deref() else {
            // Never deduplicated silently: published, and counted.
            DeliveryDeduplicated {
                listener: listener.id(),
                outcome: "no_delivery_id",
            }
            .emit();
            return Some(message);
        };
        // Compiling the listener refused a dedup without a window.
        let window = options
            .window_secs(&listener.config.verification)
            .unwrap_or(crate::config::dedup::MAX_WINDOW_SECS);
        let check = self
            .dedup
            .check(listener.id(), window, options.max_ids, id, super::unix_millis_now());
        let outcome = match &check {
            Check::First(_) => "first",
            Check::Duplicate => "duplicate",
            Check::InFlight => "in_flight",
        };
        DeliveryDeduplicated {
            listener: listener.id(),
            outcome,
        }
        .emit();
        match check {
            Check::First(claim) => {
                message.reply.hold_claim(claim);
                Some(message)
            }
            Check::Duplicate => {
                message.reply.accept(Accepted {
                    duplicate: true,
                    ..Accepted::default()
                });
                None
            }
            Check::InFlight => {
                message.reply.refuse(IngestError::DeliveryInFlight);
                None
            }
        }
    }
}

/// Actix's header map as the verifier's header source.
pub struct ActixHeaders<'a>(pub &'a HeaderMap);

impl HeaderSource for ActixHeaders<'_> {
    fn header(&self, name: &str) -> Option<&str> {
        self.0.get(name).and_then(|value| value.to_str().ok())
    }
}

impl Handler<Admitted<Ingest>> for VerifyActor {
    type Result = ResponseFuture<()>;

    fn handle(&mut self, admitted: Admitted<Ingest>, _ctx: &mut Context<Self>) -> Self::Result {
        let mut message = admitted.into_message();
        // Mock output enters after this stage (`Chain::mock_entry`): it has nothing to verify.
        debug_assert!(!message.webhook.mock, "mock output is not verified");
        let webhook = &message.webhook;
        let verdict = webhook.listener.verifier.verify(&VerifyRequest {
            method: &webhook.method,
            url: &webhook.url,
            query: &webhook.query,
            headers: &ActixHeaders(&webhook.headers),
            body: &webhook.body,
            now_unix: super::unix_millis_now() / 1000,
        });
        let verified = match verdict {
            Ok(verified) => verified,
            Err(error) => {
                message.reply.refuse(IngestError::Unauthorized(error));
                return Box::pin(async {});
            }
        };
        if message.answer_once_verified {
            // A handshake that publishes nothing (Zoom's, Slack's): verified, it is answered —
            // the Receiver sends the handshake's answer — and goes no further.
            message.reply.accept(Accepted::default());
            return Box::pin(async {});
        }
        message.delivery_id = verified.delivery_id;
        if message.webhook.listener.config.dedup.is_some() {
            match self.deduplicate(message) {
                Some(first) => message = first,
                None => return Box::pin(async {}),
            }
        }
        // The token has done its job: no record, page or sample may carry it.
        if let Some(path) = message.webhook.listener.verifier.secret_json_path() {
            if let Some(redacted) = body_token::redact(&message.webhook.body, path) {
                message.webhook.body = redacted.into();
            }
        }
        let next = self.next.clone();
        // A stopped next stage drops the message, and its reply answers 503.
        Box::pin(async move {
            let _ = next.forward(message).await;
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::pipeline::stage::probe::probe;
    use crate::pipeline::testing::{ingest, listener, signed_hmac_sha256};

    const HMAC_LISTENER: &str = r#"
[listeners.verification]
type = "hmac"
algorithm = "sha256"
encoding = "hex"
header = "X-Sig"
secrets = ["verify-secret"]
"#;

    #[actix::test]
    async fn a_verified_request_goes_on_unanswered() {
        let (next, probe) = probe();
        let stage = Stage::start("verify", 4, VerifyActor::new(next, Deduplicator::new()));
        let listener = listener(HMAC_LISTENER);
        let body = br#"{"a":1}"#;
        let signature = signed_hmac_sha256(b"verify-secret", body);
        let (message, mut awaited) = ingest(&listener, &[("x-sig", &signature)], body);
        stage.forward(message).await.unwrap();
        let arrived = probe.drain();
        assert_eq!(arrived.len(), 1);
        assert_eq!(&arrived[0].webhook.body[..], body);
        assert!(awaited.try_outcome().is_none(), "the next stage answers, not verify");
    }

    /// An HMAC recipe giving `X-Id` as the delivery id, deduplicated over an hour.
    const DEDUP_LISTENER: &str = r#"
dedup = { window_secs = 3600 }
[listeners.verification]
type = "recipe"
algorithm = "sha256"
encoding = "hex"
signature_header = "X-Sig"
secrets = ["verify-secret"]
delivery_id_header = "X-Id"
"#;

    #[actix::test]
    async fn copies_of_a_delivery_wait_for_the_first_and_only_its_success_makes_them_duplicates() {
        let (next, probe) = probe();
        let stage = Stage::start("verify", 8, VerifyActor::new(next, Deduplicator::new()));
        let listener = listener(DEDUP_LISTENER);
        let body = br#"{"a":1}"#;
        let signature = signed_hmac_sha256(b"verify-secret", body);
        let headers = [("x-sig", signature.as_str()), ("x-id", "evt-1")];
        let send = |headers: &[(&str, &str)]| ingest(&listener, headers, body);

        // The first copy goes on, holding the id; a second one meanwhile is a 409.
        let (first, _first_reply) = send(&headers);
        stage.forward(first).await.unwrap();
        let (second, second_reply) = send(&headers);
        stage.forward(second).await.unwrap();
        assert!(matches!(
            second_reply.outcome().await,
            Err(IngestError::DeliveryInFlight)
        ));
        // The first is lost (503): its id is released, and the provider's retry goes on.
        let arrived = probe.drain();
        assert_eq!(arrived.len(), 1);
        drop(arrived);
        let (retry, _retry_reply) = send(&headers);
        stage.forward(retry).await.unwrap();
        let mut arrived = probe.drain();
        assert_eq!(arrived.len(), 1, "a copy of a failed delivery is published");
        // Acknowledged: from now on a copy is answered as a success and goes nowhere.
        arrived.pop().unwrap().reply.accept(Accepted::default());
        let (copy, copy_reply) = send(&headers);
        stage.forward(copy).await.unwrap();
        match copy_reply.outcome().await {
            Ok(accepted) => assert!(accepted.duplicate && accepted.record_count == 0),
            other => panic!("{other:?}"),
        }
        assert!(probe.drain().is_empty());
        // Another id, and a request without one, go on.
        let (other, _other_reply) = send(&[("x-sig", signature.as_str()), ("x-id", "evt-2")]);
        stage.forward(other).await.unwrap();
        let (no_id, _no_id_reply) = send(&[("x-sig", signature.as_str())]);
        stage.forward(no_id).await.unwrap();
        assert_eq!(probe.drain().len(), 2);
        // A forged copy is refused by verification, never answered as a duplicate.
        let (forged, forged_reply) = send(&[("x-sig", "00"), ("x-id", "evt-1")]);
        stage.forward(forged).await.unwrap();
        assert!(matches!(
            forged_reply.outcome().await,
            Err(IngestError::Unauthorized(_))
        ));
    }

    #[actix::test]
    async fn a_forged_request_is_refused_here_and_goes_nowhere() {
        let (next, probe) = probe();
        let stage = Stage::start("verify", 4, VerifyActor::new(next, Deduplicator::new()));
        let listener = listener(HMAC_LISTENER);
        let forged = signed_hmac_sha256(b"not-the-secret", b"{}");
        let (message, awaited) = ingest(&listener, &[("x-sig", &forged)], b"{}");
        stage.forward(message).await.unwrap();
        match awaited.outcome().await {
            Err(IngestError::Unauthorized(reason)) => assert_eq!(reason.reason(), "mismatch"),
            other => panic!("{other:?}"),
        }
        assert!(probe.drain().is_empty());
    }

    #[actix::test]
    async fn a_body_token_is_redacted_before_the_next_stage() {
        let (next, probe) = probe();
        let stage = Stage::start("verify", 4, VerifyActor::new(next, Deduplicator::new()));
        let listener = listener(
            r#"
[listeners.verification]
type = "token"
json_path = "auth.token"
tokens = ["tok-abcdef-123456"]
"#,
        );
        let body = br#"{"auth":{"token":"tok-abcdef-123456"},"n":1}"#;
        let (message, _awaited) = ingest(&listener, &[], body);
        stage.forward(message).await.unwrap();
        let arrived = probe.drain();
        let forwarded = String::from_utf8_lossy(&arrived[0].webhook.body).into_owned();
        assert!(!forwarded.contains("tok-abcdef-123456"), "{forwarded}");
        assert!(forwarded.contains("[redacted]"), "{forwarded}");
    }

    #[actix::test]
    async fn a_verified_handshake_is_answered_here_and_a_forged_one_refused() {
        let listener = listener("[listeners.verification]\ntype = \"slack\"\nsecrets = [\"slack-secret\"]\n");
        let body = br#"{"token":"x","challenge":"c-123","type":"url_verification"}"#;
        let timestamp = (crate::pipeline::unix_millis_now() / 1000).to_string();
        let signed = [format!("v0:{timestamp}:").as_bytes(), body].concat();
        for (secret, verified) in [(&b"slack-secret"[..], true), (&b"not-the-secret"[..], false)] {
            let (next, probe) = probe();
            let stage = Stage::start("verify", 4, VerifyActor::new(next, Deduplicator::new()));
            let signature = format!("v0={}", signed_hmac_sha256(secret, &signed));
            let headers = [
                ("x-slack-request-timestamp", timestamp.as_str()),
                ("x-slack-signature", signature.as_str()),
            ];
            let (mut message, awaited) = ingest(&listener, &headers, body);
            message.answer_once_verified = true;
            stage.forward(message).await.unwrap();
            match awaited.outcome().await {
                Ok(accepted) if verified => assert_eq!(accepted.record_count, 0),
                Err(IngestError::Unauthorized(reason)) if !verified => assert_eq!(reason.reason(), "mismatch"),
                other => panic!("verified {verified}: {other:?}"),
            }
            assert!(probe.drain().is_empty(), "a handshake is not published");
        }
    }
}
