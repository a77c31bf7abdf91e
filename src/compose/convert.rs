//! Conversion of a loaded project to Engine API request bodies, following
//! docker/cli's `compose/convert` (`Networks`, `Secrets`, `Configs`,
//! `Services`) and the defaults `stack deploy` adds (`overlay` driver,
//! `CheckDuplicate`).

use std::collections::{BTreeMap, BTreeSet};

use super::api::{
    BindOptions, ConfigReference, ConfigSpec, CredentialSpec, DiscreteGenericResource, DnsConfig,
    Driver, Empty, EndpointSpec, FileTarget, GenericResource, HealthConfig, ImageOptions, Ipam,
    IpamConfig, Limit, Mount, NetworkAttachmentConfig, NetworkCreate, Placement,
    PlacementPreference, PortConfig, Privileges, ReplicatedJob, ReplicatedService,
    ResourceRequirements, Resources, RestartPolicy, SecretReference, SecretSpec, ServiceMode,
    ServiceSpec, SpreadOver, TaskSpec, TmpfsOptions, Ulimit, UpdateConfig, VolumeOptions,
};
use super::model::{self, FileObject, Origin, Project, Service};
use super::{Error, Issue, parse};
use crate::source::{Confinement, Escape};

/// The label docker puts on every stack object.
pub const LABEL_NAMESPACE: &str = "com.docker.stack.namespace";
/// The label holding the image as written in the compose file.
pub const LABEL_IMAGE: &str = "com.docker.stack.image";

/// Everything `docker stack deploy` would create for a project.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct StackObjects {
    /// Stack networks to create, sorted by name.
    pub networks: Vec<NetworkCreate>,
    /// Sorted by name.
    pub configs: Vec<ConfigSpec>,
    /// Sorted by name.
    pub secrets: Vec<SecretSpec>,
    /// Sorted by name.
    pub services: Vec<ServiceSpec>,
    /// Networks declared external that services use (must exist), sorted.
    pub external_networks: Vec<String>,
    /// External configs that services reference, sorted.
    pub external_configs: Vec<String>,
    /// External secrets that services reference, sorted.
    pub external_secrets: Vec<String>,
}

fn scope(ns: &str, name: &str) -> String {
    format!("{ns}_{name}")
}

fn with_stack_label(ns: &str, labels: &BTreeMap<String, String>) -> BTreeMap<String, String> {
    let mut l = labels.clone();
    l.insert(LABEL_NAMESPACE.to_string(), ns.to_string());
    l
}

struct Cx<'a> {
    ns: &'a str,
    issues: Vec<Issue>,
}

impl Cx<'_> {
    fn fail(&mut self, origin: &Origin, path: &str, message: String) {
        self.issues.push(Issue {
            file: origin.file.clone(),
            line: origin.pos.line,
            column: origin.pos.column,
            path: path.to_string(),
            message,
        });
    }
}

