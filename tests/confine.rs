//! Reads confined to the source root: every way a manifest folder could
//! make `bosun validate` read a file outside itself is refused, with the
//! file and line that named it; `--allow-path` / `BOSUN_ALLOW_PATH` and
//! symlinks that stay inside are fine.

use std::os::unix::fs::symlink;
use std::path::{Path, PathBuf};

use tempfile::TempDir;

use super::support::cli::{self, Run};

const STACK: &str = "apiVersion: bosun.dev/v1alpha1
kind: Stack
metadata: {name: app}
spec:
  composeFiles: [compose.yml]
";

/// A temp dir holding the source root `root/` and an `outside/` folder
/// next to it (with `outside/secret.txt`).
struct Folder {
    tmp: TempDir,
}

impl Folder {
    fn new(files: &[(&str, &str)]) -> Self {
        let tmp = tempfile::tempdir().expect("temp dir");
        let folder = Folder { tmp };
        std::fs::create_dir_all(folder.root()).expect("mkdir");
        folder.write("outside/secret.txt", "s3cret\n");
        for (name, content) in files {
            folder.write(&format!("root/{name}"), content);
        }
        folder
    }

    fn write(&self, name: &str, content: &str) {
        let path = self.tmp.path().join(name);
        std::fs::create_dir_all(path.parent().expect("parent")).expect("mkdir");
        std::fs::write(path, content).expect("write");
    }

    fn link(&self, target: impl AsRef<Path>, name: &str) {
        let path = self.root().join(name);
        std::fs::create_dir_all(path.parent().expect("parent")).expect("mkdir");
        symlink(target, path).expect("symlink");
    }

    fn root(&self) -> PathBuf {
        self.tmp.path().join("root")
    }

    fn outside(&self) -> PathBuf {
        self.tmp.path().join("outside")
    }

    /// The canonical root, as messages name it.
    fn canonical_root(&self) -> String {
        self.root()
            .canonicalize()
            .expect("root")
            .display()
            .to_string()
    }
}

fn validate(dir: &Path, args: &[&str], env: &[(&str, &str)]) -> Run {
    let mut cmd = cli::bosun();
    cmd.args(args)
        .arg("validate")
        .arg(dir)
        .env_remove("BOSUN_ALLOW_PATH")
        .current_dir(env!("CARGO_MANIFEST_DIR"));
    for (k, v) in env {
        cmd.env(k, v);
    }
    cli::run(&mut cmd)
}

/// Validation fails with a diagnostic at `place` (`file:line`, the file
/// relative to the root) that says `fragment` and where it resolved.
fn assert_refused(folder: &Folder, run: &Run, place: &str, fragment: &str) {
    let outside = format!(
        "outside the source root {} (bosun reads only files inside it; allow more with --allow-path)",
        folder.canonical_root()
    );
    let line = run
        .stderr
        .lines()
        .find(|l| l.contains(&outside))
        .unwrap_or_else(|| panic!("no escape reported; stderr:\n{}", run.stderr));
    assert_eq!(run.code, Some(2), "stderr:\n{}", run.stderr);
    let place = format!("{}/{place}:", folder.root().display());
    assert!(line.starts_with(&place), "want {place}, got:\n{line}");
    assert!(line.contains(fragment), "want `{fragment}`, got:\n{line}");
    assert!(
        !run.stderr.contains("s3cret"),
        "the content leaked:\n{}",
        run.stderr
    );
}

fn compose_with_secret(file: &str) -> String {
    format!(
        "services:\n  db:\n    image: postgres:16\n    secrets: [db]\nsecrets:\n  db:\n    file: {file}\n"
    )
}

#[test]
fn a_compose_secret_with_an_absolute_file_outside_is_refused() {
    let folder = Folder::new(&[
        ("stack.yaml", STACK),
        ("compose.yml", &compose_with_secret("/etc/hostname")),
    ]);
    let run = validate(&folder.root(), &[], &[]);
    assert_refused(
        &folder,
        &run,
        "compose.yml:7",
        "secrets.db.file: \"/etc/hostname\" resolves to /etc/hostname, outside",
    );
}

#[test]
fn a_compose_config_with_an_absolute_file_outside_is_refused() {
    let compose = "services:\n  web:\n    image: nginx:1.27\n    configs: [site]\nconfigs:\n  site:\n    file: /etc/hostname\n";
    let folder = Folder::new(&[("stack.yaml", STACK), ("compose.yml", compose)]);
    let run = validate(&folder.root(), &[], &[]);
    assert_refused(
        &folder,
        &run,
        "compose.yml:7",
        "configs.site.file: \"/etc/hostname\" resolves to /etc/hostname",
    );
}

