//! Merging several files (`-c a.yml -c b.yml`) the way docker/cli's
//! `loader/merge.go` does with mergo (`WithOverride`, `WithAppendSlice`, and
//! its transformers), including mergo's zero-value rules:
//!
//! * a service in a later file is merged field by field into the earlier one:
//!   non-empty strings override, `false` and `0` never do; maps merge key by
//!   key; plain lists (`cap_add`, `dns`, `extra_hosts`, `tmpfs`, placement
//!   constraints, even `healthcheck.test`) append;
//! * pointer fields (`healthcheck`, `restart_policy`, resource limits and
//!   reservations, `update_config`, `init`, durations) are set when the
//!   earlier file has none, else merged into: a pointed-to duration of `0`
//!   or `init: false` does not override, a `*uint64` (`replicas`, `retries`,
//!   `max_attempts`, `parallelism`) does;
//! * `ports` are keyed by published port, `secrets`/`configs` by source and
//!   `volumes` by target, then sorted by that key, but only when the earlier
//!   file has some (else the later list is taken as is); `command` and
//!   `entrypoint` are replaced when the later one is non-empty; `logging`
//!   merges options when the drivers agree (or one is empty), else is
//!   replaced; a later network attachment replaces aliases and non-empty
//!   addresses; a later ulimit replaces the whole entry; an `environment`
//!   value that is set and non-empty is only replaced by a non-empty one;
//! * top-level networks, volumes, secrets and configs are replaced by name.

use std::collections::BTreeMap;

use super::model::{Deploy, FileRef, Healthcheck, Project, Service, UpdateConfig};

fn set_str(dst: &mut String, src: &str) {
    if !src.is_empty() {
        *dst = src.to_string();
    }
}

#[allow(clippy::ref_option)]
fn set_opt<T: Clone>(dst: &mut Option<T>, src: &Option<T>) {
    if src.is_some() {
        dst.clone_from(src);
    }
}

/// A `*Duration` (or other pointed-to number) merged by mergo: taken when
/// the destination is nil, else only a non-zero value overrides.
#[allow(clippy::ref_option)]
fn set_ptr_num(dst: &mut Option<i64>, src: &Option<i64>) {
    match (dst.as_mut(), src) {
        (_, None) => {}
        (None, Some(s)) => *dst = Some(*s),
        (Some(d), Some(s)) => {
            if *s != 0 {
                *d = *s;
            }
        }
    }
}

fn merge_map<V: Clone>(dst: &mut BTreeMap<String, V>, src: &BTreeMap<String, V>) {
    for (k, v) in src {
        dst.insert(k.clone(), v.clone());
    }
}

/// mergo's `mergeSlice` transformer; it only runs on a non-nil destination,
/// otherwise `WithAppendSlice` appends the later list unchanged (unsorted,
/// duplicates kept).
fn keyed<T: Clone, K: Ord + Clone>(dst: &mut Vec<T>, src: &[T], key: impl Fn(&T) -> K) {
    if dst.is_empty() {
        dst.extend(src.iter().cloned());
        return;
    }
    let mut map: BTreeMap<K, T> = BTreeMap::new();
    for item in dst.iter().chain(src) {
        map.insert(key(item), item.clone());
    }
    *dst = map.into_values().collect();
}

#[allow(clippy::ref_option)]
fn merge_update(dst: &mut Option<UpdateConfig>, src: &Option<UpdateConfig>) {
    match (dst.as_mut(), src) {
        (_, None) => {}
        (None, Some(s)) => *dst = Some(s.clone()),
        (Some(d), Some(s)) => {
            set_opt(&mut d.parallelism, &s.parallelism);
            if s.delay != 0 {
                d.delay = s.delay;
            }
            set_str(&mut d.failure_action, &s.failure_action);
            if s.monitor != 0 {
                d.monitor = s.monitor;
            }
            if s.max_failure_ratio != 0.0 {
                d.max_failure_ratio = s.max_failure_ratio;
            }
            set_str(&mut d.order, &s.order);
        }
    }
}

