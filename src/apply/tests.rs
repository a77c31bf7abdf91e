//! Apply against the scripted fake: order, IDs, retries, 409s, waits,
//! skips, concurrency.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use serde_json::{Value, json};

use super::*;
use crate::plan::{self, DesiredState};
use crate::swarm::{self, Fake, Filters, Kind, Method, fake, observe};

/// Desired state of manifests given as `(file, text)`.
fn state(files: &[(&str, &str)]) -> DesiredState {
    DesiredState::of_files(files)
}

const APP: &str = "apiVersion: bosun.dev/v1alpha1
kind: Network
metadata: {name: proxy}
spec: {attachable: true}
---
apiVersion: bosun.dev/v1alpha1
kind: Stack
metadata: {name: app}
spec:
  wait: {enabled: false}
  compose:
    services:
      web:
        image: nginx:1
        networks: [proxy]
        configs: [conf]
        secrets: [pw]
    networks:
      proxy: {external: true}
    configs:
      conf: {file: conf.txt}
    secrets:
      pw: {file: pw.txt}
";

fn app() -> DesiredState {
    state(&[
        ("app.yaml", APP),
        ("conf.txt", "hello"),
        ("pw.txt", "s3cret"),
    ])
}

fn quick() -> Options {
    Options::default().retry(
        retry::Policy::default()
            .delays(Duration::from_millis(10), Duration::from_millis(100))
            .without_jitter(),
    )
}

async fn pass(fake: &Fake, desired: &DesiredState, opts: &Options) -> Result<Report> {
    let snap = observe(fake).await.expect("observe");
    let p = plan::plan(desired, &snap, &plan::Options::default().prune(true));
    assert!(p.errors.is_empty(), "{}", p.render_text(false));
    fake.clear_calls();
    apply(fake, &p, desired, &snap, opts).await
}

/// How the action on the object `name` ended.
fn outcome_of(report: &Report, name: &str) -> Option<Outcome> {
    report
        .actions
        .iter()
        .find(|a| a.name == name)
        .map(|a| a.outcome.clone())
}

fn writes(fake: &Fake) -> Vec<String> {
    fake.calls()
        .iter()
        .filter(|c| c.method.is_write())
        .map(|c| {
            format!(
                "{:?} {}",
                c.method,
                c.kind.map(|k| k.to_string()).unwrap_or_default()
            )
        })
        .collect()
}

async fn converged(fake: &Fake, desired: &DesiredState) -> bool {
    let snap = observe(fake).await.expect("observe");
    plan::plan(desired, &snap, &plan::Options::default().prune(true)).is_empty()
}

#[tokio::test(start_paused = true)]
async fn networks_and_configs_are_created_before_services_and_pruning_comes_last() {
    let fake = Fake::single_node();
    let desired = app();
    let report = pass(&fake, &desired, &quick()).await.expect("applied");
    assert_eq!(
        writes(&fake),
        [
            "Create network",
            "Create config",
            "Create secret",
            "Create service"
        ]
    );
    assert_eq!(report.writes, 4);
    assert!(converged(&fake, &desired).await);

    // The stack and the network are deleted: service, then config and
    // secret, then the network.
    let empty = state(&[(
        "other.yaml",
        "apiVersion: bosun.dev/v1alpha1\nkind: Stack\nmetadata: {name: other}\nspec:\n  wait: {enabled: false}\n  compose: {services: {x: {image: a}}}\n",
    )]);
    pass(&fake, &empty, &quick()).await.expect("applied");
    let w = writes(&fake);
    assert_eq!(w.len(), 6, "{w:?}");
    assert_eq!(
        w[..3],
        ["Create network", "Create service", "Remove service"]
    );
    assert!(w[3..5].contains(&"Remove config".to_string()), "{w:?}");
    assert!(w[3..5].contains(&"Remove secret".to_string()), "{w:?}");
    assert_eq!(w[5], "Remove network");
    assert!(fake.get(Kind::Network, "proxy").is_none());
}