/// Convert a project to the request bodies `docker stack deploy <namespace>`
/// sends. Config and secret files are read here.
pub fn convert(project: &Project, namespace: &str) -> Result<StackObjects, Error> {
    let mut cx = Cx {
        ns: namespace,
        issues: Vec::new(),
    };
    let mut out = StackObjects::default();

    // Networks used by services ("default" for a service without any).
    let mut used: BTreeSet<&str> = BTreeSet::new();
    for s in &project.services {
        if s.networks.is_empty() {
            used.insert("default");
        }
        used.extend(s.networks.keys().map(String::as_str));
    }
    let mut external = BTreeSet::new();
    for name in used {
        let nw = project.networks.get(name).cloned().unwrap_or_default();
        if nw.external {
            external.insert(nw.name.clone());
            continue;
        }
        let ipam = (!nw.ipam_driver.is_empty() || !nw.ipam_subnets.is_empty()).then(|| Ipam {
            driver: nw.ipam_driver.clone(),
            options: None,
            config: (!nw.ipam_subnets.is_empty()).then(|| {
                nw.ipam_subnets
                    .iter()
                    .map(|s| IpamConfig {
                        subnet: s.clone(),
                        ..IpamConfig::default()
                    })
                    .collect()
            }),
        });
        out.networks.push(NetworkCreate {
            name: if nw.name.is_empty() {
                scope(namespace, name)
            } else {
                nw.name.clone()
            },
            check_duplicate: Some(true),
            driver: if nw.driver.is_empty() {
                "overlay".into()
            } else {
                nw.driver.clone()
            },
            ipam,
            internal: nw.internal,
            attachable: nw.attachable,
            options: nw.driver_opts.clone(),
            labels: with_stack_label(namespace, &nw.labels),
            ..NetworkCreate::default()
        });
    }
    out.networks.sort_by(|a, b| a.name.cmp(&b.name));
    out.external_networks = external.into_iter().collect();

    for (name, secret) in &project.secrets {
        if secret.external {
            continue;
        }
        let obj_name = if secret.name.is_empty() {
            scope(namespace, name)
        } else {
            secret.name.clone()
        };
        let data = if secret.driver.is_empty() {
            match read_content(secret, project.confinement.as_ref()) {
                Ok(d) => d,
                Err(e) => {
                    cx.fail(
                        &secret.origin,
                        &format!("secrets.{name}"),
                        format!("secret {name}: {e}"),
                    );
                    continue;
                }
            }
        } else {
            Vec::new()
        };
        out.secrets.push(SecretSpec {
            name: obj_name,
            labels: with_stack_label(namespace, &secret.labels),
            data,
            driver: (!secret.driver.is_empty()).then(|| Driver {
                name: secret.driver.clone(),
                options: secret.driver_opts.clone().unwrap_or_default(),
            }),
            templating: template_driver(secret),
        });
    }
    out.secrets.sort_by(|a, b| a.name.cmp(&b.name));

    for (name, config) in &project.configs {
        if config.external {
            continue;
        }
        let data = match read_content(config, project.confinement.as_ref()) {
            Ok(d) => d,
            Err(e) => {
                cx.fail(
                    &config.origin,
                    &format!("configs.{name}"),
                    format!("config {name}: {e}"),
                );
                continue;
            }
        };
        out.configs.push(ConfigSpec {
            name: if config.name.is_empty() {
                scope(namespace, name)
            } else {
                config.name.clone()
            },
            labels: with_stack_label(namespace, &config.labels),
            data,
            templating: template_driver(config),
        });
    }
    out.configs.sort_by(|a, b| a.name.cmp(&b.name));

    let mut ext_secrets = BTreeSet::new();
    let mut ext_configs = BTreeSet::new();
    for s in &project.services {
        for r in &s.secrets {
            if let Some(o) = project.secrets.get(&r.source).filter(|o| o.external) {
                ext_secrets.insert(o.name.clone());
            }
        }
        for r in &s.configs {
            if let Some(o) = project.configs.get(&r.source).filter(|o| o.external) {
                ext_configs.insert(o.name.clone());
            }
        }
        if let Some(spec) = service(&mut cx, project, s) {
            out.services.push(spec);
        }
    }
    out.services.sort_by(|a, b| a.name.cmp(&b.name));
    out.external_secrets = ext_secrets.into_iter().collect();
    out.external_configs = ext_configs.into_iter().collect();

    if cx.issues.is_empty() {
        Ok(out)
    } else {
        Err(Error { issues: cx.issues })
    }
}

fn template_driver(o: &FileObject) -> Option<Driver> {
    (!o.template_driver.is_empty()).then(|| Driver {
        name: o.template_driver.clone(),
        options: BTreeMap::new(),
    })
}

