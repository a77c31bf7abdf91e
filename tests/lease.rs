//! The single-writer lease: against the scripted fake (races, expiry,
//! release) and against the real daemon (a config's labels with version
//! index concurrency). Time is a [`ManualClock`] in both, so expiry needs no
//! waiting.

use std::sync::Arc;
use std::time::Duration;

use bosun::controller::lease::{
    LABEL_EXPIRES, LABEL_HOLDER, LABEL_MANAGED_BY, Lease, LeaseConfig, ManualClock,
};
use bosun::swarm::{self, Api, Client, Fake, Filters, Kind, Method};
use serde_json::Value;

const T0: u64 = 1_700_000_000_000;
const DURATION: Duration = Duration::from_secs(15);

fn contenders<A: Api>(
    api: &Arc<A>,
    name: &str,
    clock: &ManualClock,
) -> (Lease<A, ManualClock>, Lease<A, ManualClock>) {
    let config = |holder: &str| LeaseConfig::new(holder).name(name).duration(DURATION);
    (
        Lease::with_clock(Arc::clone(api), config("bosun-a"), clock.clone()),
        Lease::with_clock(Arc::clone(api), config("bosun-b"), clock.clone()),
    )
}

fn label(api: &Fake, name: &str, key: &str) -> Option<String> {
    api.get(Kind::Config, name)?
        .pointer(&format!("/Spec/Labels/{}", key.replace('/', "~1")))?
        .as_str()
        .map(str::to_string)
}

#[tokio::test]
async fn lease_is_held_by_only_one_of_two_contenders() {
    let api = Arc::new(Fake::single_node());
    let clock = ManualClock::new(T0);
    let (mut a, mut b) = contenders(&api, "bosun-lease", &clock);
    assert!(a.try_acquire().await.expect("a"), "the first one wins");
    assert!(!b.try_acquire().await.expect("b"), "the second one waits");
    assert!(a.held() && !b.held());
    assert_eq!(a.holder().as_deref(), Some("bosun-a"));
    assert_eq!(
        b.holder().as_deref(),
        Some("bosun-a"),
        "b sees who holds it"
    );
    assert_eq!(
        label(&api, "bosun-lease", LABEL_HOLDER).as_deref(),
        Some("bosun-a")
    );
    assert_eq!(
        label(&api, "bosun-lease", LABEL_MANAGED_BY).as_deref(),
        Some("bosun")
    );
    assert_eq!(
        label(&api, "bosun-lease", LABEL_EXPIRES),
        Some((T0 + 15_000).to_string())
    );
    assert!(
        a.try_acquire().await.expect("a again"),
        "acquiring what one holds is a renewal"
    );
}

#[tokio::test]
async fn lease_renewal_keeps_it_past_the_first_expiry() {
    let api = Arc::new(Fake::single_node());
    let clock = ManualClock::new(T0);
    let (mut a, mut b) = contenders(&api, "bosun-lease", &clock);
    assert!(a.try_acquire().await.expect("a"));
    for _ in 0..6 {
        clock.advance(Duration::from_secs(5));
        assert!(a.renew().await.expect("renew"), "renewal keeps it");
        assert!(!b.try_acquire().await.expect("b"), "b never gets it");
    }
    assert!(a.held());
    assert_eq!(
        label(&api, "bosun-lease", LABEL_EXPIRES),
        Some((T0 + 30_000 + 15_000).to_string())
    );
    assert!(
        !b.renew().await.expect("b renew"),
        "b cannot renew a lease it lacks"
    );
}

#[tokio::test]
async fn lease_expires_when_not_renewed_and_the_other_takes_over() {
    let api = Arc::new(Fake::single_node());
    let clock = ManualClock::new(T0);
    let (mut a, mut b) = contenders(&api, "bosun-lease", &clock);
    assert!(a.try_acquire().await.expect("a"));
    clock.advance(Duration::from_secs(14));
    assert!(!b.try_acquire().await.expect("b early"), "not expired yet");
    assert!(a.held());
    clock.advance(Duration::from_secs(1));
    assert!(!a.held(), "the holder stops believing in it at expiry");
    assert_eq!(a.holder(), None, "nobody holds an expired lease");
    assert!(
        b.try_acquire().await.expect("b"),
        "b takes the expired lease"
    );
    assert_eq!(b.holder().as_deref(), Some("bosun-b"));
    assert!(!a.renew().await.expect("a renew"), "a learns it lost");
    assert!(!a.held());
    assert_eq!(a.holder().as_deref(), Some("bosun-b"));
}

#[tokio::test]
async fn lease_race_is_won_by_the_first_write_at_a_version() {
    let api = Arc::new(Fake::single_node());
    let clock = ManualClock::new(T0);
    let (mut a, mut b) = contenders(&api, "bosun-lease", &clock);
    assert!(a.try_acquire().await.expect("a"));
    a.release().await.expect("release");
    // b read the free lease, but a wrote first: b's write is out of sequence.
    api.fail(
        Method::Update,
        Some(Kind::Config),
        1,
        swarm::fake::out_of_sequence(),
    );
    assert!(!b.try_acquire().await.expect("b loses the race"));
    assert!(!b.held());
    assert_eq!(
        label(&api, "bosun-lease", LABEL_HOLDER).as_deref(),
        Some(""),
        "the failed write changed nothing"
    );
    assert!(b.try_acquire().await.expect("b retries"));
}