#[tokio::test(start_paused = true)]
async fn config_and_secret_ids_are_filled_in_by_name() {
    let fake = Fake::single_node();
    // The config exists already (seen in the snapshot); the secret is new.
    let desired = app();
    let conf = desired.stacks[0].objects.configs[0].clone();
    let conf_id = fake
        .create(Kind::Config, &serde_json::to_value(&conf).expect("json"))
        .await
        .expect("config");
    pass(&fake, &desired, &quick()).await.expect("applied");
    let secret_id = fake
        .get(Kind::Secret, &desired.stacks[0].objects.secrets[0].name)
        .and_then(|s| s.get("ID").and_then(Value::as_str).map(str::to_string))
        .expect("secret created");
    let svc = fake.get(Kind::Service, "app_web").expect("service");
    let cs = &svc["Spec"]["TaskTemplate"]["ContainerSpec"];
    assert_eq!(cs["Configs"][0]["ConfigID"], json!(conf_id));
    assert_eq!(cs["Secrets"][0]["SecretID"], json!(secret_id));
}

#[tokio::test(start_paused = true)]
async fn an_update_out_of_sequence_rereads_the_version_and_retries() {
    let fake = Fake::single_node();
    pass(&fake, &app(), &quick()).await.expect("created");
    let snap = observe(&fake).await.expect("observe");
    // Someone else writes the service after our snapshot.
    let svc = fake.get(Kind::Service, "app_web").expect("service");
    let version = svc["Version"]["Index"].as_u64().unwrap_or_default();
    let mut theirs = svc["Spec"].clone();
    theirs["Mode"] = json!({"Replicated": {"Replicas": 3}});
    fake.update(Kind::Service, "app_web", version, &theirs)
        .await
        .expect("their write");
    // Our plan was made from a snapshot where only the image differs.
    let desired = state(&[
        ("app.yaml", &APP.replace("nginx:1", "nginx:2")),
        ("conf.txt", "hello"),
        ("pw.txt", "s3cret"),
    ]);
    let p = plan::plan(&desired, &snap, &plan::Options::default());
    assert_eq!(p.actions.len(), 1, "{}", p.render_text(false));
    fake.clear_calls();
    let report = apply(&fake, &p, &desired, &snap, &quick())
        .await
        .expect("applied");
    let calls: Vec<Method> = fake.calls().iter().map(|c| c.method).collect();
    assert_eq!(calls, [Method::Update, Method::Inspect, Method::Update]);
    assert_eq!(report.actions[0].attempts, 2);
    let now = fake.get(Kind::Service, "app_web").expect("service");
    assert_eq!(
        now.pointer("/Spec/TaskTemplate/ContainerSpec/Image"),
        Some(&json!("nginx:2"))
    );
}

#[tokio::test(start_paused = true)]
async fn a_transient_500_is_retried_then_succeeds() {
    let fake = Fake::single_node();
    let desired = app();
    fake.fail_times(
        Method::Create,
        Some(Kind::Service),
        1,
        2,
        fake::response("POST", "/services/create", 500, "context deadline exceeded"),
    );
    let report = pass(&fake, &desired, &quick()).await.expect("applied");
    let web = report
        .actions
        .iter()
        .find(|a| a.name == "app_web")
        .expect("web");
    assert_eq!(web.attempts, 3);
    assert!(web.outcome.is_done());
    assert!(converged(&fake, &desired).await);
}

#[tokio::test(start_paused = true)]
async fn no_leader_is_not_retried_and_skips_the_rest() {
    let fake = Fake::single_node();
    fake.fail(Method::Create, Some(Kind::Config), 1, fake::no_leader());
    let err = pass(&fake, &app(), &quick()).await.expect_err("fails");
    let report = err.report();
    assert_eq!(report.writes, 3, "network, config (once), secret");
    let web = report.actions.iter().find(|a| a.name == "app_web");
    assert!(
        web.is_some_and(|a| matches!(&a.outcome, Outcome::Skipped(w) if w.contains("no leader"))),
        "{report}"
    );
}

/// An [`Api`] whose creates succeed but whose first create response is
/// lost (a timeout after the daemon acted).
struct LosesFirstResponse<'a> {
    fake: &'a Fake,
    lost: AtomicUsize,
}

