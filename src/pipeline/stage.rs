//! A stage's inbox: a bounded, measured mailbox over a `Recipient`, so an actor names only the
//! message its next stage takes (`next: Stage<Ingest>`), never which actor that is. Only
//! `Chain::start` knows the order; tests plug a [`probe`] in as the next stage.

use std::sync::Arc;
use std::time::Instant;

use actix::dev::ToEnvelope;
use actix::prelude::*;
use tokio::sync::{OwnedSemaphorePermit, Semaphore};

use crate::telemetry::events::MailboxBlocked;

/// A stage's inbox with an explicit, measurable bound: a message holds a permit from the moment
/// it is queued until the stage starts handling it, so waiting for a permit is exactly waiting
/// on a full mailbox (and is counted in `hookpipe_mailbox_blocked_seconds_total`).
pub struct Stage<M>
where
    M: Message + Send + 'static,
    M::Result: Send,
{
    // One allocation shared by every clone: handlers clone their next stage for each message,
    // and cloning a `Recipient` itself allocates.
    inner: Arc<StageInner<M>>,
}

struct StageInner<M>
where
    M: Message + Send + 'static,
    M::Result: Send,
{
    recipient: Recipient<Admitted<M>>,
    permits: Arc<Semaphore>,
    name: &'static str,
}

impl<M> Clone for Stage<M>
where
    M: Message + Send + 'static,
    M::Result: Send,
{
    fn clone(&self) -> Self {
        Stage {
            inner: self.inner.clone(),
        }
    }
}

/// A message admitted into a stage's mailbox; the handler drops the permit when it starts.
pub struct Admitted<M> {
    /// The message.
    pub message: M,
    /// Room in the mailbox, released when handling starts.
    pub permit: OwnedSemaphorePermit,
}

impl<M> Admitted<M> {
    /// The message, giving its room in the mailbox back: call it first thing in a handler.
    pub fn into_message(self) -> M {
        drop(self.permit);
        self.message
    }
}

impl<M: Message> Message for Admitted<M> {
    type Result = M::Result;
}

