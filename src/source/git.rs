//! A git repository as the source of desired state, through the `git` CLI.
//!
//! Like Argo CD, bosun shells out to `git` instead of linking a library: the
//! CLI speaks every transport, credential and ssh setup users already have
//! working, and its behaviour on force-pushes, annotated tags and partial
//! fetches is the reference anyway.
//!
//! The checkout directory is bosun's own: it is initialised once, then every
//! [`GitSource::sync`] fetches just the configured reference, checks the
//! resolved commit out detached with `--force`, and removes everything git
//! does not track (`clean -ffdx`), so the folder is exactly the commit, even
//! after a force-push or a hand edit. The revision is the commit SHA.
//!
//! Secrets never reach a command line or a message: https passwords/tokens
//! are answered by a small `GIT_ASKPASS` script (mode 0700, holding no
//! secret itself) from the child's environment or a file; userinfo in the
//! URL is moved into that mechanism; every message that shows a URL or
//! git's stderr passes through [`redact`]. Git runs with a timeout,
//! `GIT_TERMINAL_PROMPT=0`, no system/global config, no hooks and no
//! credential helpers of the host.

use std::fmt;
use std::io;
use std::path::{Component, Path, PathBuf};
use std::process::Stdio;
use std::time::Duration;

use tokio::process::Command;

/// How often the controller polls the remote by default.
pub const DEFAULT_INTERVAL: Duration = Duration::from_secs(60);
/// How long one git command may run by default.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(120);

const ASKPASS: &str = "bosun-askpass";
const ASKPASS_SCRIPT: &str = r#"#!/bin/sh
# Written by bosun: answers git's credential prompts from the environment.
# It holds no secret itself.
case "$1" in
Username*) printf '%s\n' "$BOSUN_GIT_USERNAME" ;;
*) if [ -n "$BOSUN_GIT_PASSWORD_FILE" ]; then cat "$BOSUN_GIT_PASSWORD_FILE"; else printf '%s\n' "$BOSUN_GIT_PASSWORD"; fi ;;
esac
"#;

/// Errors of the git source. URLs and git's output in them are redacted.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The configuration cannot work (bad subdirectory, non-empty checkout
    /// folder that is not bosun's, missing key file, …).
    #[error("git source {url}: {message}")]
    InvalidConfig { url: String, message: String },
    /// The checkout folder or the askpass helper could not be prepared.
    #[error("git source {url}: cannot prepare {path}")]
    PrepareFailed {
        url: String,
        path: PathBuf,
        #[source]
        source: io::Error,
    },
    /// A secret named by the configuration could not be read.
    #[error("git source {url}: cannot read the password: {message}")]
    SecretUnreadable { url: String, message: String },
    /// `git` could not be started.
    #[error("cannot run `git {op}` (is git installed?)")]
    SpawnFailed {
        op: &'static str,
        #[source]
        source: io::Error,
    },
    /// A git command failed; `stderr` is git's own explanation. The
    /// checkout folder is named: a folder that cannot be written or a full
    /// disk is fixed there.
    #[error("git {op} of {url} in {} failed: {stderr}", dir.display())]
    CommandFailed {
        op: &'static str,
        url: String,
        dir: PathBuf,
        stderr: String,
    },
    /// A git command did not finish in time and was killed.
    #[error("git {op} of {url} timed out after {seconds} s")]
    TimedOut {
        op: &'static str,
        url: String,
        seconds: u64,
    },
    /// The configured branch, tag or commit does not exist on the remote.
    #[error("{reference} not found in {url}: {stderr}")]
    RefNotFound {
        reference: String,
        url: String,
        stderr: String,
    },
    /// The configured subdirectory does not exist at this commit.
    #[error("{url} at {revision} has no directory {path}")]
    PathNotFound {
        url: String,
        revision: String,
        path: PathBuf,
    },
}

pub type Result<T, E = Error> = std::result::Result<T, E>;