impl Api for LosesFirstResponse<'_> {
    async fn info(&self) -> swarm::Result<Value> {
        self.fake.info().await
    }
    async fn list(&self, kind: Kind, filters: &Filters) -> swarm::Result<Vec<Value>> {
        self.fake.list(kind, filters).await
    }
    async fn inspect(&self, kind: Kind, id: &str) -> swarm::Result<Value> {
        self.fake.inspect(kind, id).await
    }
    async fn create(&self, kind: Kind, body: &Value) -> swarm::Result<String> {
        let id = self.fake.create(kind, body).await?;
        if kind == Kind::Service && self.lost.fetch_add(1, Ordering::Relaxed) == 0 {
            return Err(swarm::Error::TimedOut {
                method: "POST".into(),
                path: "/services/create".into(),
                seconds: 30,
            });
        }
        Ok(id)
    }
    async fn update(&self, kind: Kind, id: &str, version: u64, body: &Value) -> swarm::Result<()> {
        self.fake.update(kind, id, version, body).await
    }
    async fn remove(&self, kind: Kind, id: &str) -> swarm::Result<()> {
        self.fake.remove(kind, id).await
    }
}

#[tokio::test(start_paused = true)]
async fn a_409_after_a_lost_response_is_done_for_our_own_object() {
    let fake = Fake::single_node();
    let desired = app();
    let snap = observe(&fake).await.expect("observe");
    let p = plan::plan(&desired, &snap, &plan::Options::default());
    let api = LosesFirstResponse {
        fake: &fake,
        lost: AtomicUsize::new(0),
    };
    let report = apply(&api, &p, &desired, &snap, &quick())
        .await
        .expect("applied");
    let web = report
        .actions
        .iter()
        .find(|a| a.name == "app_web")
        .expect("web");
    assert_eq!(web.outcome, Outcome::Done { adopted: true });
    assert_eq!(web.attempts, 2);
    assert!(converged(&fake, &desired).await);
}

#[tokio::test(start_paused = true)]
async fn a_409_for_an_object_bosun_does_not_own_is_an_error() {
    let fake = Fake::single_node();
    let desired = app();
    let snap = observe(&fake).await.expect("observe");
    let p = plan::plan(&desired, &snap, &plan::Options::default());
    // Someone creates `app_web` by hand between our snapshot and the create.
    fake.create(
        Kind::Service,
        &json!({"Name": "app_web", "Labels": {"dev.bosun.owner": "Stack/app"}}),
    )
    .await
    .expect("theirs");
    let err = apply(&fake, &p, &desired, &snap, &quick())
        .await
        .expect_err("conflict");
    let failures = err.report().failures();
    assert_eq!(failures.len(), 1, "{failures:?}");
    assert!(
        failures[0].starts_with("create service app_web: HTTP 409:")
            && failures[0].contains("not managed by bosun"),
        "{failures:?}"
    );
}

const CHAIN: &str = "apiVersion: bosun.dev/v1alpha1
kind: Stack
metadata: {name: db}
spec:
  wait: {enabled: true, timeout: 30s}
  compose: {services: {pg: {image: postgres:16}}}
---
apiVersion: bosun.dev/v1alpha1
kind: Stack
metadata: {name: api}
spec:
  dependsOn: [Stack/db]
  wait: {enabled: false}
  compose: {services: {srv: {image: api:1}}}
---
apiVersion: bosun.dev/v1alpha1
kind: Stack
metadata: {name: solo}
spec:
  wait: {enabled: false}
  compose: {services: {x: {image: solo:1}}}
";

/// Play the orchestrator: every second, give each service without tasks
/// `running` tasks (as many as its replicas) in state `state`.
async fn orchestrate(fake: &Fake, state: &str, rounds: usize) {
    for _ in 0..rounds {
        tokio::time::sleep(Duration::from_millis(500)).await;
        let services = fake
            .list(Kind::Service, &Filters::none())
            .await
            .unwrap_or_default();
        let tasks = fake
            .list(Kind::Task, &Filters::none())
            .await
            .unwrap_or_default();
        for s in services {
            let id = s["ID"].as_str().unwrap_or_default().to_string();
            if tasks.iter().any(|t| t["ServiceID"] == json!(id)) {
                continue;
            }
            let n = s
                .pointer("/Spec/Mode/Replicated/Replicas")
                .and_then(Value::as_u64)
                .unwrap_or(1);
            for slot in 1..=n {
                fake.seed(
                    Kind::Task,
                    json!({"ServiceID": id, "Slot": slot, "DesiredState": "running",
                           "Status": {"State": state, "Message": state,
                                      "Err": if state == "running" { "" } else { "No such image: postgres:16" },
                                      "Timestamp": "2024-01-01T00:00:00Z"}}),
                );
            }
        }
    }
}

