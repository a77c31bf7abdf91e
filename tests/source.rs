//! Sources against real files and real git repositories: a folder watched
//! while editors' save patterns run over it, and a bare repository in a temp
//! dir as the git remote.

use std::fs;
use std::io::Write as _;
use std::os::unix::fs::PermissionsExt as _;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use bosun::source::dir::{self, Trigger};
use bosun::source::git::{self, Credentials, GitConfig, Reference, Secret};
use bosun::source::{DirSource, GitSource};
use tempfile::TempDir;

use crate::support::mount::Mount;

// ---------------------------------------------------------------- folders

/// A short window keeps the tests fast; editors' bursts take milliseconds.
const WINDOW: Duration = Duration::from_millis(150);

fn folder() -> (TempDir, PathBuf) {
    let tmp = tempfile::tempdir().expect("temp dir");
    let root = tmp.path().join("cluster");
    fs::create_dir_all(root.join("app")).expect("mkdir");
    fs::create_dir_all(root.join(".git/objects")).expect("mkdir .git");
    fs::write(root.join("stack.yaml"), "kind: Stack\n").expect("write");
    fs::write(root.join("app/docker-compose.yml"), "services: {}\n").expect("write");
    fs::write(root.join("app/.env"), "A=1\n").expect("write");
    (tmp, root)
}

fn watch(root: &Path) -> DirSource {
    DirSource::new(root, dir::Config::default().debounce(WINDOW)).expect("watch")
}

/// Every trigger until the folder has given none for a while (at most 4 s).
async fn triggers(source: &mut DirSource) -> Vec<Trigger> {
    let quiet = WINDOW * 5;
    let deadline = Instant::now() + Duration::from_secs(4);
    let mut out = Vec::new();
    while Instant::now() < deadline {
        match tokio::time::timeout(quiet, source.changed()).await {
            Ok(Some(t)) => out.push(t),
            Ok(None) | Err(_) => break,
        }
    }
    out
}

fn assert_one(triggers: &[Trigger], pattern: &str) {
    assert_eq!(
        triggers.len(),
        1,
        "{pattern}: expected exactly one trigger, got {triggers:#?}"
    );
}

#[tokio::test]
async fn dir_source_gives_one_trigger_for_a_temp_file_renamed_over_the_target() {
    let (_tmp, root) = folder();
    let mut source = watch(&root);
    fs::write(root.join("stack.yaml.tmp.81723"), "kind: Stack\n# v2\n").expect("write");
    fs::rename(root.join("stack.yaml.tmp.81723"), root.join("stack.yaml")).expect("rename");
    let t = triggers(&mut source).await;
    assert_one(&t, "temp file + rename");
    assert!(t[0].paths.contains(Path::new("stack.yaml")), "{t:?}");
}

#[tokio::test]
async fn dir_source_gives_one_trigger_for_a_vim_save() {
    let (_tmp, root) = folder();
    let mut source = watch(&root);
    // vim opens the file: the swap file appears and is written to.
    fs::write(root.join(".stack.yaml.swp"), b"b0VIM 9.0").expect("swp");
    tokio::time::sleep(WINDOW * 3).await;
    // :w with backupcopy=no — probe, backup by rename, write, drop backup.
    fs::write(root.join("4913"), b"").expect("probe");
    fs::remove_file(root.join("4913")).expect("probe rm");
    fs::rename(root.join("stack.yaml"), root.join("stack.yaml~")).expect("backup");
    fs::write(root.join("stack.yaml"), "kind: Stack\n# saved by vim\n").expect("write");
    fs::remove_file(root.join("stack.yaml~")).expect("backup rm");
    fs::write(root.join(".stack.yaml.swp"), b"b0VIM 9.0 saved").expect("swp");
    let t = triggers(&mut source).await;
    assert_one(&t, "vim save");
    assert!(
        t[0].paths
            .iter()
            .all(|p| p == Path::new("stack.yaml") || p.as_os_str().is_empty()),
        "only the manifest is reported: {t:?}"
    );
}