/// What to check out.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Reference {
    /// The tip of a branch, followed as it moves (force-pushes included).
    Branch(String),
    /// A tag (annotated tags are peeled to their commit; moved tags followed).
    Tag(String),
    /// One commit, by its full hex SHA.
    Commit(String),
    /// A bare name (`--ref v1.0`, `--ref main`): the branch of that name,
    /// else the tag, as `git checkout NAME` would pick.
    Name(String),
}

impl Reference {
    /// Read a `--ref` value: a full hex SHA is a commit, `refs/tags/X` or
    /// `tags/X` a tag, `refs/heads/X` a branch, anything else a
    /// [`Reference::Name`] (branch, else tag).
    #[must_use]
    pub fn parse(s: &str) -> Self {
        let s = s.trim();
        if (s.len() == 40 || s.len() == 64) && s.bytes().all(|b| b.is_ascii_hexdigit()) {
            Reference::Commit(s.to_ascii_lowercase())
        } else if let Some(t) = s
            .strip_prefix("refs/tags/")
            .or_else(|| s.strip_prefix("tags/"))
        {
            Reference::Tag(t.to_string())
        } else if let Some(b) = s.strip_prefix("refs/heads/") {
            Reference::Branch(b.to_string())
        } else {
            Reference::Name(s.to_string())
        }
    }
}

impl fmt::Display for Reference {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Reference::Branch(b) => write!(f, "branch {b}"),
            Reference::Tag(t) => write!(f, "tag {t}"),
            Reference::Name(n) => write!(f, "branch or tag {n}"),
            Reference::Commit(c) => write!(f, "commit {c}"),
        }
    }
}

/// Where a password or token comes from. `Debug` never shows a value.
#[derive(Clone, PartialEq, Eq)]
pub enum Secret {
    /// A file holding the secret (read by git's askpass helper, at each use,
    /// so a rotated file is picked up).
    File(PathBuf),
    /// An environment variable of the bosun process (read at each sync).
    Env(String),
    /// The secret itself (e.g. moved out of a URL's userinfo).
    Value(String),
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Secret::File(p) => f.debug_tuple("File").field(p).finish(),
            Secret::Env(v) => f.debug_tuple("Env").field(v).finish(),
            Secret::Value(_) => f.write_str("Value(***)"),
        }
    }
}

/// How to authenticate to the remote.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub enum Credentials {
    /// None beyond what the URL's transport does by itself.
    #[default]
    None,
    /// HTTP(S) basic auth: a username (for tokens often anything, e.g.
    /// `x-access-token` or `oauth2`) and a password or token.
    Https { username: String, password: Secret },
    /// An ssh private key; host keys are checked strictly against
    /// `known_hosts` (default: ssh's own, `~/.ssh/known_hosts`).
    Ssh {
        key_file: PathBuf,
        known_hosts: Option<PathBuf>,
    },
}

/// Settings of a [`GitSource`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GitConfig {
    /// The remote: `https://…`, `ssh://…`, `git@host:path`, `file://…` or a path.
    pub url: String,
    /// What to check out.
    pub reference: Reference,
    /// The manifest folder inside the repository (relative; empty: the root).
    pub path: PathBuf,
    /// bosun's own working copy (created; must be empty or bosun's before).
    pub checkout_dir: PathBuf,
    /// How often to poll the remote (for the controller).
    pub interval: Duration,
    /// How long one git command may run.
    pub timeout: Duration,
    /// How to authenticate.
    pub credentials: Credentials,
}

impl GitConfig {
    /// Branch `main`, the repository root, polled every minute.
    pub fn new(url: impl Into<String>, checkout_dir: impl Into<PathBuf>) -> Self {
        GitConfig {
            url: url.into(),
            reference: Reference::Branch("main".to_string()),
            path: PathBuf::new(),
            checkout_dir: checkout_dir.into(),
            interval: DEFAULT_INTERVAL,
            timeout: DEFAULT_TIMEOUT,
            credentials: Credentials::None,
        }
    }

    #[must_use]
    pub fn reference(mut self, reference: Reference) -> Self {
        self.reference = reference;
        self
    }

    #[must_use]
    pub fn path(mut self, path: impl Into<PathBuf>) -> Self {
        self.path = path.into();
        self
    }