#[tokio::test(start_paused = true)]
async fn wait_succeeds_once_every_task_runs() {
    let fake = Fake::single_node();
    let desired = state(&[("s.yaml", CHAIN)]);
    let opts = quick();
    let (res, ()) = tokio::join!(
        pass(&fake, &desired, &opts),
        orchestrate(&fake, "running", 10)
    );
    let report = res.expect("applied");
    assert_eq!(report.waits.len(), 1);
    assert_eq!(report.waits[0].stack, "db");
    assert!(report.waits[0].outcome.is_done());
}

#[tokio::test(start_paused = true)]
async fn a_timed_out_wait_names_the_service_and_skips_dependents_only() {
    let fake = Fake::single_node();
    let desired = state(&[("s.yaml", CHAIN)]);
    let opts = quick();
    let (res, ()) = tokio::join!(
        pass(&fake, &desired, &opts),
        orchestrate(&fake, "rejected", 10)
    );
    let err = res.expect_err("db never converges");
    let report = err.report();
    let failures = report.failures();
    assert_eq!(failures.len(), 1, "{failures:?}");
    assert!(
        failures[0]
            .contains("db_pg: 0/1 tasks running; last task error: \"No such image: postgres:16\""),
        "{failures:?}"
    );
    let outcome = |name: &str| outcome_of(report, name);
    assert!(
        matches!(outcome("api_srv"), Some(Outcome::Skipped(w)) if w.contains("Stack/db")),
        "{report}"
    );
    assert_eq!(outcome("solo_x"), Some(Outcome::Done { adopted: false }));
    assert!(fake.get(Kind::Service, "api_srv").is_none());
}

#[tokio::test(start_paused = true)]
async fn a_rollback_fails_the_wait_with_the_daemons_message() {
    let fake = Fake::single_node();
    let desired = state(&[("s.yaml", CHAIN)]);
    let rollback = async {
        tokio::time::sleep(Duration::from_secs(2)).await;
        fake.set_field(
            Kind::Service,
            "db_pg",
            "UpdateStatus",
            json!({"State": "rollback_completed", "Message": "rollback completed: update failed: task unhealthy"}),
        );
    };
    let opts = quick();
    let (res, ()) = tokio::join!(pass(&fake, &desired, &opts), rollback);
    let failures = res.expect_err("rolled back").report().failures();
    assert!(
        failures[0].contains("db_pg: update failed and swarm rolled it back (rollback_completed): rollback completed: update failed: task unhealthy"),
        "{failures:?}"
    );
}

#[tokio::test(start_paused = true)]
async fn no_wait_overrides_the_stacks_wait() {
    let fake = Fake::single_node();
    let desired = state(&[("s.yaml", CHAIN)]);
    let report = pass(&fake, &desired, &quick().wait(false))
        .await
        .expect("applied without waiting");
    assert!(report.waits.is_empty());
}

#[tokio::test(start_paused = true)]
async fn a_failed_network_skips_the_services_using_it() {
    let fake = Fake::single_node();
    fake.fail(
        Method::Create,
        Some(Kind::Network),
        1,
        fake::response("POST", "/networks/create", 400, "invalid subnet"),
    );
    let err = pass(&fake, &app(), &quick()).await.expect_err("fails");
    let report = err.report();
    assert_eq!(
        report.failures(),
        ["create network proxy: HTTP 400: invalid subnet"]
    );
    assert!(
        report
            .skipped()
            .iter()
            .any(|s| s.starts_with("CreateService app_web: `proxy`"))
    );
}

/// An [`Api`] whose creates take one second, recording how many run at once.
struct Slow<'a> {
    fake: &'a Fake,
    now: AtomicUsize,
    max: AtomicUsize,
}

