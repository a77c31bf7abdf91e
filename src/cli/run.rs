//! `bosun run`: keep the swarm equal to a folder or a git repository.
//!
//! Runs until SIGTERM or SIGINT: the first lets the running pass finish,
//! releases the lease, stops the HTTP server and exits 0; a second cancels
//! the running pass through the same shutdown path (the lease is still
//! released) and exits 130.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use anyhow::Context;

use super::Exit;
use super::plan::runtime;
use crate::apply;
use crate::controller::scheduler::{self, Stopped};
use crate::controller::{self, PassOptions, RunConfig, Shutdown, Source};
use crate::source::git::{Credentials, GitConfig, Reference, Secret};

/// Arguments of `bosun run`.
#[derive(Debug, clap::Args)]
#[command(group(clap::ArgGroup::new("source").required(true).args(["dir", "git"])))]
pub struct Args {
    /// Folder of manifests, watched for changes.
    #[arg(long, env = "BOSUN_DIR")]
    pub dir: Option<PathBuf>,
    /// Git repository URL (https://, ssh://, git@host:path, file://, a path).
    #[arg(long, env = "BOSUN_GIT_URL")]
    pub git: Option<String>,
    /// Branch, tag or full commit SHA: a bare name is the branch of that
    /// name, else the tag (`refs/heads/X`, `tags/X` say which).
    #[arg(
        long = "ref",
        env = "BOSUN_GIT_REF",
        default_value = "main",
        requires = "git"
    )]
    pub reference: String,
    /// Folder of manifests inside the repository.
    #[arg(long, env = "BOSUN_GIT_PATH", requires = "git")]
    pub path: Option<PathBuf>,
    /// How often the repository is fetched (`60s`, `5m`).
    #[arg(long, env = "BOSUN_GIT_INTERVAL", default_value = "60s", value_parser = duration)]
    pub interval: Duration,
    /// Username for https.
    #[arg(long, env = "BOSUN_GIT_USERNAME", requires = "git")]
    pub git_username: Option<String>,
    /// File holding the https password or token.
    #[arg(
        long,
        env = "BOSUN_GIT_TOKEN_FILE",
        conflicts_with = "git_password_env"
    )]
    pub git_token_file: Option<PathBuf>,
    /// Environment variable holding the https password or token.
    #[arg(long, env = "BOSUN_GIT_PASSWORD_ENV")]
    pub git_password_env: Option<String>,
    /// Private key for ssh.
    #[arg(long, env = "BOSUN_GIT_SSH_KEY", conflicts_with_all = ["git_token_file", "git_password_env"])]
    pub git_ssh_key: Option<PathBuf>,
    /// `known_hosts` file for ssh (default: accept-new into bosun's own file).
    #[arg(long, env = "BOSUN_GIT_KNOWN_HOSTS", requires = "git_ssh_key")]
    pub git_known_hosts: Option<PathBuf>,
    /// Where the repository is checked out.
    #[arg(
        long,
        env = "BOSUN_CHECKOUT_DIR",
        default_value = "/var/lib/bosun/checkout"
    )]
    pub checkout_dir: PathBuf,
    /// Address of /healthz, /readyz, /status, /metrics and /hooks/git.
    #[arg(long, env = "BOSUN_LISTEN", default_value = "127.0.0.1:9090")]
    pub listen: SocketAddr,
    /// A full pass at least this often, even when nothing fired.
    #[arg(long, env = "BOSUN_RESYNC", default_value = "5m", value_parser = duration)]
    pub resync: Duration,
    /// With `--dir` (ignored for git): how long the folder must be quiet
    /// after an edit before a pass (one pass for an editor's save or a `git
    /// pull`).
    #[arg(long, env = "BOSUN_DEBOUNCE", default_value = "500ms", value_parser = duration)]
    pub debounce: Duration,
    /// File holding the webhook secret (without it webhooks are refused).
    #[arg(long, env = "BOSUN_WEBHOOK_SECRET_FILE")]
    pub webhook_secret_file: Option<PathBuf>,
    /// Do not remove objects bosun owns and no longer wants.
    #[arg(long, env = "BOSUN_NO_PRUNE")]
    pub no_prune: bool,
    /// Name of the lease config (instances with the same name take turns).
    /// Default `bosun-lease`, or `bosun-lease-<scope>` with `--scope`.
    #[arg(long, env = "BOSUN_LEASE_NAME")]
    pub lease_name: Option<String>,
    /// This instance's identity in the lease (default: hostname-pid).
    #[arg(long, env = "BOSUN_INSTANCE_ID")]
    pub instance_id: Option<String>,
    /// How long the lease lasts without renewal.
    #[arg(long, env = "BOSUN_LEASE_DURATION", default_value = "15s", value_parser = duration, hide = true)]
    pub lease_duration: Duration,
    /// Manage only objects whose names start with this prefix (several
    /// instances or test runs sharing one swarm).
    #[arg(long, env = "BOSUN_NAME_PREFIX", default_value = "", hide = true)]
    pub name_prefix: String,
    /// Scope of this bosun: objects it creates carry `dev.bosun.scope=NAME`,
    /// and it never touches objects of another scope (several bosun
    /// instances, one per folder or team, on one swarm). Default: none.
    #[arg(long, env = "BOSUN_SCOPE")]
    pub scope: Option<String>,
}

