//! The Docker client against a real daemon (a single-node swarm on
//! `DOCKER_HOST`, default `/var/run/docker.sock`; CI starts one).
//!
//! Other tests share the daemon: every object here is named after its test
//! and the process id, labelled `dev.bosun.test`, and removed at the end,
//! even when the test fails. Nothing else is touched (the node label test
//! adds and then removes one key of its own).

use std::future::Future;
use std::panic::AssertUnwindSafe;
use std::sync::Mutex;
use std::time::Duration;

use bosun::swarm::settle::{self, Check, Schedule};
use bosun::swarm::{self, Api, Client, Filters, Kind, retry};
use futures::{FutureExt, StreamExt};
use serde_json::{Value, json};

const TEST_LABEL: &str = "dev.bosun.test";

/// A test's private corner of the daemon: a name prefix and the objects to
/// remove at the end.
struct Scratch {
    client: Client,
    prefix: String,
    made: Mutex<Vec<(Kind, String)>>,
}

impl Scratch {
    fn name(&self, suffix: &str) -> String {
        format!("{}-{suffix}", self.prefix)
    }

    fn labels(&self) -> Value {
        json!({ TEST_LABEL: self.prefix })
    }

    async fn create(&self, kind: Kind, body: &Value) -> String {
        let id = self
            .client
            .create(kind, body)
            .await
            .unwrap_or_else(|e| panic!("create {kind}: {e}"));
        self.made
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .push((kind, id.clone()));
        id
    }

    fn service(&self, suffix: &str) -> Value {
        json!({
            "Name": self.name(suffix),
            "Labels": self.labels(),
            "TaskTemplate": {"ContainerSpec": {"Image": "busybox:latest", "Args": ["sleep", "1d"]}},
            "Mode": {"Replicated": {"Replicas": 0}}
        })
    }
}

/// Run `body` with a fresh scratch, then remove what it created.
async fn with_scratch<F, Fut>(test: &str, body: F)
where
    F: FnOnce(&'static Scratch) -> Fut,
    Fut: Future<Output = ()>,
{
    let client = Client::connect().await.unwrap_or_else(|e| {
        panic!("these tests need a Docker daemon in swarm mode (DOCKER_HOST): {e}")
    });
    let scratch: &'static Scratch = Box::leak(Box::new(Scratch {
        client,
        prefix: format!("bosun-{test}-{}", std::process::id()),
        made: Mutex::new(Vec::new()),
    }));
    let outcome = AssertUnwindSafe(body(scratch)).catch_unwind().await;
    let made = std::mem::take(
        &mut *scratch
            .made
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner),
    );
    // Services first: they hold networks, configs and secrets.
    for (kind, id) in made.iter().rev().filter(|(k, _)| *k == Kind::Service) {
        let _ = scratch.client.remove(*kind, id).await;
    }
    // Their tasks shut down after the removal answered: what they used is
    // "in use" until then.
    for (kind, id) in made.iter().rev().filter(|(k, _)| *k != Kind::Service) {
        let schedule = Schedule::new(Duration::from_secs(60), Duration::from_millis(250));
        let removed = settle::until(format!("{kind} {id} to be removed"), schedule, || async {
            match scratch.client.remove(*kind, id).await {
                Err(e) if e.message().contains("in use") => Check::Pending(e.message().to_string()),
                _ => Check::Done(()),
            }
        })
        .await;
        if let Err(e) = removed {
            eprintln!("clean-up: {e}");
        }
    }
    if let Err(panic) = outcome {
        std::panic::resume_unwind(panic);
    }
}

fn version(v: &Value) -> u64 {
    v.pointer("/Version/Index")
        .and_then(Value::as_u64)
        .unwrap_or_default()
}

#[tokio::test]
async fn client_negotiates_the_daemons_version_and_sends_versioned_paths() {
    with_scratch("version", |s| async move {
        let c = &s.client;
        assert_eq!(c.api_version(), "1.41", "dockerd 20.10 speaks API 1.41");
        let before = c.requests();
        let err = c.inspect(Kind::Service, &s.name("missing")).await.err();
        let err = err.unwrap_or_else(|| panic!("a missing service was found"));
        match &err {
            swarm::Error::ResponseFailed {
                method,
                path,
                status,
                message,
            } => {
                assert_eq!(method, "GET");
                assert_eq!(path, &format!("/v1.41/services/{}", s.name("missing")));
                assert_eq!(*status, 404);
                assert!(message.contains("not found"), "{message}");
            }
            other => panic!("unexpected error {other}"),
        }
        assert!(err.is_not_found());
        assert!(!err.is_transient());
        let delta = c.requests().since(&before);
        assert_eq!(
            delta.0.keys().collect::<Vec<_>>(),
            [&("GET".to_string(), "/services/{id}".to_string(), 404)]
        );
    })
    .await;
}