impl Api for Slow<'_> {
    async fn info(&self) -> swarm::Result<Value> {
        self.fake.info().await
    }
    async fn list(&self, kind: Kind, filters: &Filters) -> swarm::Result<Vec<Value>> {
        self.fake.list(kind, filters).await
    }
    async fn inspect(&self, kind: Kind, id: &str) -> swarm::Result<Value> {
        self.fake.inspect(kind, id).await
    }
    async fn create(&self, kind: Kind, body: &Value) -> swarm::Result<String> {
        let n = self.now.fetch_add(1, Ordering::SeqCst) + 1;
        self.max.fetch_max(n, Ordering::SeqCst);
        tokio::time::sleep(Duration::from_secs(1)).await;
        self.now.fetch_sub(1, Ordering::SeqCst);
        self.fake.create(kind, body).await
    }
    async fn update(&self, kind: Kind, id: &str, version: u64, body: &Value) -> swarm::Result<()> {
        self.fake.update(kind, id, version, body).await
    }
    async fn remove(&self, kind: Kind, id: &str) -> swarm::Result<()> {
        self.fake.remove(kind, id).await
    }
}

#[tokio::test(start_paused = true)]
async fn concurrency_is_bounded() {
    let fake = Fake::single_node();
    let services = (0..10)
        .map(|i| format!("      s{i}: {{image: a}}"))
        .collect::<Vec<_>>()
        .join("\n");
    let desired = state(&[(
        "s.yaml",
        &format!(
            "apiVersion: bosun.dev/v1alpha1\nkind: Stack\nmetadata: {{name: many}}\nspec:\n  wait: {{enabled: false}}\n  compose:\n    networks: {{default: {{external: true, name: ingress}}}}\n    services:\n{services}"
        ),
    )]);
    let snap = observe(&fake).await.expect("observe");
    let p = plan::plan(&desired, &snap, &plan::Options::default());
    assert_eq!(p.actions.len(), 10, "{}", p.render_text(false));
    let api = Slow {
        fake: &fake,
        now: AtomicUsize::new(0),
        max: AtomicUsize::new(0),
    };
    let start = tokio::time::Instant::now();
    apply(&api, &p, &desired, &snap, &quick().concurrency(3))
        .await
        .expect("applied");
    assert_eq!(api.max.load(Ordering::SeqCst), 3);
    assert_eq!(start.elapsed().as_secs(), 4, "10 creates, 3 at a time");
}

fn many_services(n: usize) -> DesiredState {
    let services = (0..n)
        .map(|i| format!("      s{i}: {{image: a}}"))
        .collect::<Vec<_>>()
        .join("\n");
    state(&[(
        "s.yaml",
        &format!(
            "apiVersion: bosun.dev/v1alpha1\nkind: Stack\nmetadata: {{name: many}}\nspec:\n  wait: {{enabled: false}}\n  compose:\n    networks: {{default: {{external: true, name: ingress}}}}\n    services:\n{services}"
        ),
    )])
}

#[tokio::test(start_paused = true)]
async fn an_unreachable_daemon_ends_the_pass_after_one_actions_retries() {
    let fake = Fake::single_node();
    let desired = many_services(10);
    fake.fail_times(Method::Create, None, 1, 1000, fake::connect_failed());
    let start = tokio::time::Instant::now();
    let err = pass(&fake, &desired, &quick().concurrency(1))
        .await
        .expect_err("fails");
    let report = err.report();
    let creates = fake
        .calls()
        .iter()
        .filter(|c| c.method == Method::Create)
        .count();
    assert_eq!(creates, 6, "one action's attempts, nothing else");
    assert_eq!(report.writes, 0, "refused connections are no writes");
    assert_eq!(report.failures().len(), 1, "{report}");
    let skipped = report.skipped();
    assert_eq!(skipped.len(), 9, "{report}");
    assert!(
        skipped.iter().all(|s| s.contains("cannot be reached")),
        "{skipped:?}"
    );
    assert!(
        start.elapsed() < Duration::from_secs(1),
        "{:?}",
        start.elapsed()
    );
}

/// An [`Api`] whose network list keeps showing a removed network's name for
/// a few more lists (as dockerd does after `GET /networks/<id>` is 404),
/// next to an unrelated network whose name contains it.
struct Lingering<'a> {
    fake: &'a Fake,
    /// Name still listed, and how many more lists show it.
    ghost: std::sync::Mutex<Option<(String, usize)>>,
    lists: AtomicUsize,
}