/// The content of a config or secret file; with a confinement, checked
/// again here (validation checked it at load, the file may have changed).
fn read_content(o: &FileObject, confine: Option<&Confinement>) -> Result<Vec<u8>, String> {
    let real;
    let mut path = std::path::Path::new(&o.file);
    if let Some(confine) = confine {
        real = match confine.check(path) {
            Ok(real) => real,
            Err(e @ Escape::Outside { .. }) => return Err(format!("\"{}\" {e}", o.file)),
            Err(Escape::Unresolved { source }) => {
                return Err(format!("open {}: {}", o.file, io_text(&source)));
            }
        };
        path = &real;
    }
    if path.is_dir() {
        return Err(format!("read {}: is a directory", o.file));
    }
    std::fs::read(path).map_err(|e| format!("open {}: {}", o.file, io_text(&e)))
}

fn io_text(e: &std::io::Error) -> String {
    match e.kind() {
        std::io::ErrorKind::NotFound => "no such file or directory".into(),
        std::io::ErrorKind::PermissionDenied => "permission denied".into(),
        _ => e.to_string(),
    }
}

/// `container.NetworkMode(name).IsUserDefined()` on Linux.
fn is_user_defined(target: &str) -> bool {
    !matches!(target, "default" | "bridge" | "host" | "none") && !target.starts_with("container:")
}

/// `opts.EffectiveCapAddCapDrop`.
fn effective_caps(add: &[String], drop: &[String]) -> (Vec<String>, Vec<String>) {
    let norm = |c: &String| {
        let c = c.trim().to_ascii_uppercase();
        if c == "ALL" || c == "RESET" || c.starts_with("CAP_") {
            c
        } else {
            format!("CAP_{c}")
        }
    };
    let mut adds: BTreeSet<String> = add.iter().map(norm).collect();
    let mut drops: BTreeSet<String> = drop.iter().map(norm).collect();
    if adds.contains("ALL") {
        adds = BTreeSet::from(["ALL".to_string()]);
    }
    if drops.contains("ALL") {
        drops = BTreeSet::from(["ALL".to_string()]);
    }
    let cap_drop = drops
        .iter()
        .filter(|c| !adds.contains(*c) && *c != "RESET")
        .cloned()
        .collect();
    let cap_add = adds.into_iter().filter(|c| c != "RESET").collect();
    (cap_add, cap_drop)
}

fn file_ref(
    cx: &mut Cx<'_>,
    s: &Service,
    kind: &str,
    r: &model::FileRef,
    objects: &BTreeMap<String, FileObject>,
) -> Option<(String, FileTarget)> {
    let Some(obj) = objects.get(&r.source) else {
        cx.fail(
            &s.origin,
            &format!("services.{}.{kind}s", s.name),
            format!("service {}: undefined {kind} \"{}\"", s.name, r.source),
        );
        return None;
    };
    let name = if obj.name.is_empty() {
        scope(cx.ns, &r.source)
    } else {
        obj.name.clone()
    };
    Some((
        name,
        FileTarget {
            name: if r.target.is_empty() {
                r.source.clone()
            } else {
                r.target.clone()
            },
            uid: if r.uid.is_empty() {
                "0".into()
            } else {
                r.uid.clone()
            },
            gid: if r.gid.is_empty() {
                "0".into()
            } else {
                r.gid.clone()
            },
            mode: r.mode.unwrap_or(0o444),
        },
    ))
}

