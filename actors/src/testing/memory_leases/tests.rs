use futures::StreamExt;

use super::*;
use crate::ports::{ApiError, LeaseApi};

fn held_by(h: &str, renew_second: i64) -> LeaseRecord {
    LeaseRecord {
        holder_identity: Some(h.into()),
        lease_duration_seconds: Some(15),
        renew_time: Some(jiff::Timestamp::from_second(1_700_000_000 + renew_second).expect("ts")),
        ..LeaseRecord::default()
    }
}

#[tokio::test(start_paused = true)]
async fn writes_are_version_checked_and_watched_in_order() {
    let store = MemoryLeases::new();
    let a = store.client("a");
    let b = store.client("b");
    let mut watch = b.watch();
    assert_eq!(a.get().await.expect("get"), None);
    let created = a.create(held_by("a", 0)).await.expect("create");
    assert!(matches!(
        b.create(held_by("b", 0)).await,
        Err(ApiError::Conflict(_))
    ));
    let rv = created.resource_version.clone().expect("rv");
    let renewed = a.replace(rv.clone(), held_by("a", 1)).await.expect("renew");
    assert!(matches!(
        b.replace(rv, held_by("b", 1)).await,
        Err(ApiError::Conflict(_))
    ));
    // Unchanged: the version stays.
    let same = a
        .replace(renewed.resource_version.clone().expect("rv"), held_by("a", 1))
        .await
        .expect("no-op");
    assert_eq!(same.resource_version, renewed.resource_version);
    assert_eq!(watch.next().await.expect("item").expect("ok"), Some(created));
    assert_eq!(watch.next().await.expect("item").expect("ok"), Some(renewed));
    assert_eq!(store.history().len(), 2);
}

#[tokio::test(start_paused = true)]
async fn scripted_faults_apply_to_one_client() {
    let store = MemoryLeases::new();
    let a = store.client("a");
    let b = store.client("b");
    a.conflict_next_writes(2);
    assert!(matches!(
        a.create(held_by("a", 0)).await,
        Err(ApiError::Conflict(_))
    ));
    assert!(matches!(
        a.create(held_by("a", 0)).await,
        Err(ApiError::Conflict(_))
    ));
    assert!(store.current().is_none(), "a conflicting write changes nothing");
    a.create(held_by("a", 0)).await.expect("storm over");

    a.set_outage(Outage::TimeoutAfter(Duration::from_secs(3)));
    let started = Instant::now();
    assert!(matches!(a.get().await, Err(ApiError::Timeout { .. })));
    assert_eq!(started.elapsed(), Duration::from_secs(3));
    assert!(b.get().await.expect("b unaffected").is_some());

    a.set_outage(Outage::Hang);
    let hung = tokio::time::timeout(Duration::from_secs(60), a.get()).await;
    assert!(hung.is_err(), "never answers");
    a.set_outage(Outage::ServerError);
    assert!(matches!(a.get().await, Err(ApiError::Server { code: 500, .. })));
}

#[tokio::test(start_paused = true)]
async fn watches_start_with_the_current_lease_and_can_be_broken() {
    let store = MemoryLeases::with_record(held_by("x", 0));
    let a = store.client("a");
    let b = store.client("b");
    let mut wa = a.watch();
    let mut wb = b.watch();
    assert!(wa.next().await.expect("initial").expect("ok").is_some());
    assert!(wb.next().await.expect("initial").expect("ok").is_some());
    a.break_watches();
    assert!(wa.next().await.expect("error item").is_err());
    assert!(wa.next().await.is_none(), "ends after the error");
    store.write_foreign(held_by("y", 5));
    let seen = wb
        .next()
        .await
        .expect("b still watching")
        .expect("ok")
        .expect("lease");
    assert_eq!(seen.record.holder(), Some("y"));
    b.end_watches();
    assert!(wb.next().await.is_none());
    assert_eq!(
        store
            .holder_changes()
            .into_iter()
            .map(|(_, h)| h)
            .collect::<Vec<_>>(),
        vec![Some("y".to_string())]
    );
}