#[tokio::test]
async fn dir_source_gives_one_trigger_for_an_atomic_replace_from_a_hidden_folder() {
    let (_tmp, root) = folder();
    fs::create_dir_all(root.join(".tmp")).expect("mkdir");
    let mut source = watch(&root);
    let staged = root.join(".tmp/compose.new");
    fs::write(&staged, "services: {web: {image: nginx}}\n").expect("write");
    fs::rename(&staged, root.join("app/docker-compose.yml")).expect("rename");
    assert_one(&triggers(&mut source).await, "atomic replace");
}

#[tokio::test]
async fn dir_source_gives_one_trigger_for_a_truncate_and_write_in_pieces() {
    let (_tmp, root) = folder();
    let mut source = watch(&root);
    let mut f = fs::OpenOptions::new()
        .write(true)
        .truncate(true)
        .open(root.join("stack.yaml"))
        .expect("open");
    f.write_all(b"kind: Stack\n").expect("write");
    f.sync_all().expect("sync");
    tokio::time::sleep(WINDOW / 3).await;
    f.write_all(b"metadata: {name: x}\n").expect("write");
    drop(f);
    assert_one(&triggers(&mut source).await, "truncate + write");
}

#[tokio::test]
async fn dir_source_gives_one_trigger_when_many_files_are_saved_at_once() {
    let (_tmp, root) = folder();
    let mut source = watch(&root);
    for i in 0..8 {
        fs::write(root.join(format!("net-{i}.yaml")), format!("n: {i}\n")).expect("write");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    fs::create_dir_all(root.join("new/deeper")).expect("mkdir");
    fs::write(root.join("new/deeper/stack.yaml"), "kind: Stack\n").expect("write");
    fs::write(root.join("app/.env"), "A=2\n").expect("write");
    fs::remove_file(root.join("stack.yaml")).expect("rm");
    let t = triggers(&mut source).await;
    assert_one(&t, "save all");
    assert!(t[0].paths.contains(Path::new("app/.env")), "{t:?}");
    // Files made inside a new folder may be reported as the folder.
    assert!(
        t[0].paths.contains(Path::new("new"))
            || t[0].paths.contains(Path::new("new/deeper/stack.yaml")),
        "{t:?}"
    );
}

#[tokio::test]
async fn dir_source_gives_one_trigger_per_burst_for_separate_bursts() {
    let (_tmp, root) = folder();
    let mut source = watch(&root);
    fs::write(root.join("stack.yaml"), "v: 2\n").expect("write");
    let first = source.changed().await.expect("a first trigger");
    assert!(first.paths.contains(Path::new("stack.yaml")));
    fs::write(root.join("stack.yaml"), "v: 3\n").expect("write");
    fs::create_dir_all(root.join("later")).expect("mkdir");
    assert_one(&triggers(&mut source).await, "second burst");
    // The new folder is watched too.
    fs::write(root.join("later/stack.yaml"), "v: 4\n").expect("write");
    let t = triggers(&mut source).await;
    assert_one(&t, "third burst, in a new folder");
    assert!(t[0].paths.contains(Path::new("later/stack.yaml")), "{t:?}");
}

#[tokio::test]
async fn dir_source_ignores_git_internals_swap_files_and_its_own_reads() {
    let (_tmp, root) = folder();
    let mut source = watch(&root);
    fs::write(root.join(".git/objects/ab12"), b"blob").expect("write");
    fs::write(root.join(".git/index.lock"), b"x").expect("write");
    fs::rename(root.join(".git/index.lock"), root.join(".git/index")).expect("rename");
    fs::create_dir_all(root.join(".git/refs/heads")).expect("mkdir");
    fs::write(root.join("app/.docker-compose.yml.swp"), b"swap").expect("swp");
    fs::write(root.join("app/docker-compose.yml~"), b"backup").expect("backup");
    fs::write(root.join("4913"), b"").expect("probe");
    fs::remove_file(root.join("4913")).expect("probe rm");
    // Loading the manifests (here: hashing them) reads every file.
    source.revision().expect("revision");
    let _ = fs::read_to_string(root.join("stack.yaml")).expect("read");
    let t = triggers(&mut source).await;
    assert!(t.is_empty(), "nothing that matters changed: {t:#?}");
}

#[tokio::test]
async fn dir_source_triggers_as_a_stream() {
    use futures::StreamExt as _;
    let (_tmp, root) = folder();
    let mut source = watch(&root);
    fs::write(root.join("stack.yaml"), "v: 2\n").expect("write");
    let next = tokio::time::timeout(Duration::from_secs(3), source.triggers().next()).await;
    assert!(matches!(next, Ok(Some(_))), "{next:?}");
}

#[test]
fn dir_revision_hashes_content_and_paths_but_not_git_or_swap_files() {
    let (_tmp, root) = folder();
    let r1 = dir::revision(&root).expect("revision");
    assert_eq!(r1.len(), 12, "{r1}");
    assert!(r1.bytes().all(|b| b.is_ascii_hexdigit()), "{r1}");
    assert_eq!(dir::revision(&root).expect("revision"), r1, "stable");
    fs::write(root.join(".git/objects/ff"), b"x").expect("write");
    fs::write(root.join(".stack.yaml.swp"), b"x").expect("write");
    fs::write(root.join("stack.yaml~"), b"x").expect("write");
    assert_eq!(dir::revision(&root).expect("revision"), r1, "ignored files");
    fs::write(root.join("app/.env"), "A=2\n").expect("write");
    let r2 = dir::revision(&root).expect("revision");
    assert_ne!(r2, r1, ".env counts");
    fs::rename(root.join("app/.env"), root.join("app/other.env")).expect("rename");
    assert_ne!(dir::revision(&root).expect("revision"), r2, "paths count");
}

#[test]
fn dir_revision_does_not_follow_a_symlink_out_of_the_folder() {
    let (_tmp, root) = folder();
    let outside = tempfile::tempdir().expect("tempdir");
    fs::write(outside.path().join("key"), "one").expect("write");
    std::os::unix::fs::symlink(outside.path(), root.join("host")).expect("link");
    let r1 = dir::revision(&root).expect("revision");
    // What is out there is not read: changing it changes nothing.
    fs::write(outside.path().join("key"), "two").expect("write");
    fs::write(outside.path().join("more"), "x").expect("write");
    assert_eq!(dir::revision(&root).expect("revision"), r1);
    // Where the link points is part of the folder's content.
    fs::remove_file(root.join("host")).expect("rm");
    std::os::unix::fs::symlink("/", root.join("host")).expect("link");
    assert_ne!(dir::revision(&root).expect("revision"), r1);
    // A link inside the folder is still followed.
    std::os::unix::fs::symlink(root.join("app"), root.join("app-link")).expect("link");
    let r3 = dir::revision(&root).expect("revision");
    fs::write(root.join("app/.env"), "A=3\n").expect("write");
    assert_ne!(dir::revision(&root).expect("revision"), r3);
}

#[test]
fn dir_source_of_a_missing_folder_names_it() {
    let err = DirSource::new("/nonexistent/bosun/cluster", dir::Config::default())
        .expect_err("missing folder");
    assert!(
        err.to_string().contains("/nonexistent/bosun/cluster"),
        "{err}"
    );
}

// ---------------------------------------------------------------- git

/// A bare repository as the remote, and a work clone that pushes to it.
struct Remote {
    tmp: TempDir,
}

fn git_in(dir: &Path, args: &[&str]) -> String {
    let out = Command::new("git")
        .arg("-C")
        .arg(dir)
        .args(["-c", "user.name=Test", "-c", "user.email=test@example.org"])
        .args([
            "-c",
            "init.defaultBranch=main",
            "-c",
            "commit.gpgSign=false",
        ])
        .args(args)
        .env("GIT_CONFIG_GLOBAL", "/dev/null")
        .env("GIT_CONFIG_NOSYSTEM", "1")
        .output()
        .expect("git runs");
    assert!(
        out.status.success(),
        "git {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).trim().to_string()
}

impl Remote {
    fn new() -> Self {
        let tmp = tempfile::tempdir().expect("temp dir");
        fs::create_dir_all(tmp.path().join("remote.git")).expect("mkdir");
        fs::create_dir_all(tmp.path().join("work")).expect("mkdir");
        git_in(
            &tmp.path().join("remote.git"),
            &["init", "--quiet", "--bare"],
        );
        let work = tmp.path().join("work");
        git_in(&work, &["init", "--quiet"]);
        git_in(&work, &["checkout", "--quiet", "-b", "main"]);
        let url = format!("file://{}", tmp.path().join("remote.git").display());
        git_in(&work, &["remote", "add", "origin", &url]);
        Remote { tmp }
    }

    fn url(&self) -> String {
        format!("file://{}", self.tmp.path().join("remote.git").display())
    }

    fn work(&self) -> PathBuf {
        self.tmp.path().join("work")
    }

    fn checkout(&self) -> PathBuf {
        self.tmp.path().join("checkout")
    }

    /// Write files (empty content: delete), commit, push main; the SHA.
    fn commit(&self, files: &[(&str, &str)], message: &str) -> String {
        let work = self.work();
        for (path, content) in files {
            let p = work.join(path);
            if content.is_empty() {
                let _ = fs::remove_file(&p);
            } else {
                fs::create_dir_all(p.parent().expect("parent")).expect("mkdir");
                fs::write(&p, content).expect("write");
            }
        }
        git_in(&work, &["add", "-A"]);
        git_in(&work, &["commit", "--quiet", "-m", message]);
        git_in(
            &work,
            &["push", "--quiet", "--force", "origin", "HEAD:main"],
        );
        git_in(&work, &["rev-parse", "HEAD"])
    }

    fn source(&self, reference: Reference) -> GitSource {
        GitSource::new(GitConfig::new(self.url(), self.checkout()).reference(reference))
            .expect("git source")
    }
}

fn main_branch() -> Reference {
    Reference::Branch("main".to_string())
}

#[tokio::test]
async fn git_source_checks_out_the_branch_tip_and_follows_new_pushes() {
    let remote = Remote::new();
    let a = remote.commit(&[("cluster/stack.yaml", "v: a\n")], "A");
    let mut source = remote.source(main_branch());
    let synced = source.sync().await.expect("first sync");
    assert_eq!(synced.revision, a);
    assert!(synced.changed);
    assert_eq!(synced.dir, remote.checkout());
    let again = source.sync().await.expect("second sync");
    assert_eq!(again.revision, a);
    assert!(!again.changed, "same commit: not changed");

    let b = remote.commit(
        &[
            ("cluster/stack.yaml", "v: b\n"),
            ("cluster/net.yaml", "n: 1\n"),
        ],
        "B",
    );
    let synced = source.sync().await.expect("sync after push");
    assert_eq!(synced.revision, b);
    assert!(synced.changed);
    assert_eq!(
        fs::read_to_string(remote.checkout().join("cluster/stack.yaml")).expect("read"),
        "v: b\n"
    );
    assert!(remote.checkout().join("cluster/net.yaml").is_file());
    assert_eq!(source.revision(), Some(b.as_str()));
}

#[tokio::test]
async fn git_source_checks_out_a_tag_and_follows_it_when_moved() {
    let remote = Remote::new();
    let a = remote.commit(&[("s.yaml", "v: a\n")], "A");
    git_in(&remote.work(), &["tag", "-a", "-m", "release", "v1"]);
    git_in(&remote.work(), &["push", "--quiet", "origin", "v1"]);
    let _b = remote.commit(&[("s.yaml", "v: b\n")], "B");
    let mut source = remote.source(Reference::parse("refs/tags/v1"));
    let synced = source.sync().await.expect("sync tag");
    assert_eq!(synced.revision, a, "the annotated tag is peeled to A");
    assert_eq!(
        fs::read_to_string(remote.checkout().join("s.yaml")).expect("read"),
        "v: a\n"
    );
    git_in(&remote.work(), &["tag", "-f", "-a", "-m", "moved", "v1"]);
    git_in(
        &remote.work(),
        &["push", "--quiet", "--force", "origin", "v1"],
    );
    let head = git_in(&remote.work(), &["rev-parse", "HEAD"]);
    assert_eq!(source.sync().await.expect("sync moved tag").revision, head);
}

#[tokio::test]
async fn git_source_takes_a_bare_ref_as_the_branch_else_the_tag() {
    let remote = Remote::new();
    let a = remote.commit(&[("s.yaml", "v: a\n")], "A");
    git_in(&remote.work(), &["tag", "-a", "-m", "release", "v1.0"]);
    git_in(&remote.work(), &["push", "--quiet", "origin", "v1.0"]);
    let b = remote.commit(&[("s.yaml", "v: b\n")], "B");
    // `--ref v1.0`: no such branch, so the tag (peeled to A).
    let mut tagged = remote.source(Reference::parse("v1.0"));
    assert_eq!(tagged.sync().await.expect("sync v1.0").revision, a);
    assert_eq!(tagged.sync().await.expect("sync again").revision, a);
    // `--ref main`: the branch, followed as it moves.
    let mut source = GitSource::new(
        GitConfig::new(remote.url(), remote.tmp.path().join("main"))
            .reference(Reference::parse("main")),
    )
    .expect("source");
    assert_eq!(source.sync().await.expect("sync main").revision, b);
    let c = remote.commit(&[("s.yaml", "v: c\n")], "C");
    assert_eq!(source.sync().await.expect("sync moved main").revision, c);
    // Neither a branch nor a tag.
    let mut missing = GitSource::new(
        GitConfig::new(remote.url(), remote.tmp.path().join("missing"))
            .reference(Reference::parse("v9")),
    )
    .expect("source");
    let err = missing.sync().await.expect_err("no v9");
    assert!(
        matches!(err, git::Error::RefNotFound { .. }) && err.to_string().contains("v9"),
        "{err}"
    );
}

#[tokio::test]
async fn git_source_checks_out_a_commit_by_sha() {
    let remote = Remote::new();
    let a = remote.commit(&[("s.yaml", "v: a\n")], "A");
    let _b = remote.commit(&[("s.yaml", "v: b\n")], "B");
    let mut source = remote.source(Reference::parse(&a));
    assert_eq!(source.sync().await.expect("sync sha").revision, a);
    assert_eq!(
        fs::read_to_string(remote.checkout().join("s.yaml")).expect("read"),
        "v: a\n"
    );
    let missing = "0".repeat(40);
    let mut source = GitSource::new(
        GitConfig::new(remote.url(), remote.tmp.path().join("other"))
            .reference(Reference::Commit(missing.clone())),
    )
    .expect("source");
    let err = source.sync().await.expect_err("no such commit");
    assert!(
        matches!(err, git::Error::RefNotFound { .. }) && err.to_string().contains(&missing),
        "{err}"
    );
}

#[tokio::test]
async fn git_source_serves_the_configured_subdirectory() {
    let remote = Remote::new();
    remote.commit(
        &[
            ("clusters/prod/stack.yaml", "v: prod\n"),
            ("clusters/dev/stack.yaml", "v: dev\n"),
        ],
        "A",
    );
    let mut source = GitSource::new(
        GitConfig::new(remote.url(), remote.checkout())
            .reference(main_branch())
            .path("clusters/prod"),
    )
    .expect("source");
    let synced = source.sync().await.expect("sync");
    assert_eq!(synced.dir, remote.checkout().join("clusters/prod"));
    assert!(synced.dir.join("stack.yaml").is_file());

    let mut missing = GitSource::new(
        GitConfig::new(remote.url(), remote.tmp.path().join("other")).path("clusters/staging"),
    )
    .expect("source");
    let err = missing.sync().await.expect_err("no such folder");
    assert!(
        matches!(err, git::Error::PathNotFound { .. })
            && err.to_string().contains("clusters/staging"),
        "{err}"
    );
    let escape = GitSource::new(GitConfig::new(remote.url(), remote.checkout()).path("../etc"));
    assert!(
        matches!(escape, Err(git::Error::InvalidConfig { .. })),
        "{escape:?}"
    );
}

#[tokio::test]
async fn git_source_follows_force_pushed_history_and_removes_stray_files() {
    let remote = Remote::new();
    let a = remote.commit(&[("s.yaml", "v: a\n")], "A");
    let _b = remote.commit(&[("s.yaml", "v: b\n"), ("extra.yaml", "x: 1\n")], "B");
    let mut source = remote.source(main_branch());
    source.sync().await.expect("sync B");
    // Someone edits the checkout by hand.
    fs::write(remote.checkout().join("s.yaml"), "v: hacked\n").expect("write");
    fs::write(remote.checkout().join("untracked.yaml"), "u: 1\n").expect("write");
    // History is rewritten: main goes back to A, then C on top.
    git_in(&remote.work(), &["reset", "--quiet", "--hard", &a]);
    let c = remote.commit(&[("c.yaml", "c: 1\n")], "C");
    let synced = source.sync().await.expect("sync after force-push");
    assert_eq!(synced.revision, c);
    let co = remote.checkout();
    assert_eq!(
        fs::read_to_string(co.join("s.yaml")).expect("read"),
        "v: a\n"
    );
    assert!(!co.join("extra.yaml").exists(), "B's file is gone");
    assert!(!co.join("untracked.yaml").exists(), "stray file removed");
    assert!(co.join("c.yaml").is_file());
}

#[tokio::test]
async fn git_source_reports_a_missing_branch_by_name() {
    let remote = Remote::new();
    remote.commit(&[("s.yaml", "v: a\n")], "A");
    let mut source = remote.source(Reference::Branch("nope".to_string()));
    let err = source.sync().await.expect_err("no such branch");
    let text = err.to_string();
    assert!(
        matches!(err, git::Error::RefNotFound { .. }) && text.contains("branch nope"),
        "{text}"
    );
}

#[tokio::test]
async fn git_source_reports_an_unreachable_remote_with_gits_reason() {
    let tmp = tempfile::tempdir().expect("temp dir");
    let url = format!("file://{}/missing.git", tmp.path().display());
    let mut source = GitSource::new(GitConfig::new(&url, tmp.path().join("co"))).expect("source");
    let err = source.sync().await.expect_err("no remote");
    let text = err.to_string();
    assert!(text.contains("fetch"), "names the operation: {text}");
    assert!(text.contains(&url), "names the URL: {text}");
    assert!(
        text.contains("does not appear to be a git repository")
            || text.contains("Could not read from remote"),
        "carries git's stderr: {text}"
    );
}

#[tokio::test]
async fn git_source_refuses_a_checkout_folder_that_is_not_its_own() {
    let remote = Remote::new();
    remote.commit(&[("s.yaml", "v: a\n")], "A");
    fs::create_dir_all(remote.checkout()).expect("mkdir");
    fs::write(remote.checkout().join("precious.txt"), "keep me").expect("write");
    let err = remote
        .source(main_branch())
        .sync()
        .await
        .expect_err("refused");
    assert!(matches!(err, git::Error::InvalidConfig { .. }), "{err}");
    assert!(remote.checkout().join("precious.txt").is_file());
}

/// A `MakeWriter` that keeps everything logged.
#[derive(Clone, Default)]
struct Captured(Arc<Mutex<Vec<u8>>>);

impl std::io::Write for Captured {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl Captured {
    fn text(&self) -> String {
        String::from_utf8_lossy(
            &self
                .0
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner),
        )
        .into_owned()
    }
}

#[tokio::test]
async fn git_source_never_shows_a_token_from_the_url_in_errors_or_logs() {
    const TOKEN: &str = "ghp_s3cr3tT0kenValue";
    let logs = Captured::default();
    let writer = logs.clone();
    let subscriber = tracing_subscriber::fmt()
        .with_max_level(tracing::Level::TRACE)
        .with_writer(move || writer.clone())
        .finish();
    let _guard = tracing::subscriber::set_default(subscriber);

    let tmp = tempfile::tempdir().expect("temp dir");
    // Port 1 on localhost: connection refused, quickly.
    let url = format!("https://deploy:{TOKEN}@127.0.0.1:1/org/cluster.git");
    let mut source = GitSource::new(
        GitConfig::new(&url, tmp.path().join("co")).timeout(Duration::from_secs(20)),
    )
    .expect("source");
    assert!(!source.url().contains(TOKEN), "{}", source.url());
    assert!(!format!("{source:?}").contains(TOKEN), "{source:?}");
    let err = source.sync().await.expect_err("unreachable");
    let text = format!("{err} / {err:?}");
    assert!(text.contains("127.0.0.1:1"), "names the host: {text}");
    assert!(!text.contains(TOKEN), "token in the error: {text}");
    let logged = logs.text();
    assert!(!logged.contains(TOKEN), "token in the logs: {logged}");
    // Neither on disk: not in the checkout's git config, not in the helper.
    let config = fs::read_to_string(tmp.path().join("co/.git/config")).expect("config");
    assert!(!config.contains(TOKEN), "{config}");
    let helper = fs::read_to_string(tmp.path().join("co/.git/bosun-askpass")).expect("askpass");
    assert!(!helper.contains(TOKEN), "{helper}");
    let mode = fs::metadata(tmp.path().join("co/.git/bosun-askpass"))
        .expect("askpass")
        .permissions()
        .mode();
    assert_eq!(mode & 0o777, 0o700);
}

/// One HTTP exchange pair: a 401 asking for basic auth, then whatever the
/// client sends with credentials is recorded and answered 404.
async fn basic_auth_server() -> (String, tokio::task::JoinHandle<Vec<String>>) {
    use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let addr = listener.local_addr().expect("addr");
    let task = tokio::spawn(async move {
        let mut seen = Vec::new();
        for _ in 0..4 {
            let Ok(Ok((mut conn, _))) =
                tokio::time::timeout(Duration::from_secs(5), listener.accept()).await
            else {
                break;
            };
            let mut buf = vec![0u8; 16384];
            let n = conn.read(&mut buf).await.unwrap_or(0);
            let request = String::from_utf8_lossy(&buf[..n]).into_owned();
            let auth = request
                .lines()
                .find_map(|l| l.strip_prefix("Authorization: "))
                .map(str::to_string);
            let response = if let Some(auth) = auth {
                seen.push(auth);
                "HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"
            } else {
                "HTTP/1.1 401 Unauthorized\r\nWWW-Authenticate: Basic realm=\"git\"\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"
            };
            let _ = conn.write_all(response.as_bytes()).await;
            let _ = conn.shutdown().await;
            if !seen.is_empty() {
                break;
            }
        }
        seen
    });
    (format!("http://{addr}/org/cluster.git"), task)
}

#[tokio::test]
async fn git_source_answers_http_auth_from_a_password_file_via_askpass() {
    use base64::Engine as _;
    let (url, server) = basic_auth_server().await;
    let tmp = tempfile::tempdir().expect("temp dir");
    let password = tmp.path().join("token");
    fs::write(&password, "file-t0ken\n").expect("write");
    let mut source = GitSource::new(GitConfig::new(&url, tmp.path().join("co")).credentials(
        Credentials::Https {
            username: "bosun".to_string(),
            password: Secret::File(password),
        },
    ))
    .expect("source");
    let err = source
        .sync()
        .await
        .expect_err("the server has no repository");
    assert!(!err.to_string().contains("file-t0ken"), "{err}");
    let seen = server.await.expect("server");
    let expected = format!(
        "Basic {}",
        base64::engine::general_purpose::STANDARD.encode("bosun:file-t0ken")
    );
    assert_eq!(seen, vec![expected]);
}

/// Bytes that do not compress (git stores objects deflated).
fn noise(len: usize) -> String {
    let mut x: u64 = 0x9e37_79b9_7f4a_7c15;
    (0..len)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            char::from(b'!' + (x % 90) as u8)
        })
        .collect()
}