#[tokio::test]
async fn services_round_trip_with_healthcheck_and_optimistic_concurrency() {
    with_scratch("services", |s| async move {
        let c = &s.client;
        let mut body = s.service("web");
        body["TaskTemplate"]["ContainerSpec"]["Healthcheck"] = json!({
            "Test": ["CMD-SHELL", "wget -q -O- http://127.0.0.1/ || exit 1"],
            "Interval": 5_000_000_000_u64, "Timeout": 2_000_000_000_u64, "Retries": 3,
            "StartPeriod": 10_000_000_000_u64
        });
        body["TaskTemplate"]["ContainerSpec"]["CapabilityAdd"] = json!(["CAP_NET_ADMIN"]);
        let id = s.create(Kind::Service, &body).await;

        let got = c.inspect(Kind::Service, &id).await.unwrap_or_default();
        let cs = got
            .pointer("/Spec/TaskTemplate/ContainerSpec")
            .unwrap_or(&Value::Null);
        assert_eq!(
            cs.get("Healthcheck"),
            body.pointer("/TaskTemplate/ContainerSpec/Healthcheck"),
            "the daemon returns `Healthcheck`, intact: {got}"
        );
        assert!(cs.get("HealthCheck").is_none());
        assert_eq!(
            cs.get("CapabilityAdd"),
            Some(&json!(["CAP_NET_ADMIN"])),
            "API 1.41 keeps CapabilityAdd"
        );

        let mine = Filters::none().with("label", &format!("{TEST_LABEL}={}", s.prefix));
        let listed = c.list(Kind::Service, &mine).await.unwrap_or_default();
        assert_eq!(listed.len(), 1);
        assert_eq!(listed[0]["ID"], json!(id));

        // Update at the version we read; the version moves on.
        let v1 = version(&got);
        let mut spec = got["Spec"].clone();
        spec["Labels"]["changed"] = json!("yes");
        assert!(c.update(Kind::Service, &id, v1, &spec).await.is_ok());
        let after = c.inspect(Kind::Service, &id).await.unwrap_or_default();
        assert!(version(&after) > v1);
        assert_eq!(after.pointer("/Spec/Labels/changed"), Some(&json!("yes")));
        assert!(
            after
                .pointer("/Spec/TaskTemplate/ContainerSpec/Healthcheck/Test")
                .is_some(),
            "a read-modify-write keeps the health check"
        );

        // A stale version is refused.
        let err = c.update(Kind::Service, &id, v1, &spec).await.err();
        let err = err.unwrap_or_else(|| panic!("a stale update succeeded"));
        assert!(err.is_out_of_sequence(), "{err}");
        assert_eq!(err.status(), Some(500));

        // A duplicate name conflicts.
        let err = c.create(Kind::Service, &body).await.err();
        assert_eq!(err.and_then(|e| e.status()), Some(409));

        assert!(c.remove(Kind::Service, &id).await.is_ok());
        let err = c.inspect(Kind::Service, &id).await.err();
        assert!(err.is_some_and(|e| e.is_not_found()));
        let err = c.remove(Kind::Service, &id).await.err();
        assert!(err.is_some_and(|e| e.is_not_found()));
    })
    .await;
}

#[tokio::test]
async fn networks_round_trip_and_refuse_duplicates() {
    with_scratch("networks", |s| async move {
        let c = &s.client;
        let body = json!({
            "Name": s.name("net"), "Driver": "overlay", "Attachable": true,
            "Labels": s.labels(),
            "Options": {"com.docker.network.driver.mtu": "1200"}
            // No fixed subnet: concurrent runs on one daemon would overlap.
        });
        let id = s.create(Kind::Network, &body).await;
        // Right after create, a swarm network may read back unallocated
        // (`Driver` and `Options` still empty): wait until it is complete.
        let schedule = Schedule::new(Duration::from_secs(60), Duration::from_millis(100));
        let got = settle::until(
            "the new network to read back allocated",
            schedule,
            || async {
                match c.inspect(Kind::Network, &id).await {
                    Ok(got) if got["Driver"] == json!("overlay") => Check::Done(got),
                    Ok(got) => Check::Pending(got.to_string()),
                    Err(e) => Check::Pending(e.to_string()),
                }
            },
        )
        .await
        .unwrap_or_else(|t| panic!("{t}"));
        let net = swarm::Network::from_json(&got);
        assert_eq!(net.meta.name, s.name("net"));
        assert_eq!(net.scope, "swarm");
        assert_eq!(net.driver, "overlay", "{got}");
        assert_eq!(
            got.pointer("/Options/com.docker.network.driver.mtu"),
            Some(&json!("1200"))
        );
        let mine = Filters::none().with("label", &format!("{TEST_LABEL}={}", s.prefix));
        let listed = c.list(Kind::Network, &mine).await.unwrap_or_default();
        assert_eq!(listed.len(), 1);

        let err = c.create(Kind::Network, &body).await.err();
        assert_eq!(
            err.and_then(|e| e.status()),
            Some(409),
            "the client sends CheckDuplicate"
        );
        assert!(c.remove(Kind::Network, &id).await.is_ok());
        let err = c.inspect(Kind::Network, &id).await.err();
        assert!(err.is_some_and(|e| e.is_not_found()));
    })
    .await;
}

