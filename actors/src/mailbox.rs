//! `forge_manager_mailbox_depth{actor}`: how many messages wait in an actor's mailbox. actix does
//! not expose a mailbox's length, so the senders go through a [`Counted`] inbox: it counts each
//! message up and passes it on, in order, as [`Queued`]; the receiver counts it down when it
//! handles it. The inbox adds one hop on the same thread (about a microsecond).

use actix::{Actor, Context, Handler, Message, Recipient};
use prometheus::IntGauge;

/// A message that went through a [`Counted`] inbox: the receiver must take the message with
/// [`Queued::into_inner`], which counts it out of the mailbox.
#[derive(Debug)]
pub struct Queued<M> {
    message: M,
    depth: IntGauge,
}

impl<M> Queued<M> {
    /// The message, counting it out of the mailbox.
    pub fn into_inner(self) -> M {
        self.depth.dec();
        self.message
    }
}

impl<M: Message<Result = ()>> Message for Queued<M> {
    type Result = ();
}

/// A counting inbox in front of `target` (see the module docs).
pub struct Counted<M: Message<Result = ()> + Send> {
    target: Recipient<Queued<M>>,
    depth: IntGauge,
}

impl<M: Message<Result = ()> + Send> Counted<M> {
    /// An inbox that counts into `depth` (e.g. `mailbox_depth{actor="decider"}`).
    pub fn new(target: Recipient<Queued<M>>, depth: IntGauge) -> Self {
        Self { target, depth }
    }
}

impl<M: Message<Result = ()> + Send + Unpin + 'static> Actor for Counted<M> {
    type Context = Context<Self>;
}

impl<M: Message<Result = ()> + Send + Unpin + 'static> Handler<M> for Counted<M> {
    type Result = ();

    fn handle(&mut self, message: M, _: &mut Context<Self>) {
        self.depth.inc();
        // `do_send` on purpose: a fact must never be dropped, and the receiver's mailbox is
        // sized for the bursts it can see; the gauge shows if that ever stops holding.
        self.target.do_send(Queued {
            message,
            depth: self.depth.clone(),
        });
    }
}

#[cfg(test)]
mod tests {
    use actix::Actor;

    use super::*;

    #[derive(Debug, Message)]
    #[rtype(result = "()")]
    struct Ping(u32);

    struct Sink(std::sync::Arc<std::sync::Mutex<Vec<(u32, i64)>>>, IntGauge);

    impl Actor for Sink {
        type Context = Context<Self>;
    }

    impl Handler<Queued<Ping>> for Sink {
        type Result = ();
        fn handle(&mut self, q: Queued<Ping>, _: &mut Context<Self>) {
            let depth_before = self.1.get();
            let Ping(n) = q.into_inner();
            self.0.lock().expect("lock").push((n, depth_before));
        }
    }

    #[actix::test]
    async fn messages_pass_in_order_and_the_depth_counts_what_waits() {
        let depth = IntGauge::new("d", "d").expect("gauge");
        let seen = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
        let sink = Sink(seen.clone(), depth.clone()).start();
        let inbox = Counted::new(sink.recipient(), depth.clone()).start();
        for n in 0..5 {
            inbox.do_send(Ping(n));
        }
        for _ in 0..100 {
            if seen.lock().expect("lock").len() == 5 {
                break;
            }
            tokio::time::sleep(std::time::Duration::from_millis(5)).await;
        }
        let seen = seen.lock().expect("lock").clone();
        assert_eq!(
            seen.iter().map(|(n, _)| *n).collect::<Vec<_>>(),
            vec![0, 1, 2, 3, 4]
        );
        assert!(
            seen[0].1 >= 1,
            "the first message was counted while it waited: {seen:?}"
        );
        assert_eq!(depth.get(), 0, "all handled");
    }
}