pub(crate) fn duration(s: &str) -> Result<Duration, String> {
    s.parse::<crate::manifest::duration::Duration>()
        .map(|d| d.get())
        .map_err(|e| e.to_string())
}

impl Args {
    /// Resolve the arguments into the controller's configuration.
    fn config(&self, allow: &[PathBuf]) -> anyhow::Result<RunConfig> {
        let source = match (&self.dir, &self.git) {
            (Some(d), _) => Source::Dir(d.clone()),
            (None, Some(url)) => {
                let credentials = if let Some(key) = &self.git_ssh_key {
                    Credentials::Ssh {
                        key_file: key.clone(),
                        known_hosts: self.git_known_hosts.clone(),
                    }
                } else if let Some(password) = self
                    .git_token_file
                    .clone()
                    .map(Secret::File)
                    .or_else(|| self.git_password_env.clone().map(Secret::Env))
                {
                    Credentials::Https {
                        username: self
                            .git_username
                            .clone()
                            .unwrap_or_else(|| "git".to_string()),
                        password,
                    }
                } else {
                    Credentials::None
                };
                Source::Git(
                    GitConfig::new(url.clone(), self.checkout_dir.clone())
                        .reference(Reference::parse(&self.reference))
                        .path(self.path.clone().unwrap_or_default())
                        .interval(self.interval)
                        .credentials(credentials),
                )
            }
            (None, None) => anyhow::bail!("give --dir or --git"),
        };
        let webhook_secret = match &self.webhook_secret_file {
            Some(f) => {
                let s = std::fs::read(f)
                    .with_context(|| format!("cannot read the webhook secret {}", f.display()))?;
                let trimmed = s.trim_ascii().to_vec();
                anyhow::ensure!(
                    !trimmed.is_empty(),
                    "the webhook secret {} is empty",
                    f.display()
                );
                Some(trimmed)
            }
            None => None,
        };
        let holder = self.instance_id.clone().unwrap_or_else(default_instance_id);
        let mut config = RunConfig::new(source, self.listen, holder);
        config.webhook_secret = webhook_secret;
        config.debounce = self.debounce;
        config.scheduler = scheduler::Config {
            resync: self.resync,
            ..scheduler::Config::default()
        };
        config.pass = PassOptions::default()
            .prune(!self.no_prune)
            .apply(apply::Options::default())
            .name_prefix(self.name_prefix.clone())
            .scope(self.scope.clone())
            .allow_paths(allow.to_vec());
        config.lease = config
            .lease
            .name(self.lease_name.clone().unwrap_or_else(|| {
                match self.scope.as_deref().filter(|s| !s.is_empty()) {
                    Some(scope) => format!("{}-{scope}", controller::lease::DEFAULT_NAME),
                    None => controller::lease::DEFAULT_NAME.to_string(),
                }
            }))
            .duration(self.lease_duration)
            .renew_every((self.lease_duration / 3).max(Duration::from_millis(500)));
        config.env = std::env::vars().collect();
        Ok(config)
    }
}