#[tokio::test]
async fn configs_and_secrets_accept_label_updates_only() {
    with_scratch("configs", |s| async move {
        let c = &s.client;
        let body = json!({"Name": s.name("conf"), "Labels": s.labels(), "Data": "aGVsbG8="});
        let id = s.create(Kind::Config, &body).await;
        let got = c.inspect(Kind::Config, &id).await.unwrap_or_default();
        assert_eq!(got.pointer("/Spec/Data"), Some(&json!("aGVsbG8=")));

        let mut relabel = got["Spec"].clone();
        relabel["Labels"]["lease"] = json!("holder-1");
        assert!(
            c.update(Kind::Config, &id, version(&got), &relabel)
                .await
                .is_ok()
        );
        let after = c.inspect(Kind::Config, &id).await.unwrap_or_default();
        assert_eq!(
            after.pointer("/Spec/Labels/lease"),
            Some(&json!("holder-1"))
        );

        let mut new_data = after["Spec"].clone();
        new_data["Data"] = json!("Ynll");
        let err = c
            .update(Kind::Config, &id, version(&after), &new_data)
            .await
            .err();
        let err = err.unwrap_or_else(|| panic!("config data changed"));
        assert_eq!(err.status(), Some(400));
        assert!(
            err.message().contains("only updates to Labels are allowed"),
            "{err}"
        );

        let body = json!({"Name": s.name("secret"), "Labels": s.labels(), "Data": "c2VjcmV0"});
        let sid = s.create(Kind::Secret, &body).await;
        let secret = c.inspect(Kind::Secret, &sid).await.unwrap_or_default();
        assert_eq!(
            secret.pointer("/Spec/Data"),
            None,
            "secrets never read back"
        );
        let mut relabel = secret["Spec"].clone();
        relabel["Labels"]["rotated"] = json!("no");
        assert!(
            c.update(Kind::Secret, &sid, version(&secret), &relabel)
                .await
                .is_ok()
        );

        // In use by a service: cannot be removed.
        let mut svc = s.service("user");
        svc["TaskTemplate"]["ContainerSpec"]["Configs"] = json!([{
            "ConfigID": id, "ConfigName": s.name("conf"),
            "File": {"Name": "/conf", "UID": "0", "GID": "0", "Mode": 292}
        }]);
        let svc_id = s.create(Kind::Service, &svc).await;
        let err = c.remove(Kind::Config, &id).await.err();
        let err = err.unwrap_or_else(|| panic!("a config in use was removed"));
        assert_eq!(err.status(), Some(400));
        assert!(err.message().contains("in use"), "{err}");
        assert!(c.remove(Kind::Service, &svc_id).await.is_ok());
    })
    .await;
}

#[tokio::test]
async fn node_labels_update_with_the_version_index() {
    with_scratch("nodes", |s| async move {
        let c = &s.client;
        let info = swarm::Info::from_json(&c.info().await.unwrap_or_default());
        assert_eq!(info.local_node_state, "active", "the daemon is in a swarm");
        let key = s.name("label");
        let policy = retry::Policy::default();
        // Other tests may label this node concurrently: update_spec re-reads
        // on "update out of sequence".
        let added = retry::update_spec(c, &policy, Kind::Node, &info.node_id, None, |spec| {
            let mut spec = spec.clone();
            spec["Labels"][&key] = json!("a");
            Some(spec)
        })
        .await;
        assert!(matches!(added, Ok(true)), "{added:?}");
        let node = c
            .inspect(Kind::Node, &info.node_id)
            .await
            .unwrap_or_default();
        let node = swarm::Node::from_json(&node);
        assert_eq!(node.meta.labels.get(&key).map(String::as_str), Some("a"));

        // A stale version index is refused.
        let stale = node.meta.version - 1;
        let err = c
            .update(Kind::Node, &info.node_id, stale, &node.spec)
            .await
            .err();
        assert!(err.is_some_and(|e| e.is_out_of_sequence()));

        let removed = retry::update_spec(c, &policy, Kind::Node, &info.node_id, None, |spec| {
            let mut spec = spec.clone();
            spec.get_mut("Labels")
                .and_then(Value::as_object_mut)
                .and_then(|l| l.remove(&key))?;
            Some(spec)
        })
        .await;
        assert!(matches!(removed, Ok(true)), "{removed:?}");
    })
    .await;
}