#[tokio::test]
async fn a_checkout_that_cannot_be_written_fails_naming_the_folder_and_keeps_the_last_revision() {
    let remote = Remote::new();
    let a = remote.commit(&[("cluster/stack.yaml", "v: a\n")], "A");
    let mut source = remote.source(main_branch());
    source.sync().await.expect("first sync");
    let _ro = Mount::read_only(&remote.checkout());
    remote.commit(&[("cluster/stack.yaml", "v: b\n")], "B");
    let err = source.sync().await.expect_err("read-only checkout");
    let text = err.to_string();
    assert!(
        text.contains(&remote.checkout().display().to_string()),
        "the error names the checkout folder: {text}"
    );
    assert!(text.to_lowercase().contains("read-only"), "{text}");
    assert_eq!(
        source.revision(),
        Some(a.as_str()),
        "the last good revision"
    );
    assert_eq!(
        fs::read_to_string(remote.checkout().join("cluster/stack.yaml")).expect("read"),
        "v: a\n"
    );
}

#[tokio::test]
async fn a_full_disk_while_fetching_fails_naming_the_folder_and_keeps_the_last_revision() {
    let remote = Remote::new();
    let a = remote.commit(&[("cluster/stack.yaml", "v: a\n")], "A");
    let _disk = Mount::small_disk(&remote.checkout(), "512k");
    let mut source = remote.source(main_branch());
    source.sync().await.expect("first sync fits");
    remote.commit(&[("cluster/big.txt", &noise(2 << 20))], "B: 2 MiB");
    let err = source.sync().await.expect_err("the disk is full");
    let text = err.to_string();
    assert!(
        text.contains(&remote.checkout().display().to_string()),
        "the error names the checkout folder: {text}"
    );
    assert!(
        text.contains("No space left") || text.contains("unable to write"),
        "{text}"
    );
    assert_eq!(
        source.revision(),
        Some(a.as_str()),
        "the last good revision"
    );
}