    #[must_use]
    pub fn interval(mut self, interval: Duration) -> Self {
        self.interval = interval;
        self
    }

    #[must_use]
    pub fn timeout(mut self, timeout: Duration) -> Self {
        self.timeout = timeout;
        self
    }

    #[must_use]
    pub fn credentials(mut self, credentials: Credentials) -> Self {
        self.credentials = credentials;
        self
    }
}

/// The outcome of a sync.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Synced {
    /// The full SHA of the checked-out commit.
    pub revision: String,
    /// The manifest folder: `checkout_dir/path`.
    pub dir: PathBuf,
    /// The revision differs from the previous sync's (true on the first).
    pub changed: bool,
}

/// A git repository, fetched and checked out on demand.
#[derive(Debug)]
pub struct GitSource {
    config: GitConfig,
    /// The URL git is given: without userinfo secrets.
    remote: String,
    /// The URL for messages.
    shown: String,
    last: Option<String>,
    /// A [`Reference::Name`] last resolved to a tag: try the tag first.
    name_is_tag: std::sync::atomic::AtomicBool,
}

impl GitSource {
    /// Check the configuration; nothing is fetched yet. A password in the
    /// URL's userinfo is moved into the askpass mechanism (unless explicit
    /// credentials are set, which then win).
    pub fn new(mut config: GitConfig) -> Result<Self> {
        let shown = redact(&config.url);
        let (remote, userinfo) = split_userinfo(&config.url);
        let invalid = |message: String| Error::InvalidConfig {
            url: shown.clone(),
            message,
        };
        if let Some((username, password)) = userinfo
            && config.credentials == Credentials::None
        {
            config.credentials = Credentials::Https {
                username,
                password: Secret::Value(password),
            };
        }
        if config
            .path
            .components()
            .any(|c| !matches!(c, Component::Normal(_) | Component::CurDir))
        {
            return Err(invalid(format!(
                "path {} must be relative to the repository root, without `..`",
                config.path.display()
            )));
        }
        if let Reference::Commit(sha) = &config.reference
            && (!matches!(sha.len(), 40 | 64) || !sha.bytes().all(|b| b.is_ascii_hexdigit()))
        {
            return Err(invalid(format!("commit {sha} is not a full hex SHA")));
        }
        match &config.credentials {
            Credentials::Ssh { key_file, .. } if !key_file.is_file() => {
                return Err(invalid(format!(
                    "ssh key {} does not exist",
                    key_file.display()
                )));
            }
            Credentials::Https {
                password: Secret::File(f),
                ..
            } if !f.is_file() => {
                return Err(invalid(format!(
                    "password file {} does not exist",
                    f.display()
                )));
            }
            _ => {}
        }
        config.url.clone_from(&remote);
        Ok(GitSource {
            config,
            remote,
            shown,
            last: None,
            name_is_tag: std::sync::atomic::AtomicBool::new(false),
        })
    }

    /// The configuration (with any URL secret moved into `credentials`).
    #[must_use]
    pub fn config(&self) -> &GitConfig {
        &self.config
    }

    /// The remote URL as messages show it (userinfo redacted).
    #[must_use]
    pub fn url(&self) -> &str {
        &self.shown
    }

    /// How often to poll.
    #[must_use]
    pub fn interval(&self) -> Duration {
        self.config.interval
    }

    /// The revision of the last successful sync.
    #[must_use]
    pub fn revision(&self) -> Option<&str> {
        self.last.as_deref()
    }

    /// The manifest folder inside the checkout.
    #[must_use]
    pub fn dir(&self) -> PathBuf {
        self.config.checkout_dir.join(&self.config.path)
    }