fn service(cx: &mut Cx<'_>, project: &Project, s: &Service) -> Option<ServiceSpec> {
    let ns = cx.ns;
    let path = format!("services.{}", s.name);
    let before = cx.issues.len();

    // Secrets and configs, sorted by name (stable).
    let mut secrets: Vec<SecretReference> = Vec::new();
    for r in &s.secrets {
        if let Some((name, file)) = file_ref(cx, s, "secret", r, &project.secrets) {
            secrets.push(SecretReference {
                file: Some(file),
                secret_id: String::new(),
                secret_name: name,
            });
        }
    }
    secrets.sort_by(|a, b| a.secret_name.cmp(&b.secret_name));
    let mut configs: Vec<ConfigReference> = Vec::new();
    for r in &s.configs {
        if let Some((name, file)) = file_ref(cx, s, "config", r, &project.configs) {
            configs.push(ConfigReference {
                file: Some(file),
                runtime: None,
                config_id: String::new(),
                config_name: name,
            });
        }
    }
    let cred = &s.credential_spec;
    if !cred.config.is_empty() {
        match project.configs.get(&cred.config) {
            Some(obj) => configs.push(ConfigReference {
                file: None,
                runtime: Some(BTreeMap::new()),
                config_id: String::new(),
                config_name: if obj.name.is_empty() {
                    scope(ns, &cred.config)
                } else {
                    obj.name.clone()
                },
            }),
            None => cx.fail(
                &s.origin,
                &format!("{path}.credential_spec"),
                format!("service {}: undefined config \"{}\"", s.name, cred.config),
            ),
        }
    }
    configs.sort_by(|a, b| a.config_name.cmp(&b.config_name));

    let set: Vec<&str> = [
        ("Config", &cred.config),
        ("File", &cred.file),
        ("Registry", &cred.registry),
    ]
    .iter()
    .filter(|(_, v)| !v.is_empty())
    .map(|(k, _)| *k)
    .collect();
    let credential_spec = match set.len() {
        0 => None,
        1 => Some(CredentialSpec {
            config: if cred.config.is_empty() {
                String::new()
            } else {
                configs
                    .iter()
                    .find(|c| {
                        c.config_name == cred.config || c.config_name == scope(ns, &cred.config)
                    })
                    .map(|c| c.config_name.clone())
                    .unwrap_or_default()
            },
            file: cred.file.clone(),
            registry: cred.registry.clone(),
        }),
        _ => {
            let quoted: Vec<String> = set.iter().map(|k| format!("\"{k}\"")).collect();
            let msg = if quoted.len() == 2 {
                format!(
                    "invalid credential spec: cannot specify both {} and {}",
                    quoted[0], quoted[1]
                )
            } else {
                format!(
                    "invalid credential spec: cannot specify both {}, and {}",
                    quoted[..2].join(", "),
                    quoted[2]
                )
            };
            cx.fail(
                &s.origin,
                &format!("{path}.credential_spec"),
                format!("service {}: {msg}", s.name),
            );
            None
        }
    };

    // Endpoint.
    let mut ports: Vec<PortConfig> = s
        .ports
        .iter()
        .map(|p| PortConfig {
            name: String::new(),
            protocol: p.protocol.clone(),
            target_port: p.target,
            published_port: p.published,
            publish_mode: p.mode.clone(),
        })
        .collect();
    ports.sort_by_key(|p| p.published_port);
    let endpoint = EndpointSpec {
        mode: s.deploy.endpoint_mode.to_ascii_lowercase(),
        ports,
    };

    // Mode.
    let d = &s.deploy;
    let mode = match d.mode.as_str() {
        "global" | "global-job" if d.replicas.is_some() => {
            cx.fail(
                &s.origin,
                &format!("{path}.deploy.replicas"),
                format!(
                    "service {}: replicas can only be used with replicated or replicated-job mode",
                    s.name
                ),
            );
            ServiceMode::default()
        }
        "global" => ServiceMode {
            global: Some(Empty {}),
            ..ServiceMode::default()
        },
        "global-job" => ServiceMode {
            global_job: Some(Empty {}),
            ..ServiceMode::default()
        },
        "replicated-job" => ServiceMode {
            replicated_job: Some(ReplicatedJob {
                max_concurrent: d.replicas,
                total_completions: d.replicas,
            }),
            ..ServiceMode::default()
        },
        "replicated" | "" => ServiceMode {
            replicated: Some(ReplicatedService {
                replicas: d.replicas,
            }),
            ..ServiceMode::default()
        },
        other => {
            cx.fail(
                &s.origin,
                &format!("{path}.deploy.mode"),
                format!("service {}: Unknown mode: {other}", s.name),
            );
            ServiceMode::default()
        }
    };

    let mounts = mounts(cx, project, s);

    // Resources.
    let mut resources = ResourceRequirements::default();
    if let Some(l) = &d.resources.limits {
        let nano_cpus = cpus(cx, s, &l.cpus, "limits");
        resources.limits = Some(Limit {
            nano_cpus,
            memory_bytes: l.memory,
            pids: l.pids,
        });
    }
    if let Some(r) = &d.resources.reservations {
        let nano_cpus = cpus(cx, s, &r.cpus, "reservations");
        resources.reservations = Some(Resources {
            nano_cpus,
            memory_bytes: r.memory,
            generic_resources: r
                .generic_resources
                .iter()
                .map(|g| GenericResource {
                    discrete_resource_spec: g.as_ref().map(|(kind, value)| {
                        DiscreteGenericResource {
                            kind: kind.clone(),
                            value: *value,
                        }
                    }),
                })
                .collect(),
        });
    }

    let restart_policy = match &d.restart_policy {
        Some(r) => Some(RestartPolicy {
            condition: r.condition.clone(),
            delay: r.delay,
            max_attempts: r.max_attempts,
            window: r.window,
        }),
        None => restart_from_container_policy(cx, s),
    };

    let healthcheck = s.healthcheck.as_ref().and_then(|h| {
        if h.disable {
            if !h.test.is_empty() {
                cx.fail(
                    &s.origin,
                    &format!("{path}.healthcheck"),
                    format!(
                        "service {}: test and disable can't be set at the same time",
                        s.name
                    ),
                );
                return None;
            }
            return Some(HealthConfig {
                test: vec!["NONE".into()],
                ..HealthConfig::default()
            });
        }
        Some(HealthConfig {
            test: h.test.clone(),
            interval: h.interval.unwrap_or(0),
            timeout: h.timeout.unwrap_or(0),
            start_period: h.start_period.unwrap_or(0),
            start_interval: h.start_interval.unwrap_or(0),
            retries: h.retries.map_or(0, |r| r as i64),
        })
    });

    // Networks.
    let mut nets = Vec::new();
    let default_only: BTreeMap<String, Option<model::ServiceNetwork>> =
        BTreeMap::from([("default".to_string(), None)]);
    let attached = if s.networks.is_empty() {
        &default_only
    } else {
        &s.networks
    };
    for (name, cfg) in attached {
        let decl = project.networks.get(name);
        if decl.is_none() && name != "default" {
            cx.fail(
                &s.origin,
                &format!("{path}.networks"),
                format!("service {}: undefined network \"{name}\"", s.name),
            );
            continue;
        }
        let target = match decl {
            Some(n) if !n.name.is_empty() => n.name.clone(),
            _ => scope(ns, name),
        };
        let mut aliases = cfg.as_ref().map(|c| c.aliases.clone()).unwrap_or_default();
        if is_user_defined(&target) {
            aliases.push(s.name.clone());
        }
        nets.push(NetworkAttachmentConfig {
            target,
            aliases,
            driver_opts: cfg
                .as_ref()
                .map(|c| c.driver_opts.clone())
                .unwrap_or_default(),
        });
    }
    nets.sort_by(|a, b| a.target.cmp(&b.target));

    let mut env: Vec<String> = s
        .environment
        .iter()
        .map(|(k, v)| match v {
            Some(v) => format!("{k}={v}"),
            None => k.clone(),
        })
        .collect();
    env.sort();

    let (cap_add, cap_drop) = effective_caps(&s.cap_add, &s.cap_drop);
    let mut ulimits: Vec<Ulimit> = s
        .ulimits
        .iter()
        .map(|(name, u)| {
            let (soft, hard) = if u.single == 0 {
                (u.soft, u.hard)
            } else {
                (u.single, u.single)
            };
            Ulimit {
                name: name.clone(),
                hard,
                soft,
            }
        })
        .collect();
    ulimits.sort_by(|a, b| a.name.cmp(&b.name));

    let hosts = s
        .extra_hosts
        .iter()
        .filter_map(|h| h.split_once(':').map(|(host, ip)| format!("{ip} {host}")))
        .collect();

    let dns_config = (s.dns.is_some() || s.dns_search.is_some()).then(|| DnsConfig {
        nameservers: s.dns.clone().unwrap_or_default(),
        search: s.dns_search.clone().unwrap_or_default(),
        options: Vec::new(),
    });

    let mut labels = with_stack_label(ns, &d.labels);
    labels.insert(LABEL_IMAGE.to_string(), s.image.clone());

    let update = |u: &Option<model::UpdateConfig>| {
        u.as_ref().map(|u| UpdateConfig {
            parallelism: u.parallelism.unwrap_or(1),
            delay: u.delay,
            failure_action: u.failure_action.clone(),
            monitor: u.monitor,
            max_failure_ratio: u.max_failure_ratio,
            order: u.order.clone(),
        })
    };

    if cx.issues.len() > before {
        return None;
    }
    Some(ServiceSpec {
        name: scope(ns, &s.name),
        labels,
        task_template: TaskSpec {
            container_spec: Some(super::api::ContainerSpec {
                // The client adds `:latest` (ServiceCreate's imageWithTagString);
                // the image label keeps what the file says.
                image: parse::normalize_image(&s.image).unwrap_or_else(|_| s.image.clone()),
                labels: with_stack_label(ns, &s.labels),
                command: s.entrypoint.clone(),
                args: s.command.clone(),
                hostname: s.hostname.clone(),
                env,
                dir: s.working_dir.clone(),
                user: s.user.clone(),
                privileges: Some(Privileges {
                    credential_spec,
                    selinux_context: None,
                    no_new_privileges: false,
                }),
                init: s.init,
                stop_signal: s.stop_signal.clone(),
                tty: s.tty,
                open_stdin: s.stdin_open,
                read_only: s.read_only,
                mounts,
                stop_grace_period: s.stop_grace_period,
                healthcheck,
                hosts,
                dns_config,
                secrets,
                configs,
                isolation: s.isolation.clone(),
                sysctls: s.sysctls.clone(),
                capability_add: cap_add,
                capability_drop: cap_drop,
                ulimits,
                oom_score_adj: s.oom_score_adj,
                groups: Vec::new(),
            }),
            resources: Some(resources),
            restart_policy,
            placement: Some(Placement {
                constraints: d.placement.constraints.clone(),
                preferences: d
                    .placement
                    .preferences
                    .iter()
                    .map(|p| PlacementPreference {
                        spread: Some(SpreadOver {
                            spread_descriptor: p.clone(),
                        }),
                    })
                    .collect(),
                max_replicas: d.placement.max_replicas,
            }),
            networks: nets,
            log_driver: s.logging.as_ref().map(|l| Driver {
                name: l.driver.clone(),
                options: l.options.clone(),
            }),
            force_update: 0,
            runtime: String::new(),
        },
        mode,
        update_config: update(&d.update_config),
        rollback_config: update(&d.rollback_config),
        endpoint_spec: Some(endpoint),
    })
}