/// `hostname-pid`.
fn default_instance_id() -> String {
    let host = std::fs::read_to_string("/proc/sys/kernel/hostname")
        .ok()
        .or_else(|| std::env::var("HOSTNAME").ok())
        .map(|h| h.trim().to_string())
        .filter(|h| !h.is_empty())
        .unwrap_or_else(|| "bosun".to_string());
    format!("{host}-{}", std::process::id())
}

/// Run `bosun run`; files are read inside the folder (or the git checkout)
/// and below `allow`.
pub fn run(args: &Args, allow: &[PathBuf]) -> super::Result {
    let config = args.config(allow)?;
    runtime()?.block_on(async {
        let shutdown = Shutdown::new();
        let on_signal = shutdown.clone();
        let mut signals = Signals::new().context("cannot handle SIGTERM and SIGINT")?;
        tokio::spawn(async move {
            signals.next().await;
            tracing::info!("signal received: finishing the running pass, then exiting");
            on_signal.stop();
            signals.next().await;
            on_signal.abort();
        });
        let stopped = controller::run(config, shutdown)
            .await
            .context("bosun run")?;
        Ok(match stopped {
            Stopped::Aborted => Exit::Aborted,
            Stopped::Gracefully | Stopped::Closed => Exit::Success,
        })
    })
}

/// SIGTERM and SIGINT, registered once: a signal that comes while the
/// first is being handled is kept for the next [`Signals::next`].
struct Signals {
    term: tokio::signal::unix::Signal,
    int: tokio::signal::unix::Signal,
}

impl Signals {
    fn new() -> std::io::Result<Self> {
        use tokio::signal::unix::{SignalKind, signal};
        Ok(Signals {
            term: signal(SignalKind::terminate())?,
            int: signal(SignalKind::interrupt())?,
        })
    }

    /// The next SIGTERM or SIGINT.
    async fn next(&mut self) {
        tokio::select! {
            _ = self.term.recv() => {}
            _ = self.int.recv() => {}
        }
    }
}

#[cfg(test)]
mod tests {
    use clap::Parser;

    use super::*;
    use crate::cli::{Cli, Command};

    fn config(args: &[&str]) -> RunConfig {
        let cli = Cli::try_parse_from(["bosun", "run"].iter().chain(args))
            .unwrap_or_else(|e| panic!("{e}"));
        let Command::Run(run) = cli.command else {
            panic!("not `run`");
        };
        run.config(&cli.allow_path)
            .unwrap_or_else(|e| panic!("{e:#}"))
    }

    #[test]
    fn allow_path_is_a_global_repeatable_flag_that_reaches_the_passes() {
        let run = config(&[
            "--dir",
            "/tmp",
            "--allow-path",
            "/run/secrets",
            "--allow-path",
            "/srv",
        ]);
        assert_eq!(
            run.pass.allow_paths,
            [PathBuf::from("/run/secrets"), PathBuf::from("/srv")]
        );
        assert!(config(&["--dir", "/tmp"]).pass.allow_paths.is_empty());
    }

    #[test]
    fn the_folder_debounce_is_a_flag_with_the_watchs_default() {
        assert_eq!(
            config(&["--dir", "/tmp"]).debounce,
            crate::source::dir::DEFAULT_DEBOUNCE
        );
        assert_eq!(
            config(&["--dir", "/tmp", "--debounce", "150ms"]).debounce,
            Duration::from_millis(150)
        );
        assert_eq!(
            config(&["--dir", "/tmp", "--resync", "1m"])
                .scheduler
                .resync,
            Duration::from_secs(60)
        );
    }
}