    /// Fetch the reference, check out the resolved commit (forced, detached,
    /// untracked files removed) and return it with the manifest folder.
    pub async fn sync(&mut self) -> Result<Synced> {
        let env = self.environment()?;
        self.prepare(&env).await?;
        let sha = self.fetch(&env).await?;
        self.git(
            &env,
            "checkout",
            &["checkout", "--quiet", "--force", "--detach", &sha],
        )
        .await?;
        self.git(&env, "clean", &["clean", "-ffdxq"]).await?;
        let dir = self.dir();
        if !dir.is_dir() {
            return Err(Error::PathNotFound {
                url: self.shown.clone(),
                revision: sha,
                path: self.config.path.clone(),
            });
        }
        let changed = self.last.as_deref() != Some(sha.as_str());
        if changed {
            tracing::info!(url = %self.shown, reference = %self.config.reference, revision = %sha, "checked out");
        }
        self.last = Some(sha.clone());
        Ok(Synced {
            revision: sha,
            dir,
            changed,
        })
    }

    /// Initialise the checkout once; point `origin` at the URL every time.
    async fn prepare(&self, env: &Env) -> Result<()> {
        let dir = &self.config.checkout_dir;
        let prepare_err = |path: &Path| {
            let (url, path) = (self.shown.clone(), path.to_path_buf());
            move |source| Error::PrepareFailed { url, path, source }
        };
        if !dir.join(".git").is_dir() {
            let occupied = std::fs::read_dir(dir).is_ok_and(|mut d| d.next().is_some());
            if occupied {
                return Err(Error::InvalidConfig {
                    url: self.shown.clone(),
                    message: format!(
                        "checkout folder {} is not empty and not a git checkout; bosun cleans its checkout, so give it a folder of its own",
                        dir.display()
                    ),
                });
            }
            std::fs::create_dir_all(dir).map_err(prepare_err(dir))?;
            self.git(env, "init", &["init", "--quiet"]).await?;
        }
        self.git(
            env,
            "config",
            &["config", "remote.origin.url", &self.remote],
        )
        .await?;
        if env.askpass {
            let script = dir.join(".git").join(ASKPASS);
            write_askpass(&script).map_err(prepare_err(&script))?;
        }
        Ok(())
    }

    /// Fetch what the reference needs; return the commit it resolves to.
    async fn fetch(&self, env: &Env) -> Result<String> {
        use std::sync::atomic::Ordering::Relaxed;
        let branch = |b: &str| {
            (
                format!("+refs/heads/{b}:refs/remotes/origin/{b}"),
                format!("refs/remotes/origin/{b}"),
            )
        };
        let tag = |t: &str| {
            (
                format!("+refs/tags/{t}:refs/tags/{t}"),
                format!("refs/tags/{t}"),
            )
        };
        let (refspec, local) = match &self.config.reference {
            Reference::Branch(b) => branch(b),
            Reference::Tag(t) => tag(t),
            Reference::Commit(sha) => return self.fetch_commit(env, sha).await,
            Reference::Name(n) => {
                let as_tag = self.name_is_tag.load(Relaxed);
                let (first, second) = if as_tag {
                    (tag(n), branch(n))
                } else {
                    (branch(n), tag(n))
                };
                let found = match self.fetch_ref(env, &first.0, &first.1).await {
                    Err(Error::RefNotFound { .. }) => {
                        let sha = self.fetch_ref(env, &second.0, &second.1).await?;
                        self.name_is_tag.store(!as_tag, Relaxed);
                        sha
                    }
                    other => other?,
                };
                return Ok(found);
            }
        };
        self.fetch_ref(env, &refspec, &local).await
    }

    /// Fetch one refspec into `local` and resolve it to a commit.
    async fn fetch_ref(&self, env: &Env, refspec: &str, local: &str) -> Result<String> {
        let fetched = self
            .git(
                env,
                "fetch",
                &[
                    "fetch",
                    "--quiet",
                    "--force",
                    "--no-tags",
                    "origin",
                    refspec,
                ],
            )
            .await;
        match fetched {
            Err(Error::CommandFailed { stderr, .. })
                if stderr.contains("couldn't find remote ref") =>
            {
                return Err(Error::RefNotFound {
                    reference: self.config.reference.to_string(),
                    url: self.shown.clone(),
                    stderr,
                });
            }
            other => other?,
        };
        self.resolve(env, local).await
    }