impl Api for Lingering<'_> {
    async fn info(&self) -> swarm::Result<Value> {
        self.fake.info().await
    }
    async fn list(&self, kind: Kind, filters: &Filters) -> swarm::Result<Vec<Value>> {
        let mut out = self.fake.list(kind, filters).await?;
        if kind == Kind::Network {
            self.lists.fetch_add(1, Ordering::SeqCst);
            let mut ghost = self.ghost.lock().expect("lock");
            if let Some((name, left)) = ghost.as_mut()
                && *left > 0
            {
                *left -= 1;
                out.push(json!({"Id": "ghost", "Name": name, "Driver": "overlay"}));
            }
            out.push(json!({"Id": "other", "Name": "proxy-other", "Driver": "overlay"}));
        }
        Ok(out)
    }
    async fn inspect(&self, kind: Kind, id: &str) -> swarm::Result<Value> {
        self.fake.inspect(kind, id).await
    }
    async fn create(&self, kind: Kind, body: &Value) -> swarm::Result<String> {
        self.fake.create(kind, body).await
    }
    async fn update(&self, kind: Kind, id: &str, version: u64, body: &Value) -> swarm::Result<()> {
        self.fake.update(kind, id, version, body).await
    }
    async fn remove(&self, kind: Kind, id: &str) -> swarm::Result<()> {
        if kind == Kind::Network
            && let Some(name) = self
                .fake
                .get(Kind::Network, id)
                .and_then(|n| n.get("Name").and_then(Value::as_str).map(str::to_string))
        {
            *self.ghost.lock().expect("lock") = Some((name, 3));
        }
        self.fake.remove(kind, id).await
    }
}

#[tokio::test(start_paused = true)]
async fn a_removed_network_is_awaited_until_its_exact_name_leaves_the_list() {
    let fake = Fake::single_node();
    pass(&fake, &app(), &quick()).await.expect("applied");
    let empty = many_services(1);
    let snap = observe(&fake).await.expect("observe");
    let p = plan::plan(&empty, &snap, &plan::Options::default().prune(true));
    assert!(
        kinds_of(&p).contains(&"RemoveNetwork proxy".to_string()),
        "{}",
        p.render_text(false)
    );
    let api = Lingering {
        fake: &fake,
        ghost: std::sync::Mutex::new(None),
        lists: AtomicUsize::new(0),
    };
    let start = tokio::time::Instant::now();
    apply(&api, &p, &empty, &snap, &quick())
        .await
        .expect("applied");
    assert_eq!(
        api.ghost.lock().expect("lock").as_ref().map(|g| g.1),
        Some(0),
        "apply returned while the list still showed `proxy`"
    );
    assert_eq!(
        api.lists.load(Ordering::SeqCst),
        4,
        "3 with the name, 1 without"
    );
    // Checked at once, then after 5, 10 and 20 ms.
    assert!(
        start.elapsed() < Duration::from_millis(100),
        "{:?}",
        start.elapsed()
    );
}

fn kinds_of(p: &plan::Plan) -> Vec<String> {
    p.actions
        .iter()
        .map(|a| format!("{} {}", a.kind_name(), a.name()))
        .collect()
}

#[tokio::test(start_paused = true)]
async fn a_removed_services_tasks_are_awaited_before_the_network_they_hold_is_removed() {
    let fake = Fake::single_node();
    pass(&fake, &app(), &quick()).await.expect("applied");
    let service = fake.get(Kind::Service, "app_web").expect("app_web");
    let service_id = service["ID"].as_str().expect("ID").to_string();
    fake.seed(
        Kind::Task,
        json!({"ServiceID": service_id, "DesiredState": "running", "Status": {"State": "running"}}),
    );
    // The daemon deletes a removed service's task only once it has shut
    // down; until then the network answers "in use by task".
    fake.linger_tasks(4);
    let other = state(&[(
        "other.yaml",
        "apiVersion: bosun.dev/v1alpha1\nkind: Stack\nmetadata: {name: other}\nspec:\n  wait: {enabled: false}\n  compose: {services: {x: {image: a}}}\n",
    )]);
    pass(&fake, &other, &quick()).await.expect("applied");
    let calls: Vec<String> = fake.calls().iter().map(ToString::to_string).collect();
    let pos = |want: &str| calls.iter().position(|c| c.starts_with(want));
    let last_task_list = calls
        .iter()
        .rposition(|c| c.starts_with("List task"))
        .expect("the removed service's tasks were listed");
    assert!(pos("Remove service").expect("service removed") < last_task_list);
    let network_removes = calls
        .iter()
        .filter(|c| c.starts_with("Remove network"))
        .count();
    assert_eq!(network_removes, 1, "removed once, never refused: {calls:?}");
    assert!(pos("Remove network").expect("network removed") > last_task_list);
    assert!(fake.get(Kind::Network, "proxy").is_none());
}