fn cpus(cx: &mut Cx<'_>, s: &Service, value: &str, which: &str) -> i64 {
    if value.is_empty() {
        return 0;
    }
    match parse::parse_cpus(value) {
        Ok(v) => v,
        Err(e) => {
            cx.fail(
                &s.origin,
                &format!("services.{}.deploy.resources.{which}.cpus", s.name),
                format!("service {}: {e}", s.name),
            );
            0
        }
    }
}

/// docker's fallback from `restart:` when `deploy.restart_policy` is absent.
fn restart_from_container_policy(cx: &mut Cx<'_>, s: &Service) -> Option<RestartPolicy> {
    let policy = s.restart.as_str();
    if policy.is_empty() {
        return None;
    }
    let (name, count) = policy.split_once(':').unwrap_or((policy, ""));
    let path = format!("services.{}.restart", s.name);
    if policy.contains(':') && name.is_empty() {
        cx.fail(
            &s.origin,
            &path,
            format!(
                "service {}: invalid restart policy format: no policy provided before colon",
                s.name
            ),
        );
        return None;
    }
    let attempts: u64 = if count.is_empty() {
        0
    } else if let Ok(n) = count.parse::<i64>() {
        n as u64
    } else {
        cx.fail(
            &s.origin,
            &path,
            format!(
                "service {}: invalid restart policy format: maximum retry count must be an integer",
                s.name
            ),
        );
        return None;
    };
    match name {
        "no" | "" => None,
        "always" | "unless-stopped" => Some(RestartPolicy {
            condition: "any".into(),
            ..RestartPolicy::default()
        }),
        "on-failure" => Some(RestartPolicy {
            condition: "on-failure".into(),
            max_attempts: Some(attempts),
            ..RestartPolicy::default()
        }),
        _ => {
            cx.fail(
                &s.origin,
                &path,
                format!("service {}: unknown restart policy: {policy}", s.name),
            );
            None
        }
    }
}