#[tokio::test]
async fn git_source_a_committed_symlink_out_of_the_checkout_is_refused_at_load() {
    use bosun::controller::pass;
    use bosun::source::Confinement;

    let remote = Remote::new();
    let stack = "apiVersion: bosun.dev/v1alpha1\nkind: Stack\nmetadata: {name: app}\nspec:\n  composeFiles: [../../shared/compose.yml]\n";
    let compose = |file: &str| {
        format!(
            "services:\n  db:\n    image: postgres:16\n    secrets: [db]\nsecrets:\n  db:\n    file: {file}\n"
        )
    };
    remote.commit(
        &[
            ("clusters/prod/stack.yaml", stack),
            ("shared/compose.yml", &compose("db.txt")),
            ("shared/db.txt", "pw\n"),
        ],
        "A",
    );
    let load = |dir: &Path| {
        // As the runner does for a git source: the whole checkout is the root.
        let confine = Confinement::new(remote.checkout());
        pass::load_confined(dir, &confine, &std::collections::BTreeMap::new(), None)
    };
    let mut source = GitSource::new(
        GitConfig::new(remote.url(), remote.checkout())
            .reference(main_branch())
            .path("clusters/prod"),
    )
    .expect("source");
    let synced = source.sync().await.expect("sync");
    // Files elsewhere in the repository are inside the root.
    assert!(load(&synced.dir).is_ok(), "{:?}", load(&synced.dir).err());

    // A commit swaps the secret for a symlink to a host file.
    std::os::unix::fs::symlink("/etc/hostname", remote.work().join("shared/host")).expect("link");
    remote.commit(&[("shared/compose.yml", &compose("host"))], "B");
    let synced = source.sync().await.expect("sync B");
    assert!(
        fs::symlink_metadata(remote.checkout().join("shared/host"))
            .expect("checked out")
            .is_symlink()
    );
    let err = load(&synced.dir).expect_err("escape refused");
    assert!(
        err.contains(
            "secrets.db.file: \"host\" resolves to /etc/hostname, outside the source root"
        ),
        "{err}"
    );

    // The manifest folder itself a symlink out of the checkout.
    fs::remove_dir_all(remote.work().join("clusters/prod")).expect("rm");
    std::os::unix::fs::symlink("/etc", remote.work().join("clusters/prod")).expect("link");
    remote.commit(&[], "C");
    let synced = source.sync().await.expect("sync C");
    let err = load(&synced.dir).expect_err("escape refused");
    assert!(
        err.contains("the manifest folder resolves to /etc, outside the source root"),
        "{err}"
    );
}