#[tokio::test(start_paused = true)]
async fn a_network_held_past_the_removal_timeout_fails_naming_what_it_waited_for() {
    let fake = Fake::single_node();
    pass(&fake, &app(), &quick()).await.expect("applied");
    // A task of someone else's removal that never ends.
    let net = fake.get(Kind::Network, "proxy").expect("proxy");
    let svc = fake.seed(
        Kind::Service,
        json!({"Spec": {"Name": "theirs", "TaskTemplate": {"Networks": [{"Target": net["Id"]}]}}}),
    );
    fake.seed(
        Kind::Task,
        json!({"ServiceID": svc, "DesiredState": "running"}),
    );
    fake.linger_tasks(usize::MAX);
    fake.remove(Kind::Service, &svc)
        .await
        .expect("remove theirs");
    let other = many_services(1);
    let mut opts = quick();
    opts.removal_timeout = Duration::from_secs(5);
    let err = pass(&fake, &other, &opts).await.expect_err("network held");
    let failures = err.report().failures().join("\n");
    assert!(
        failures.contains("timed out after 5s waiting for network")
            && failures.contains("is in use by task"),
        "{failures}"
    );
}

#[tokio::test(start_paused = true)]
async fn detached_apply_starts_the_rollout_defers_dependents_and_goes_on_with_the_rest() {
    let fake = Fake::single_node();
    let desired = state(&[("s.yaml", CHAIN)]);
    let started = tokio::time::Instant::now();
    // No task ever runs: a waiting apply would take the whole 30 s timeout.
    let report = pass(&fake, &desired, &quick().detach())
        .await
        .expect("a deferred stack is not a failure");
    assert!(
        started.elapsed() < Duration::from_secs(1),
        "did not wait: {:?}",
        started.elapsed()
    );
    assert!(report.waits.is_empty());
    assert_eq!(report.started.len(), 1, "{:?}", report.started);
    assert_eq!(report.started[0].stack.to_string(), "Stack/db");
    assert_eq!(report.started[0].timeout, Duration::from_secs(30));
    let names: Vec<&str> = report.started[0]
        .services
        .iter()
        .map(|(n, _)| n.as_str())
        .collect();
    assert_eq!(names, ["db_pg"]);
    let outcome = |name: &str| outcome_of(&report, name);
    assert_eq!(
        outcome("api_srv"),
        Some(Outcome::Deferred(
            "waiting for Stack/db to converge".to_string()
        ))
    );
    assert_eq!(outcome("solo_x"), Some(Outcome::Done { adopted: false }));
    assert!(fake.get(Kind::Service, "api_srv").is_none());
    assert!(report.to_string().contains("1 deferred"), "{report}");
}

fn vip_policy(advert: u32) -> DesiredState {
    vip_policy_m3(advert, 50)
}

fn vip_policy_m3(advert: u32, m3: u32) -> DesiredState {
    let text = format!(
        "apiVersion: bosun.dev/v1alpha1\nkind: VipPolicy\nmetadata: {{name: front}}\nspec:\n  \
         address: 10.0.0.200/24\n  interface: eth0\n  virtualRouterId: 61\n  advertInterval: {advert}\n  \
         nodes: {{priorities: {{manager1: 200, m2: 100, m3: {m3}}}}}\n"
    );
    state(&[("vip.yaml", &text)])
}