#[tokio::test]
async fn lease_acquired_concurrently_is_won_by_exactly_one() {
    let api = Arc::new(Fake::single_node());
    let clock = ManualClock::new(T0);
    let (mut a, mut b) = contenders(&api, "bosun-lease", &clock);
    let (ra, rb) = futures::join!(a.try_acquire(), b.try_acquire());
    let (ra, rb) = (ra.expect("a"), rb.expect("b"));
    assert!(ra ^ rb, "exactly one wins: a={ra} b={rb}");
    let holder = label(&api, "bosun-lease", LABEL_HOLDER).expect("holder");
    assert_eq!(holder, if ra { "bosun-a" } else { "bosun-b" });
}

#[tokio::test]
async fn lease_created_by_another_between_read_and_create_is_not_taken() {
    let api = Arc::new(Fake::single_node());
    let clock = ManualClock::new(T0);
    let (mut a, mut b) = contenders(&api, "bosun-lease", &clock);
    // a found no lease, but by the time it creates one, a config of that
    // name exists: the daemon answers 409.
    api.fail(
        Method::Create,
        Some(Kind::Config),
        1,
        swarm::fake::response(
            "POST",
            "/configs/create",
            409,
            "rpc error: code = AlreadyExists desc = config bosun-lease already exists",
        ),
    );
    assert!(!a.try_acquire().await.expect("a loses"));
    assert!(!a.held());
    assert!(b.try_acquire().await.expect("b"));
}

#[tokio::test]
async fn lease_release_lets_the_other_acquire_at_once() {
    let api = Arc::new(Fake::single_node());
    let clock = ManualClock::new(T0);
    let (mut a, mut b) = contenders(&api, "bosun-lease", &clock);
    assert!(a.try_acquire().await.expect("a"));
    assert!(!b.try_acquire().await.expect("b"));
    a.release().await.expect("release");
    assert!(!a.held());
    assert!(
        b.try_acquire().await.expect("b"),
        "no waiting for the expiry"
    );
    // Releasing a lease someone else holds changes nothing.
    let writes = api.writes();
    a.release().await.expect("release again");
    assert_eq!(api.writes(), writes);
    assert!(b.held());
}

#[tokio::test]
async fn lease_errors_name_the_lease_and_the_api_failure() {
    let api = Arc::new(Fake::single_node());
    let clock = ManualClock::new(T0);
    let (mut a, _) = contenders(&api, "bosun-lease", &clock);
    api.fail(
        Method::List,
        Some(Kind::Config),
        1,
        swarm::fake::no_leader(),
    );
    let err = a.try_acquire().await.expect_err("no leader");
    // The message names the lease; the API failure is its cause, once.
    let text = bosun::error::chain(&err);
    assert!(
        text.contains("bosun-lease") && text.matches("does not have a leader").count() == 1,
        "{text}"
    );
    assert!(!a.held());
}

// ------------------------------------------------------------ real daemon

/// Remove the lease's config, whatever the test did.
async fn remove_config(client: &Client, name: &str) {
    if let Ok(found) = client
        .list(Kind::Config, &Filters::none().with("name", name))
        .await
    {
        for c in found {
            if c.pointer("/Spec/Name").and_then(Value::as_str) == Some(name)
                && let Some(id) = c.get("ID").and_then(Value::as_str)
            {
                let _ = client.remove(Kind::Config, id).await;
            }
        }
    }
}

#[tokio::test]
async fn lease_on_a_real_swarm_is_held_by_one_then_taken_over_then_released() {
    let client = Arc::new(Client::connect().await.unwrap_or_else(|e| {
        panic!("this test needs a Docker daemon in swarm mode (DOCKER_HOST): {e}")
    }));
    let name = format!("bosun-lease-test-{}", std::process::id());
    remove_config(&client, &name).await;
    let clock = ManualClock::new(T0);
    let (mut a, mut b) = contenders(&client, &name, &clock);
    let outcome = async {
        assert!(a.try_acquire().await.expect("a acquires"));
        assert!(!b.try_acquire().await.expect("b waits"));
        clock.advance(Duration::from_secs(5));
        assert!(a.renew().await.expect("a renews"));
        assert!(!b.try_acquire().await.expect("b still waits"));
        assert_eq!(b.holder().as_deref(), Some("bosun-a"));

        // a stops renewing; once the lease expires, b takes over.
        clock.advance(DURATION);
        assert!(!a.held());
        assert!(b.try_acquire().await.expect("b takes over"));
        assert!(!a.renew().await.expect("a learns"));
        assert_eq!(a.holder().as_deref(), Some("bosun-b"));

        // Both race from the same read: the daemon's version check decides.
        b.release().await.expect("b releases");
        let (ra, rb) = futures::join!(a.try_acquire(), b.try_acquire());
        let (ra, rb) = (ra.expect("a"), rb.expect("b"));
        assert!(ra ^ rb, "exactly one wins: a={ra} b={rb}");

        // Release lets the other acquire at once.
        let (winner, loser) = if ra {
            (&mut a, &mut b)
        } else {
            (&mut b, &mut a)
        };
        winner.release().await.expect("release");
        assert!(loser.try_acquire().await.expect("acquire after release"));

        let config = client
            .inspect(Kind::Config, &name)
            .await
            .expect("inspect the lease");
        assert_eq!(
            config
                .pointer("/Spec/Labels")
                .and_then(|l| l.get(LABEL_MANAGED_BY)),
            Some(&Value::from("bosun"))
        );
    };
    let outcome = futures::FutureExt::catch_unwind(std::panic::AssertUnwindSafe(outcome)).await;
    remove_config(&client, &name).await;
    if let Err(panic) = outcome {
        std::panic::resume_unwind(panic);
    }
}