/// The stage stopped (shutdown): the message was dropped, and with it any reply it carried,
/// which answers for it.
#[derive(Debug, thiserror::Error)]
#[error("stage {0} stopped")]
pub struct StageClosed(pub &'static str);

/// Why [`Stage::try_forward`] did not deliver a message.
#[derive(Debug)]
pub enum TryForwardError<M> {
    /// The mailbox is full: the message, given back to be refused.
    Full(M),
    /// The stage stopped.
    Closed(StageClosed),
}

impl<M> Stage<M>
where
    M: Message + Send + 'static,
    M::Result: Send,
{
    /// A stage over `recipient` with room for `capacity` queued messages. The recipient's own
    /// mailbox must hold at least `capacity` (see [`Stage::start`]).
    pub fn new(name: &'static str, capacity: usize, recipient: Recipient<Admitted<M>>) -> Stage<M> {
        MailboxBlocked::declare(name);
        Stage {
            inner: Arc::new(StageInner {
                recipient,
                permits: Arc::new(Semaphore::new(capacity.max(1))),
                name,
            }),
        }
    }

    /// Starts `actor` on the current arbiter with room for `capacity` queued messages.
    pub fn start<A>(name: &'static str, capacity: usize, actor: A) -> Stage<M>
    where
        A: Actor<Context = Context<A>> + Handler<Admitted<M>>,
        A::Context: ToEnvelope<A, Admitted<M>>,
    {
        let addr = A::create(move |ctx| {
            // The semaphore is the bound; actix's own capacity only has to be no smaller.
            ctx.set_mailbox_capacity(capacity.max(1));
            actor
        });
        Stage::new(name, capacity, addr.recipient())
    }

    /// Sends and waits until the stage has handled the message, waiting (measured) while the
    /// mailbox is full.
    pub async fn forward(&self, message: M) -> Result<M::Result, StageClosed> {
        let permit = match self.inner.permits.clone().try_acquire_owned() {
            Ok(permit) => permit,
            Err(_) => {
                let started = Instant::now();
                let permit = self
                    .inner
                    .permits
                    .clone()
                    .acquire_owned()
                    .await
                    .map_err(|_| StageClosed(self.inner.name))?;
                MailboxBlocked {
                    stage: self.inner.name,
                    waited: started.elapsed(),
                }
                .emit();
                permit
            }
        };
        self.send(message, permit).await
    }

    /// Sends only if the mailbox has room, else gives the message back: the Receiver sheds
    /// load instead of queueing.
    pub async fn try_forward(&self, message: M) -> Result<M::Result, TryForwardError<M>> {
        match self.inner.permits.clone().try_acquire_owned() {
            Ok(permit) => self.send(message, permit).await.map_err(TryForwardError::Closed),
            Err(_) => Err(TryForwardError::Full(message)),
        }
    }

    async fn send(&self, message: M, permit: OwnedSemaphorePermit) -> Result<M::Result, StageClosed> {
        self.inner
            .recipient
            .send(Admitted { message, permit })
            .await
            .map_err(|_| StageClosed(self.inner.name))
    }
}

/// A test inbox in place of a next stage (Quickwit's `create_test_mailbox`): what a stage
/// forwards lands in a channel the test drains, answered with a result of the test's choosing.
#[cfg(test)]
pub mod probe {
    use std::sync::mpsc;

    use super::*;

    /// The receiving end of a probe stage.
    pub struct Probe<M> {
        received: mpsc::Receiver<M>,
    }

    impl<M> Probe<M> {
        /// Every message the probe has received so far, in order.
        pub fn drain(&self) -> Vec<M> {
            self.received.try_iter().collect()
        }
    }

    /// How a probe answers each message it receives.
    type Answer<M> = Box<dyn Fn(&M) -> <M as Message>::Result>;

    /// The actor behind a probe stage.
    pub struct ProbeActor<M: Message> {
        sender: mpsc::Sender<M>,
        answer: Answer<M>,
    }

    impl<M: Message + 'static> Actor for ProbeActor<M> {
        type Context = Context<Self>;
    }

    impl<M> Handler<Admitted<M>> for ProbeActor<M>
    where
        M: Message + Send + 'static,
        M::Result: Send + actix::dev::MessageResponse<ProbeActor<M>, Admitted<M>>,
    {
        type Result = M::Result;

        fn handle(&mut self, admitted: Admitted<M>, _ctx: &mut Context<Self>) -> M::Result {
            let message = admitted.into_message();
            let answer = (self.answer)(&message);
            // The test may have dropped its end: nothing to record then.
            let _ = self.sender.send(message);
            answer
        }
    }

    /// A probe stage answering `()` (the chain's request messages); call inside an actix system.
    pub fn probe<M>() -> (Stage<M>, Probe<M>)
    where
        M: Message<Result = ()> + Send + 'static,
    {
        probe_answering(|_| ())
    }

    /// A probe stage answering each message with `answer(&message)`.
    pub fn probe_answering<M>(answer: impl Fn(&M) -> M::Result + 'static) -> (Stage<M>, Probe<M>)
    where
        M: Message + Send + 'static,
        M::Result: Send + actix::dev::MessageResponse<ProbeActor<M>, Admitted<M>>,
    {
        let (sender, received) = mpsc::channel();
        let stage = Stage::start(
            "probe",
            16,
            ProbeActor {
                sender,
                answer: Box::new(answer),
            },
        );
        (stage, Probe { received })
    }
}

#[cfg(test)]
mod tests {
    use super::probe::probe;
    use super::*;

    #[derive(Debug, PartialEq)]
    struct Note(u32);

    impl Message for Note {
        type Result = ();
    }

    #[actix::test]
    async fn forwarded_messages_arrive_in_order() {
        let (stage, probe) = probe::<Note>();
        stage.forward(Note(1)).await.unwrap();
        stage.try_forward(Note(2)).await.unwrap();
        assert_eq!(probe.drain(), vec![Note(1), Note(2)]);
    }

    #[actix::test]
    async fn a_full_mailbox_gives_the_message_back() {
        let (stage, probe) = probe::<Note>();
        // Hold every permit, as messages queued behind a busy stage would.
        let held: Vec<_> = (0..16)
            .map(|_| stage.inner.permits.clone().try_acquire_owned().unwrap())
            .collect();
        match stage.try_forward(Note(3)).await {
            Err(TryForwardError::Full(Note(3))) => {}
            other => panic!("{other:?}"),
        }
        drop(held);
        stage.try_forward(Note(4)).await.unwrap();
        assert_eq!(probe.drain(), vec![Note(4)]);
    }
}