fn mounts(cx: &mut Cx<'_>, project: &Project, s: &Service) -> Vec<Mount> {
    let mut out = Vec::new();
    let ns = cx.ns;
    for (i, v) in s.volumes.iter().enumerate() {
        let path = format!("services.{}.volumes[{i}]", s.name);
        let mut m = Mount {
            r#type: v.kind.clone(),
            source: v.source.clone(),
            target: v.target.clone(),
            read_only: v.read_only,
            consistency: v.consistency.clone(),
            ..Mount::default()
        };
        let incompatible = |cx: &mut Cx<'_>, what: &str, kind: &str| {
            cx.fail(
                &s.origin,
                &path,
                format!(
                    "service {}: {what} options are incompatible with type {kind}",
                    s.name
                ),
            );
        };
        match v.kind.as_str() {
            "volume" | "" => {
                if v.image.is_some() {
                    incompatible(cx, "images", "volume");
                    continue;
                }
                if v.tmpfs.is_some() {
                    incompatible(cx, "tmpfs", "volume");
                    continue;
                }
                if v.bind.is_some() {
                    incompatible(cx, "bind", "volume");
                    continue;
                }
                if v.cluster {
                    incompatible(cx, "cluster", "volume");
                    continue;
                }
                if v.source.is_empty() {
                    out.push(m);
                    continue;
                }
                let Some(stack_vol) = project.volumes.get(&v.source) else {
                    cx.fail(
                        &s.origin,
                        &path,
                        format!("service {}: undefined volume \"{}\"", s.name, v.source),
                    );
                    continue;
                };
                m.source = if stack_vol.name.is_empty() {
                    scope(ns, &v.source)
                } else {
                    stack_vol.name.clone()
                };
                let mut opts = VolumeOptions::default();
                if let Some(vo) = &v.volume {
                    opts.no_copy = vo.nocopy;
                    opts.subpath.clone_from(&vo.subpath);
                }
                if !stack_vol.external {
                    opts.labels = with_stack_label(ns, &stack_vol.labels);
                    if !stack_vol.driver.is_empty() || stack_vol.driver_opts.is_some() {
                        opts.driver_config = Some(Driver {
                            name: stack_vol.driver.clone(),
                            options: stack_vol.driver_opts.clone().unwrap_or_default(),
                        });
                    }
                }
                m.volume_options = Some(opts);
            }
            "image" => {
                if v.source.is_empty() {
                    cx.fail(
                        &s.origin,
                        &path,
                        format!(
                            "service {}: invalid image source, source cannot be empty",
                            s.name
                        ),
                    );
                    continue;
                }
                if v.volume.is_some() || v.bind.is_some() || v.tmpfs.is_some() || v.cluster {
                    incompatible(cx, "volume, bind, tmpfs or cluster", "image");
                    continue;
                }
                m.image_options = v.image.as_ref().map(|sp| ImageOptions {
                    subpath: sp.clone(),
                });
            }
            "bind" => {
                if v.source.is_empty() {
                    cx.fail(
                        &s.origin,
                        &path,
                        format!(
                            "service {}: invalid bind source, source cannot be empty",
                            s.name
                        ),
                    );
                    continue;
                }
                if v.volume.is_some() {
                    incompatible(cx, "volume", "bind");
                    continue;
                }
                if v.image.is_some() {
                    incompatible(cx, "image", "bind");
                    continue;
                }
                if v.tmpfs.is_some() {
                    incompatible(cx, "tmpfs", "bind");
                    continue;
                }
                if v.cluster {
                    incompatible(cx, "cluster", "bind");
                    continue;
                }
                m.bind_options = v.bind.as_ref().map(|p| BindOptions {
                    propagation: p.clone(),
                });
            }
            "tmpfs" => {
                if !v.source.is_empty() {
                    cx.fail(
                        &s.origin,
                        &path,
                        format!(
                            "service {}: invalid tmpfs source, source must be empty",
                            s.name
                        ),
                    );
                    continue;
                }
                if v.bind.is_some() {
                    incompatible(cx, "bind", "tmpfs");
                    continue;
                }
                if v.volume.is_some() {
                    incompatible(cx, "volume", "tmpfs");
                    continue;
                }
                if v.image.is_some() {
                    incompatible(cx, "image", "tmpfs");
                    continue;
                }
                if v.cluster {
                    incompatible(cx, "cluster", "tmpfs");
                    continue;
                }
                m.tmpfs_options = v.tmpfs.map(|size| TmpfsOptions {
                    size_bytes: size,
                    mode: 0,
                });
            }
            "npipe" => {
                if v.source.is_empty() {
                    cx.fail(
                        &s.origin,
                        &path,
                        format!(
                            "service {}: invalid npipe source, source cannot be empty",
                            s.name
                        ),
                    );
                    continue;
                }
                if v.volume.is_some() {
                    incompatible(cx, "volume", "npipe");
                    continue;
                }
                if v.image.is_some() {
                    incompatible(cx, "image", "npipe");
                    continue;
                }
                if v.tmpfs.is_some() {
                    incompatible(cx, "tmpfs", "npipe");
                    continue;
                }
                m.bind_options = v.bind.as_ref().map(|p| BindOptions {
                    propagation: p.clone(),
                });
            }
            "cluster" => {
                if v.source.is_empty() {
                    cx.fail(
                        &s.origin,
                        &path,
                        format!(
                            "service {}: invalid cluster source, source cannot be empty",
                            s.name
                        ),
                    );
                    continue;
                }
                if v.tmpfs.is_some() || v.bind.is_some() || v.volume.is_some() {
                    incompatible(cx, "tmpfs, bind or volume", "cluster");
                    continue;
                }
                m.cluster_options = Some(BTreeMap::new());
                if !v.source.starts_with("group:") {
                    let Some(stack_vol) = project.volumes.get(&v.source) else {
                        cx.fail(
                            &s.origin,
                            &path,
                            format!("service {}: undefined volume \"{}\"", s.name, v.source),
                        );
                        continue;
                    };
                    m.source = if stack_vol.name.is_empty() {
                        scope(ns, &v.source)
                    } else {
                        stack_vol.name.clone()
                    };
                }
            }
            _ => {
                cx.fail(
                    &s.origin,
                    &path,
                    format!(
                        "service {}: volume type must be volume, bind, tmpfs, npipe, or cluster",
                        s.name
                    ),
                );
                continue;
            }
        }
        out.push(m);
    }
    out
}