/// A three-manager fake: `manager1` and two more.
fn three_managers() -> Fake {
    let fake = Fake::single_node();
    for (host, addr) in [("m2", "10.0.0.3"), ("m3", "10.0.0.4")] {
        fake.seed(
            Kind::Node,
            json!({"Spec": {"Role": "manager", "Availability": "active", "Labels": {}},
                   "Description": {"Hostname": host}, "Status": {"State": "ready", "Addr": addr}}),
        );
    }
    fake
}

/// Names of the services updated, in order.
fn service_updates(fake: &Fake) -> Vec<String> {
    fake.calls()
        .iter()
        .filter(|c| c.method == Method::Update && c.kind == Some(Kind::Service))
        .filter_map(|c| fake.get(Kind::Service, c.id.as_deref()?))
        .map(|s| s["Spec"]["Name"].as_str().unwrap_or_default().to_string())
        .collect()
}

#[tokio::test(start_paused = true)]
async fn a_vip_policy_rolls_one_node_at_a_time_and_the_holder_last() {
    let fake = three_managers();
    let (one, opts) = (vip_policy(1), quick().detach());
    let (res, ()) = tokio::join!(pass(&fake, &one, &opts), orchestrate(&fake, "running", 4));
    res.expect("created");
    assert!(service_updates(&fake).is_empty());
    // m2 holds the address (it says so in its logs), not manager1.
    fake.set_logs(
        "vip-front_m2",
        "2026-12-05T10:00:00.5Z (VI_front) Entering BACKUP STATE\n2026-12-05T10:00:04Z (VI_front) Entering MASTER STATE",
    );
    fake.set_logs(
        "vip-front_manager1",
        "2026-12-05T10:00:00.25Z (VI_front) Entering BACKUP STATE",
    );
    // A new interval changes every node's file: all three roll, even
    // under the controller's detached apply, each waited for.
    let report = pass(&fake, &vip_policy(2), &quick().detach())
        .await
        .expect("rolled");
    assert_eq!(
        service_updates(&fake),
        ["vip-front_m3", "vip-front_manager1", "vip-front_m2"]
    );
    let waited: Vec<&str> = report.waits.iter().map(|w| w.stack.as_str()).collect();
    assert_eq!(
        waited,
        ["vip-front_m3", "vip-front_manager1", "vip-front_m2"]
    );
    assert!(report.started.is_empty(), "{:?}", report.started);
    assert!(converged(&fake, &vip_policy(2)).await);
}

#[tokio::test(start_paused = true)]
async fn a_vip_roll_waits_for_the_other_nodes_keepalived_and_stops_at_a_node_that_fails() {
    let fake = three_managers();
    let (one, opts) = (vip_policy(1), quick());
    let (res, ()) = tokio::join!(pass(&fake, &one, &opts), orchestrate(&fake, "running", 4));
    res.expect("created");
    // Only m3's file changes, but the other nodes' keepalived does not
    // run: rolling m3 would leave the address without a backup.
    fake.clear(Kind::Task);
    let err = pass(&fake, &vip_policy_m3(1, 60), &quick())
        .await
        .expect_err("not rolled");
    assert!(service_updates(&fake).is_empty());
    let skipped = err.report().skipped().join("\n");
    assert!(
        skipped.contains("not rolled: the keepalived of another node is not running"),
        "{}",
        err.report()
    );
    // Every node runs keepalived again, but the first node rolled is
    // rolled back by swarm: the roll stops there.
    let (res, ()) = tokio::join!(pass(&fake, &one, &opts), orchestrate(&fake, "running", 2));
    res.expect("rolled back to 1");
    fake.set_field(
        Kind::Service,
        "vip-front_m2",
        "UpdateStatus",
        json!({"State": "rollback_completed", "Message": "update rolled back"}),
    );
    let err = pass(&fake, &vip_policy(2), &quick())
        .await
        .expect_err("m2 fails");
    // Name order among the nodes not holding it: m2 first.
    assert_eq!(service_updates(&fake), ["vip-front_m2"]);
    let text = err.report().to_string();
    assert!(
        matches!(outcome_of(err.report(), "vip-front_m3"), Some(Outcome::Skipped(w)) if w.contains("vip-front_m2 did not converge")),
        "{text}"
    );
}