fn merge_deploy(d: &mut Deploy, s: &Deploy) {
    set_str(&mut d.mode, &s.mode);
    set_opt(&mut d.replicas, &s.replicas);
    merge_map(&mut d.labels, &s.labels);
    merge_update(&mut d.update_config, &s.update_config);
    merge_update(&mut d.rollback_config, &s.rollback_config);
    match (&mut d.resources.limits, &s.resources.limits) {
        (Some(dl), Some(sl)) => {
            set_str(&mut dl.cpus, &sl.cpus);
            if sl.memory != 0 {
                dl.memory = sl.memory;
            }
            if sl.pids != 0 {
                dl.pids = sl.pids;
            }
        }
        (dl, sl) => set_opt(dl, sl),
    }
    match (&mut d.resources.reservations, &s.resources.reservations) {
        (Some(dr), Some(sr)) => {
            set_str(&mut dr.cpus, &sr.cpus);
            if sr.memory != 0 {
                dr.memory = sr.memory;
            }
            dr.generic_resources
                .extend(sr.generic_resources.iter().cloned());
        }
        (dr, sr) => set_opt(dr, sr),
    }
    match (&mut d.restart_policy, &s.restart_policy) {
        (Some(dr), Some(sr)) => {
            set_str(&mut dr.condition, &sr.condition);
            set_ptr_num(&mut dr.delay, &sr.delay);
            set_opt(&mut dr.max_attempts, &sr.max_attempts);
            set_ptr_num(&mut dr.window, &sr.window);
        }
        (dr, sr) => set_opt(dr, sr),
    }
    d.placement
        .constraints
        .extend(s.placement.constraints.iter().cloned());
    d.placement
        .preferences
        .extend(s.placement.preferences.iter().cloned());
    if s.placement.max_replicas != 0 {
        d.placement.max_replicas = s.placement.max_replicas;
    }
    set_str(&mut d.endpoint_mode, &s.endpoint_mode);
}

/// `*HealthCheckConfig`: merged field by field when both files have one;
/// `test` is a plain slice, so it appends.
#[allow(clippy::ref_option)]
fn merge_healthcheck(dst: &mut Option<Healthcheck>, src: &Option<Healthcheck>) {
    match (dst.as_mut(), src) {
        (_, None) => {}
        (None, Some(s)) => *dst = Some(s.clone()),
        (Some(d), Some(s)) => {
            d.test.extend(s.test.iter().cloned());
            set_ptr_num(&mut d.timeout, &s.timeout);
            set_ptr_num(&mut d.interval, &s.interval);
            set_opt(&mut d.retries, &s.retries);
            set_ptr_num(&mut d.start_period, &s.start_period);
            set_ptr_num(&mut d.start_interval, &s.start_interval);
            d.disable |= s.disable;
        }
    }
}

/// `MappingWithEquals` (`map[string]*string`) under mergo: a later value
/// replaces an absent, nil or empty one; a set non-empty value is only
/// overwritten by another non-empty value.
fn merge_environment(
    dst: &mut BTreeMap<String, Option<String>>,
    src: &BTreeMap<String, Option<String>>,
) {
    let non_empty =
        |v: Option<&Option<String>>| v.is_some_and(|v| v.as_deref().is_some_and(|v| !v.is_empty()));
    for (k, v) in src {
        if non_empty(Some(v)) || !non_empty(dst.get(k)) {
            dst.insert(k.clone(), v.clone());
        }
    }
}

