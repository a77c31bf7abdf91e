//! All integration tests build into one binary (see Cargo.toml `autotests = false`).

// Compose conversion equals the requests the docker CLI sent; needs the corpus in ../shared, no daemon.
mod compose_corpus;
// `validate` reads only inside the source root (`--allow-path` widens it); no daemon.
mod confine;
// Stacks deployed by bosun and by `docker stack deploy` are the same; needs a swarm daemon, the docker CLI and the corpus in ../shared.
mod conformance;
// The files in deploy/ are accepted by the docker CLI and by bosun and say what the docs promise; needs the docker CLI, no daemon.
mod deploy;
// The binary converges examples and survives a dying manager or SIGKILL; needs the multi-node sandbox (root, dockerd, ip, nsenter, unshare, iptables).
mod e2e;
// A VipPolicy deployed as keepalived services on the multi-node sandbox: failover by kill and cut, preempt, rolls one node at a time; needs the sandbox's requirements and keepalived.
mod failover;
// An error is printed once with its causes and exits 2; no daemon.
mod errors;
// Every folder of examples/ validates with the binary; no daemon.
mod examples;
// The controller's HTTP endpoints over loopback TCP; no daemon.
mod http;
// `bosun run` works as a swarm service deployed from deploy/bosun-stack.yml; needs the multi-node sandbox, the docker CLI, curl and git.
mod inswarm;
// The single-writer lease against the fake and against a swarm daemon.
mod lease;
// Output into a closed pipe ends quietly with the command's exit code; `plan` needs a daemon.
mod pipe;
// The plan's normalization is complete for the oracle corpus and what the daemon stores plans to nothing; needs the corpus in ../shared and a swarm daemon.
mod plan;
// Requests swarm would refuse are refused at validation, nothing created; needs a swarm daemon.
mod precheck;
// `plan` and `reconcile --once` against a single-node swarm; needs a swarm daemon, the docker CLI and the corpus in ../shared.
mod reconcile;
// `bosun run` (the binary) against a single-node swarm; needs a swarm daemon, the docker CLI and git.
mod run;
// The multi-node sandbox and its CLI; needs the sandbox's requirements (root, dockerd, ip, nsenter, unshare, iptables).
mod sandbox;
// The committed crds/ match the Rust types; no daemon.
mod schema;
// Folder and git sources against real files and a local bare repository; needs a git binary, no daemon.
mod source;
// `VipPolicy` rendered into keepalived.conf: golden files, `keepalived --config-test` in a network namespace (root, unshare, ip, keepalived), `bosun vip render`; `bosun vip check docker` needs the test daemon.
mod vip;
// Helpers the modules share: the bosun and docker runners, the corpus cases, snapshots, sandboxes.
mod support;
// The Docker client against a single-node swarm; needs a swarm daemon.
mod swarm;
// `validate` gives precise diagnostics, passes valid folders and never panics; no daemon.
mod validate;