    /// A commit: use it if present, else fetch it directly (servers allow a
    /// reachable SHA with protocol v2), else fetch every branch and tag.
    async fn fetch_commit(&self, env: &Env, sha: &str) -> Result<String> {
        if let Ok(found) = self.resolve(env, sha).await {
            return Ok(found);
        }
        let direct = self
            .git(
                env,
                "fetch",
                &["fetch", "--quiet", "--no-tags", "origin", sha],
            )
            .await;
        if let Err(e) = direct {
            tracing::debug!(error = %crate::error::chain(&e), "fetching the commit directly failed; fetching all refs");
            self.git(
                env,
                "fetch",
                &[
                    "fetch",
                    "--quiet",
                    "--force",
                    "origin",
                    "+refs/heads/*:refs/remotes/origin/*",
                    "+refs/tags/*:refs/tags/*",
                ],
            )
            .await?;
        }
        self.resolve(env, sha).await.map_err(|e| match e {
            Error::CommandFailed { stderr, .. } => Error::RefNotFound {
                reference: self.config.reference.to_string(),
                url: self.shown.clone(),
                stderr,
            },
            other => other,
        })
    }

    async fn resolve(&self, env: &Env, rev: &str) -> Result<String> {
        let peeled = format!("{rev}^{{commit}}");
        let out = self
            .git(
                env,
                "rev-parse",
                &["rev-parse", "--verify", "--quiet", &peeled],
            )
            .await?;
        Ok(out.trim().to_string())
    }

    /// The environment of every git command of one sync.
    fn environment(&self) -> Result<Env> {
        let mut env = Env::default();
        match &self.config.credentials {
            Credentials::None => {}
            Credentials::Https { username, password } => {
                env.askpass = true;
                env.vars
                    .push(("BOSUN_GIT_USERNAME".to_string(), username.clone()));
                match password {
                    Secret::File(f) => env.vars.push((
                        "BOSUN_GIT_PASSWORD_FILE".to_string(),
                        f.display().to_string(),
                    )),
                    Secret::Env(var) => {
                        let value = std::env::var(var).map_err(|e| Error::SecretUnreadable {
                            url: self.shown.clone(),
                            message: format!("environment variable {var}: {e}"),
                        })?;
                        env.secrets.push(value.clone());
                        env.vars.push(("BOSUN_GIT_PASSWORD".to_string(), value));
                    }
                    Secret::Value(value) => {
                        env.secrets.push(value.clone());
                        env.vars
                            .push(("BOSUN_GIT_PASSWORD".to_string(), value.clone()));
                    }
                }
            }
            Credentials::Ssh {
                key_file,
                known_hosts,
            } => {
                env.vars.push((
                    "GIT_SSH_COMMAND".to_string(),
                    ssh_command(key_file, known_hosts.as_deref()),
                ));
            }
        }
        Ok(env)
    }