fn merge_service(d: &mut Service, s: &Service) {
    d.cap_add.extend(s.cap_add.iter().cloned());
    d.cap_drop.extend(s.cap_drop.iter().cloned());
    if !s.command.is_empty() {
        d.command.clone_from(&s.command);
    }
    if !s.entrypoint.is_empty() {
        d.entrypoint.clone_from(&s.entrypoint);
    }
    keyed(&mut d.configs, &s.configs, |r: &FileRef| r.source.clone());
    keyed(&mut d.secrets, &s.secrets, |r: &FileRef| r.source.clone());
    set_str(&mut d.credential_spec.config, &s.credential_spec.config);
    set_str(&mut d.credential_spec.file, &s.credential_spec.file);
    set_str(&mut d.credential_spec.registry, &s.credential_spec.registry);
    merge_deploy(&mut d.deploy, &s.deploy);
    for (dst, src) in [(&mut d.dns, &s.dns), (&mut d.dns_search, &s.dns_search)] {
        match (dst.as_mut(), src) {
            (Some(a), Some(b)) => a.extend(b.iter().cloned()),
            // `reflect.AppendSlice(nil, [])` stays nil: no DNSConfig.
            (None, Some(b)) if !b.is_empty() => *dst = Some(b.clone()),
            _ => {}
        }
    }
    merge_environment(&mut d.environment, &s.environment);
    d.env_file.extend(s.env_file.iter().cloned());
    d.extra_hosts.extend(s.extra_hosts.iter().cloned());
    merge_healthcheck(&mut d.healthcheck, &s.healthcheck);
    set_str(&mut d.hostname, &s.hostname);
    set_str(&mut d.image, &s.image);
    // `*bool`: a nil destination takes the pointer, else only `true` sets.
    match (&mut d.init, s.init) {
        (Some(di), Some(si)) => *di |= si,
        (None, si) => d.init = si,
        (Some(_), None) => {}
    }
    set_str(&mut d.isolation, &s.isolation);
    merge_map(&mut d.labels, &s.labels);
    match (&mut d.logging, &s.logging) {
        (Some(dl), Some(sl)) => {
            if dl.driver == sl.driver || dl.driver.is_empty() || sl.driver.is_empty() {
                set_str(&mut dl.driver, &sl.driver);
                // docker merges into a copy of the options map; with no
                // options in the earlier file (a nil map) mergo allocates
                // a new map that is never stored, so the later options are
                // lost.
                if !dl.options.is_empty() {
                    merge_map(&mut dl.options, &sl.options);
                }
            } else {
                *dl = sl.clone();
            }
        }
        (dl, sl) => set_opt(dl, sl),
    }
    for (name, src) in &s.networks {
        match (d.networks.get_mut(name), src) {
            (Some(Some(dn)), Some(sn)) => {
                dn.aliases.clone_from(&sn.aliases);
                set_str(&mut dn.ipv4_address, &sn.ipv4_address);
                set_str(&mut dn.ipv6_address, &sn.ipv6_address);
            }
            (Some(_), None) => {}
            _ => {
                d.networks.insert(name.clone(), src.clone());
            }
        }
    }
    keyed(&mut d.ports, &s.ports, |p| p.published);
    d.read_only |= s.read_only;
    set_str(&mut d.restart, &s.restart);
    d.stdin_open |= s.stdin_open;
    d.tty |= s.tty;
    set_ptr_num(&mut d.stop_grace_period, &s.stop_grace_period);
    set_str(&mut d.stop_signal, &s.stop_signal);
    merge_map(&mut d.sysctls, &s.sysctls);
    d.tmpfs.extend(s.tmpfs.iter().cloned());
    // `mergeUlimitsConfig` replaces the whole entry whenever the later file
    // has one (its zero check compares a non-nil pointer with nil).
    merge_map(&mut d.ulimits, &s.ulimits);
    set_str(&mut d.user, &s.user);
    set_str(&mut d.working_dir, &s.working_dir);
    if s.oom_score_adj != 0 {
        d.oom_score_adj = s.oom_score_adj;
    }
    keyed(&mut d.volumes, &s.volumes, |v| v.target.clone());
}

/// Merge `over` into `base`.
pub fn merge(base: &mut Project, over: Project) {
    for s in over.services {
        match base.services.iter_mut().find(|b| b.name == s.name) {
            Some(b) => merge_service(b, &s),
            None => base.services.push(s),
        }
    }
    base.services.sort_by(|a, b| a.name.cmp(&b.name));
    base.networks.extend(over.networks);
    base.volumes.extend(over.volumes);
    base.secrets.extend(over.secrets);
    base.configs.extend(over.configs);
    base.warnings.extend(over.warnings);
}