#[test]
fn a_secret_file_climbing_out_with_dot_dot_is_refused() {
    let folder = Folder::new(&[
        ("stack.yaml", STACK),
        ("compose.yml", &compose_with_secret("../outside/secret.txt")),
    ]);
    let run = validate(&folder.root(), &[], &[]);
    let resolved = folder.outside().canonicalize().unwrap().join("secret.txt");
    assert_refused(
        &folder,
        &run,
        "compose.yml:7",
        &format!(
            "\"../outside/secret.txt\" resolves to {}",
            resolved.display()
        ),
    );
}

#[test]
fn a_symlink_in_the_folder_to_a_host_file_is_refused_as_a_secret_file() {
    let folder = Folder::new(&[
        ("stack.yaml", STACK),
        ("compose.yml", &compose_with_secret("./hostname")),
    ]);
    folder.link("/etc/hostname", "hostname");
    let run = validate(&folder.root(), &[], &[]);
    assert_refused(
        &folder,
        &run,
        "compose.yml:7",
        "\"./hostname\" resolves to /etc/hostname",
    );
}

#[test]
fn a_symlinked_directory_component_pointing_outside_is_refused() {
    let folder = Folder::new(&[
        ("stack.yaml", STACK),
        ("compose.yml", &compose_with_secret("keys/secret.txt")),
    ]);
    folder.link(folder.outside(), "keys");
    let run = validate(&folder.root(), &[], &[]);
    assert_refused(
        &folder,
        &run,
        "compose.yml:7",
        "\"keys/secret.txt\" resolves to",
    );
}

#[test]
fn an_absolute_compose_file_outside_is_refused() {
    let folder = Folder::new(&[]);
    folder.write(
        "outside/compose.yml",
        "services:\n  web:\n    image: nginx:1.27\n",
    );
    let path = folder.outside().join("compose.yml");
    let stack = format!(
        "apiVersion: bosun.dev/v1alpha1\nkind: Stack\nmetadata: {{name: app}}\nspec:\n  composeFiles: [{}]\n",
        path.display()
    );
    folder.write("root/stack.yaml", &stack);
    let run = validate(&folder.root(), &[], &[]);
    assert_refused(
        &folder,
        &run,
        "stack.yaml:5",
        &format!(
            "Stack/app: spec.composeFiles[0]: \"{}\" resolves to",
            path.display()
        ),
    );
}

#[test]
fn a_compose_env_file_outside_is_refused() {
    let compose = "services:\n  web:\n    image: nginx:1.27\n    env_file: /etc/os-release\n";
    let folder = Folder::new(&[("stack.yaml", STACK), ("compose.yml", compose)]);
    let run = validate(&folder.root(), &[], &[]);
    let resolved = Path::new("/etc/os-release").canonicalize().unwrap();
    assert_refused(
        &folder,
        &run,
        "compose.yml:4",
        &format!(
            "services.web.env_file: \"/etc/os-release\" resolves to {}",
            resolved.display()
        ),
    );
}

#[test]
fn a_stack_env_file_outside_is_refused() {
    let stack = format!("{STACK}  envFiles: [../outside/secret.txt]\n");
    let folder = Folder::new(&[
        ("stack.yaml", &stack),
        ("compose.yml", "services:\n  web:\n    image: nginx:1.27\n"),
    ]);
    let run = validate(&folder.root(), &[], &[]);
    assert_refused(
        &folder,
        &run,
        "stack.yaml:6",
        "spec.envFiles[0]: \"../outside/secret.txt\" resolves to",
    );
}

#[test]
fn a_vip_password_file_outside_is_refused() {
    let vip = "apiVersion: bosun.dev/v1alpha1
kind: VipPolicy
metadata: {name: vip}
spec:
  address: 10.0.10.39/24
  interface: ens160
  virtualRouterId: 12
  auth: {passwordFile: ../outside/secret.txt}
";
    let folder = Folder::new(&[("vip.yaml", vip)]);
    let run = validate(&folder.root(), &[], &[]);
    assert_refused(
        &folder,
        &run,
        "vip.yaml:8",
        "spec.auth.passwordFile: \"../outside/secret.txt\" resolves to",
    );
}