#[tokio::test]
async fn observe_costs_seven_requests_whatever_the_number_of_services() {
    with_scratch("observe", |s| async move {
        let c = &s.client;
        let net = s
            .create(
                Kind::Network,
                &json!({"Name": s.name("net"), "Driver": "overlay", "Labels": s.labels()}),
            )
            .await;
        let conf = json!({"Name": s.name("conf"), "Labels": s.labels(), "Data": "eA=="});
        s.create(Kind::Config, &conf).await;
        let secret = json!({"Name": s.name("secret"), "Labels": s.labels(), "Data": "eA=="});
        s.create(Kind::Secret, &secret).await;
        let mut svc = s.service("svc0");
        svc["TaskTemplate"]["Networks"] = json!([{"Target": net}]);
        s.create(Kind::Service, &svc).await;

        let before = c.requests();
        let snap = swarm::observe(c).await;
        let snap = snap.unwrap_or_else(|e| panic!("observe: {e}"));
        let cost = c.requests().since(&before);
        assert_eq!(cost.total(), 7, "{:?}", cost.by_endpoint());
        assert_eq!(cost.writes(), 0);
        for endpoint in [
            "GET /info",
            "GET /nodes",
            "GET /networks",
            "GET /services",
            "GET /configs",
            "GET /secrets",
            "GET /tasks",
        ] {
            assert_eq!(cost.by_endpoint().get(endpoint), Some(&1), "{endpoint}");
        }
        assert!(snap.service(&s.name("svc0")).is_some());
        assert!(snap.network(&s.name("net")).is_some());
        assert!(snap.configs.iter().any(|o| o.meta.name == s.name("conf")));
        assert!(snap.secrets.iter().any(|o| o.meta.name == s.name("secret")));
        assert!(snap.node_by_hostname(&snap.nodes[0].hostname).is_some());

        for i in 1..=10 {
            s.create(Kind::Service, &s.service(&format!("svc{i}")))
                .await;
        }
        let before = c.requests();
        let snap = swarm::observe(c).await.unwrap_or_default();
        assert!(snap.service(&s.name("svc10")).is_some());
        assert_eq!(c.requests().since(&before).total(), 7);

        // Changing one of them is exactly one write.
        let before = c.requests();
        let one = snap.service(&s.name("svc7")).cloned();
        let one = one.unwrap_or_else(|| panic!("svc7 not observed"));
        let mut spec = one.spec.clone();
        spec["Labels"]["changed"] = json!("1");
        assert!(
            c.update(Kind::Service, &one.meta.id, one.meta.version, &spec)
                .await
                .is_ok()
        );
        let cost = c.requests().since(&before);
        assert_eq!((cost.writes(), cost.reads()), (1, 0));
        assert_eq!(cost.count("POST", "/services/{id}/update"), 1);
    })
    .await;
}

#[tokio::test]
async fn events_stream_delivers_a_service_create() {
    with_scratch("events", |s| async move {
        let c = &s.client;
        let name = s.name("evented");
        let filters = Filters::none()
            .with("type", "service")
            .with("service", &name);
        let events = c
            .events(&filters)
            .await
            .unwrap_or_else(|e| panic!("events: {e}"));
        let mut events = Box::pin(events);
        let id = s.create(Kind::Service, &s.service("evented")).await;
        let event = tokio::time::timeout(Duration::from_secs(10), events.next()).await;
        let event = event
            .unwrap_or_else(|_| panic!("no event within 10 s"))
            .unwrap_or_else(|| panic!("event stream ended"))
            .unwrap_or_else(|e| panic!("event stream failed: {e}"));
        assert_eq!(event["Type"], json!("service"));
        assert_eq!(event["Action"], json!("create"));
        assert_eq!(event.pointer("/Actor/ID"), Some(&json!(id)));
        assert_eq!(event.pointer("/Actor/Attributes/name"), Some(&json!(name)));
    })
    .await;
}
