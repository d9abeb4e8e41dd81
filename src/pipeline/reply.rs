//! The answer to one request, carried through the chain inside its message and given once, by
//! the stage that decides it: the page stage when Kafka has acknowledged every page holding the
//! request's records, or whichever stage refuses the request. Stages in between forward and
//! return; nothing climbs back through them.
//!
//! As Vector's finalizers, a reply that is dropped unanswered (a stage stopped, a message lost)
//! answers for itself, with 503: a lost request can never read as accepted.

use std::sync::{Arc, OnceLock};

use tokio::sync::oneshot;

use crate::kafka::producer::PublishError;
use crate::pipeline::dedup::Claim;
use crate::pipeline::ingest_error::IngestError;
use crate::pipeline::{Accepted, Outcome};

/// The sending half: answered at most once (answering consumes it); dropped unanswered, it
/// answers `503` ([`IngestError::Unavailable`]).
pub struct Reply {
    sender: Option<oneshot::Sender<Outcome>>,
    /// The delivery id the request claimed (`pipeline::dedup`): confirmed by a success answer,
    /// released by any other (or by the reply being dropped).
    claim: Option<Claim>,
}

/// The receiving half, awaited by whoever sent the request into the chain.
pub struct AwaitedReply {
    receiver: oneshot::Receiver<Outcome>,
}

impl std::fmt::Debug for Reply {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(if self.sender.is_some() {
            "Reply(pending)"
        } else {
            "Reply(answered)"
        })
    }
}

impl Reply {
    /// A reply and the handle its answer arrives on.
    pub fn new() -> (Reply, AwaitedReply) {
        let (sender, receiver) = oneshot::channel();
        (
            Reply {
                sender: Some(sender),
                claim: None,
            },
            AwaitedReply { receiver },
        )
    }

    /// Holds the request's delivery-id claim until the request is answered.
    pub fn hold_claim(&mut self, claim: Claim) {
        self.claim = Some(claim);
    }

    /// Answers the request.
    pub fn answer(mut self, outcome: Outcome) {
        if let (Some(claim), Ok(_)) = (self.claim.take(), &outcome) {
            // Before the sender hears: a retry it sends on seeing the answer finds the id seen.
            claim.confirm(crate::pipeline::unix_millis_now());
        }
        if let Some(sender) = self.sender.take() {
            // The requester gone (its deadline passed) is not an error: nobody is left to tell.
            let _ = sender.send(outcome);
        }
    }

    /// Answers that the request was accepted.
    pub fn accept(self, accepted: Accepted) {
        self.answer(Ok(accepted));
    }

    /// Answers that the request was refused.
    pub fn refuse(self, error: IngestError) {
        self.answer(Err(error));
    }

    /// Splits the reply among the pages a request's records go into: it answers `accepted` once
    /// every share is settled as acknowledged, else the first failure.
    pub fn share_among_pages(self, accepted: Accepted) -> PageShares {
        PageShares {
            pending: Arc::new(PendingAcks {
                reply: Some(self),
                accepted,
                failure: OnceLock::new(),
            }),
        }
    }
}

impl Drop for Reply {
    fn drop(&mut self) {
        if let Some(sender) = self.sender.take() {
            let _ = sender.send(Err(IngestError::Unavailable(PublishError::Closed)));
        }
    }
}

impl AwaitedReply {
    /// The answer. A reply always answers, if only by being dropped, so a lost channel is a bug.
    pub async fn outcome(self) -> Outcome {
        self.receiver
            .await
            .unwrap_or_else(|_| Err(IngestError::Internal("reply channel lost".into())))
    }

    /// The answer if there is one already (tests: "not answered yet" is `None`).
    #[cfg(test)]
    pub fn try_outcome(&mut self) -> Option<Outcome> {
        self.receiver.try_recv().ok()
    }
}

/// A request's reply while its records wait in pages: the request is answered when the last
/// share is gone.
pub struct PageShares {
    pending: Arc<PendingAcks>,
}

impl PageShares {
    /// One share, for one page the request's records went into.
    pub fn share(&self) -> PageShare {
        PageShare {
            pending: Some(self.pending.clone()),
        }
    }
}

/// The request's part in one page: settled with Kafka's answer for that page. Dropped
/// unsettled (the page was lost), it counts as failed.
pub struct PageShare {
    pending: Option<Arc<PendingAcks>>,
}

impl std::fmt::Debug for PageShare {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("PageShare")
    }
}

impl PageShare {
    /// Records Kafka's answer for this share's page.
    pub fn settle(mut self, result: Result<(), PublishError>) {
        if let (Some(pending), Err(error)) = (self.pending.take(), result) {
            pending.fail(error);
        }
    }
}

impl Drop for PageShare {
    fn drop(&mut self) {
        if let Some(pending) = self.pending.take() {
            pending.fail(PublishError::Closed);
        }
    }
}

struct PendingAcks {
    reply: Option<Reply>,
    accepted: Accepted,
    /// The first page failure: one is enough to refuse the request.
    failure: OnceLock<PublishError>,
}

impl PendingAcks {
    fn fail(&self, error: PublishError) {
        let _ = self.failure.set(error);
    }
}

impl Drop for PendingAcks {
    fn drop(&mut self) {
        let Some(reply) = self.reply.take() else { return };
        match self.failure.take() {
            Some(error) => reply.refuse(IngestError::Unavailable(error)),
            None => reply.accept(std::mem::take(&mut self.accepted)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn accepted(record_count: usize) -> Accepted {
        Accepted {
            record_count,
            ..Accepted::default()
        }
    }

    #[actix::test]
    async fn answered_once_by_whoever_decides() {
        let (reply, awaited) = Reply::new();
        reply.accept(accepted(2));
        assert_eq!(awaited.outcome().await.unwrap().record_count, 2);

        let (reply, awaited) = Reply::new();
        reply.refuse(IngestError::NotFound);
        assert!(matches!(awaited.outcome().await, Err(IngestError::NotFound)));
    }

    #[actix::test]
    async fn a_dropped_reply_answers_503() {
        let (reply, awaited) = Reply::new();
        drop(reply);
        let error = awaited.outcome().await.unwrap_err();
        assert!(
            matches!(error, IngestError::Unavailable(PublishError::Closed)),
            "{error:?}"
        );
        use actix_web::ResponseError;
        assert_eq!(error.status_code(), 503);
    }

    #[actix::test]
    async fn shared_among_pages_answers_when_the_last_page_settles() {
        let (reply, mut awaited) = Reply::new();
        let shares = reply.share_among_pages(accepted(3));
        let (first, second) = (shares.share(), shares.share());
        drop(shares);
        first.settle(Ok(()));
        assert!(awaited.try_outcome().is_none(), "one page still unacknowledged");
        second.settle(Ok(()));
        assert_eq!(awaited.outcome().await.unwrap().record_count, 3);
    }

    #[actix::test]
    async fn one_failed_or_lost_page_refuses_the_request() {
        let (reply, awaited) = Reply::new();
        let shares = reply.share_among_pages(accepted(2));
        let (first, second) = (shares.share(), shares.share());
        drop(shares);
        first.settle(Err(PublishError::QueueFull));
        second.settle(Ok(()));
        assert!(matches!(
            awaited.outcome().await,
            Err(IngestError::Unavailable(PublishError::QueueFull))
        ));

        let (reply, awaited) = Reply::new();
        let shares = reply.share_among_pages(accepted(1));
        let lost = shares.share();
        drop(shares);
        drop(lost);
        assert!(matches!(
            awaited.outcome().await,
            Err(IngestError::Unavailable(PublishError::Closed))
        ));
    }
}