    /// Run one git command in the checkout; stdout on success.
    async fn git(&self, env: &Env, op: &'static str, args: &[&str]) -> Result<String> {
        let dir = &self.config.checkout_dir;
        let mut cmd = Command::new("git");
        cmd.arg("-C")
            .arg(dir)
            .args(["-c", "credential.helper=", "-c", "core.hooksPath=/dev/null"])
            .args([
                "-c",
                "advice.detachedHead=false",
                "-c",
                "gc.autoDetach=false",
            ])
            .args(["-c", "protocol.version=2", "-c", "core.askPass="])
            .arg("-c")
            .arg(format!("safe.directory={}", dir.display()))
            .args(args)
            .env("GIT_TERMINAL_PROMPT", "0")
            .env("GIT_CONFIG_NOSYSTEM", "1")
            .env("GIT_CONFIG_GLOBAL", "/dev/null")
            .env("LC_ALL", "C")
            .env_remove("GIT_DIR")
            .env_remove("GIT_WORK_TREE")
            .env_remove("GIT_INDEX_FILE")
            .env_remove("GIT_SSH")
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .kill_on_drop(true);
        if env.askpass {
            cmd.env("GIT_ASKPASS", dir.join(".git").join(ASKPASS));
        } else {
            // git would fall back to a desktop's SSH_ASKPASS for prompts.
            cmd.env_remove("GIT_ASKPASS").env_remove("SSH_ASKPASS");
        }
        cmd.env("SSH_ASKPASS_REQUIRE", "never");
        for (k, v) in &env.vars {
            cmd.env(k, v);
        }
        tracing::debug!(op, url = %self.shown, "git {}", args.first().unwrap_or(&""));
        let child = cmd
            .spawn()
            .map_err(|source| Error::SpawnFailed { op, source })?;
        let output = tokio::time::timeout(self.config.timeout, child.wait_with_output())
            .await
            .map_err(|_| Error::TimedOut {
                op,
                url: self.shown.clone(),
                seconds: self.config.timeout.as_secs(),
            })?
            .map_err(|source| Error::SpawnFailed { op, source })?;
        if output.status.success() {
            return Ok(String::from_utf8_lossy(&output.stdout).into_owned());
        }
        let mut stderr = String::from_utf8_lossy(&output.stderr).trim().to_string();
        if stderr.is_empty() {
            stderr = format!("exit status {}", output.status);
        }
        Err(Error::CommandFailed {
            op,
            url: self.shown.clone(),
            dir: self.config.checkout_dir.clone(),
            stderr: env.redact(&stderr),
        })
    }
}

/// Variables for one sync's git commands, and the secrets to scrub.
#[derive(Default)]
struct Env {
    askpass: bool,
    vars: Vec<(String, String)>,
    secrets: Vec<String>,
}

impl Env {
    fn redact(&self, text: &str) -> String {
        let mut text = redact(text);
        for s in self.secrets.iter().filter(|s| !s.is_empty()) {
            text = text.replace(s.as_str(), "***");
        }
        text
    }
}

fn write_askpass(path: &Path) -> io::Result<()> {
    use std::os::unix::fs::PermissionsExt as _;
    if std::fs::read(path).is_ok_and(|b| b == ASKPASS_SCRIPT.as_bytes()) {
        return Ok(());
    }
    std::fs::write(path, ASKPASS_SCRIPT)?;
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o700))
}

/// `GIT_SSH_COMMAND` for a key file: only that key, strict host keys.
fn ssh_command(key_file: &Path, known_hosts: Option<&Path>) -> String {
    let mut cmd = format!(
        "ssh -i {} -o IdentitiesOnly=yes -o BatchMode=yes -o StrictHostKeyChecking=yes",
        shell_quote(&key_file.display().to_string())
    );
    if let Some(kh) = known_hosts {
        cmd.push_str(" -o UserKnownHostsFile=");
        cmd.push_str(&shell_quote(&kh.display().to_string()));
    }
    cmd
}

fn shell_quote(s: &str) -> String {
    format!("'{}'", s.replace('\'', r"'\''"))
}

/// Split userinfo with a password (or any userinfo of an http(s) URL,
/// where a lone token is common) out of `url`: the clean URL and
/// `(username, password)`.
fn split_userinfo(url: &str) -> (String, Option<(String, String)>) {
    let Some((scheme, rest)) = url.split_once("://") else {
        return (url.to_string(), None);
    };
    let authority_end = rest.find('/').unwrap_or(rest.len());
    let Some(at) = rest[..authority_end].rfind('@') else {
        return (url.to_string(), None);
    };
    let userinfo = &rest[..at];
    let http = scheme.eq_ignore_ascii_case("http") || scheme.eq_ignore_ascii_case("https");
    let (user, password) = match userinfo.split_once(':') {
        Some((u, p)) => (u.to_string(), p.to_string()),
        // `https://TOKEN@host`: the token is the username; any password works.
        None if http => (userinfo.to_string(), String::new()),
        None => return (url.to_string(), None),
    };
    let clean = format!("{scheme}://{}", &rest[at + 1..]);
    let user = percent_decode(&user);
    let password = percent_decode(&password);
    if password.is_empty() {
        // A lone token: GitHub, GitLab and Gitea accept it as the password.
        (clean, Some(("x-access-token".to_string(), user)))
    } else {
        (clean, Some((user, password)))
    }
}