#[test]
fn a_symlinked_manifest_pointing_outside_is_refused() {
    let folder = Folder::new(&[]);
    folder.write(
        "outside/net.yaml",
        "apiVersion: bosun.dev/v1alpha1\nkind: Network\nmetadata: {name: n}\nspec: {}\n",
    );
    folder.link(folder.outside().join("net.yaml"), "net.yaml");
    let run = validate(&folder.root(), &[], &[]);
    let outside = format!("outside the source root {}", folder.canonical_root());
    assert_eq!(run.code, Some(2), "stderr:\n{}", run.stderr);
    let line = run
        .stderr
        .lines()
        .find(|l| l.contains(&outside))
        .unwrap_or_else(|| panic!("stderr:\n{}", run.stderr));
    assert!(
        line.starts_with(&format!(
            "{}/net.yaml: error: symlink to",
            folder.root().display()
        )),
        "{line}"
    );
}

/// A folder whose stack reads `outside/secret.txt` by absolute path.
fn reaching_out() -> Folder {
    let folder = Folder::new(&[("stack.yaml", STACK)]);
    let file = folder.outside().join("secret.txt");
    folder.write(
        "root/compose.yml",
        &compose_with_secret(&file.display().to_string()),
    );
    folder
}

#[test]
fn allow_path_makes_a_file_outside_the_root_valid() {
    let folder = reaching_out();
    let outside = folder.outside().display().to_string();
    assert_eq!(validate(&folder.root(), &[], &[]).code, Some(2));
    let run = validate(&folder.root(), &["--allow-path", &outside], &[]);
    assert_eq!(run.code, Some(0), "stderr:\n{}", run.stderr);
    assert!(
        run.stdout.starts_with("valid: 1 manifest"),
        "{}",
        run.stdout
    );
    // As a global option it may also follow the command.
    let out = cli::bosun()
        .arg("validate")
        .arg(folder.root())
        .args(["--allow-path", &outside])
        .env_remove("BOSUN_ALLOW_PATH")
        .output()
        .expect("run bosun");
    assert_eq!(out.status.code(), Some(0));
}

#[test]
fn the_allow_path_env_var_takes_a_colon_separated_list() {
    let folder = reaching_out();
    let list = format!("/nonexistent/dir:{}", folder.outside().display());
    let run = validate(&folder.root(), &[], &[("BOSUN_ALLOW_PATH", &list)]);
    assert_eq!(run.code, Some(0), "stderr:\n{}", run.stderr);
    let run = validate(
        &folder.root(),
        &[],
        &[("BOSUN_ALLOW_PATH", "/nonexistent/dir")],
    );
    assert_eq!(run.code, Some(2), "stderr:\n{}", run.stderr);
}

#[test]
fn symlinks_that_stay_inside_the_root_are_fine() {
    let folder = Folder::new(&[
        ("stack.yaml", STACK),
        ("compose.yml", &compose_with_secret("linked/db.txt")),
        ("secrets/db.txt", "pw\n"),
        (
            // Hidden folders are not walked: only the link is a manifest.
            ".real/net.yaml",
            "apiVersion: bosun.dev/v1alpha1\nkind: Network\nmetadata: {name: n}\nspec: {}\n",
        ),
    ]);
    // A symlinked directory component and a symlinked manifest file, both
    // resolving inside; the root itself reached through a symlink.
    folder.link("secrets", "linked");
    folder.link(".real/net.yaml", "net-link.yaml");
    let via = folder.tmp.path().join("via");
    symlink(folder.root(), &via).expect("symlink");
    for dir in [folder.root(), via] {
        let run = validate(&dir, &[], &[]);
        assert_eq!(
            run.code,
            Some(0),
            "{}: stderr:\n{}",
            dir.display(),
            run.stderr
        );
    }
}

#[test]
fn the_error_names_the_compose_file_line_and_column_of_the_field() {
    let folder = Folder::new(&[
        ("stack.yaml", STACK),
        ("compose.yml", &compose_with_secret("/etc/hostname")),
    ]);
    let run = validate(&folder.root(), &[], &[]);
    let want = format!(
        "{}/compose.yml:7:11: error: Stack/app: secrets.db.file: \"/etc/hostname\" resolves to /etc/hostname, outside the source root {} (bosun reads only files inside it; allow more with --allow-path)",
        folder.root().display(),
        folder.canonical_root()
    );
    assert!(
        run.stderr.lines().any(|l| l == want),
        "want:\n{want}\nstderr:\n{}",
        run.stderr
    );
}