fn percent_decode(s: &str) -> String {
    percent_encoding::percent_decode_str(s)
        .decode_utf8_lossy()
        .into_owned()
}

/// Replace the userinfo of every URL in `text` with `***` (http(s): any
/// userinfo; other schemes: userinfo with a password).
#[must_use]
pub fn redact(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(i) = rest.find("://") {
        let (head, tail) = rest.split_at(i + 3);
        out.push_str(head);
        let scheme_start = head[..i]
            .rfind(|c: char| !(c.is_ascii_alphanumeric() || matches!(c, '+' | '-' | '.')))
            .map_or(0, |p| p + 1);
        let scheme = &head[scheme_start..i];
        let http = scheme.eq_ignore_ascii_case("http") || scheme.eq_ignore_ascii_case("https");
        let end = tail
            .find(|c: char| c == '/' || c.is_whitespace() || matches!(c, '\'' | '"' | '<' | '>'))
            .unwrap_or(tail.len());
        match tail[..end].rfind('@') {
            Some(at) if http || tail[..at].contains(':') => {
                out.push_str("***");
                rest = &tail[at..];
            }
            _ => rest = tail,
        }
    }
    out.push_str(rest);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn references_parse_from_the_command_line_form() {
        let sha = "0123456789abcdef0123456789abcdef01234567";
        assert_eq!(Reference::parse(sha), Reference::Commit(sha.to_string()));
        assert_eq!(Reference::parse("main"), Reference::Name("main".into()));
        assert_eq!(
            Reference::parse("refs/heads/release/1"),
            Reference::Branch("release/1".into())
        );
        assert_eq!(
            Reference::parse("refs/tags/v1"),
            Reference::Tag("v1".into())
        );
        assert_eq!(Reference::parse("tags/v1"), Reference::Tag("v1".into()));
        assert_eq!(Reference::parse("abc123"), Reference::Name("abc123".into()));
    }

    #[test]
    fn userinfo_is_redacted_in_any_text() {
        assert_eq!(
            redact("fatal: unable to access 'https://bob:tok3n@git.example/x.git/': refused"),
            "fatal: unable to access 'https://***@git.example/x.git/': refused"
        );
        assert_eq!(
            redact("https://tok3n@h/x and http://u:p@h2"),
            "https://***@h/x and http://***@h2"
        );
        assert_eq!(redact("ssh://git@h/x.git"), "ssh://git@h/x.git");
        assert_eq!(redact("ssh://git:pw@h/x.git"), "ssh://***@h/x.git");
        assert_eq!(redact("git@github.com:o/r.git"), "git@github.com:o/r.git");
        assert_eq!(redact("https://h/a@b"), "https://h/a@b");
    }

    #[test]
    fn url_secrets_move_out_of_the_url() {
        assert_eq!(
            split_userinfo("https://bob:p%40ss@h/x.git"),
            (
                "https://h/x.git".to_string(),
                Some(("bob".to_string(), "p@ss".to_string()))
            )
        );
        assert_eq!(
            split_userinfo("https://ghp_tok@h/x.git"),
            (
                "https://h/x.git".to_string(),
                Some(("x-access-token".to_string(), "ghp_tok".to_string()))
            )
        );
        assert_eq!(
            split_userinfo("ssh://git@h/x.git"),
            ("ssh://git@h/x.git".to_string(), None)
        );
    }

    #[test]
    fn the_ssh_command_pins_the_key_and_checks_host_keys() {
        assert_eq!(
            ssh_command(Path::new("/keys/id it's"), Some(Path::new("/kh"))),
            r"ssh -i '/keys/id it'\''s' -o IdentitiesOnly=yes -o BatchMode=yes -o StrictHostKeyChecking=yes -o UserKnownHostsFile='/kh'"
        );
    }

    #[test]
    fn secrets_do_not_show_in_debug_output() {
        let c = Credentials::Https {
            username: "u".into(),
            password: Secret::Value("tok3n".into()),
        };
        assert!(!format!("{c:?}").contains("tok3n"));
    }
}
