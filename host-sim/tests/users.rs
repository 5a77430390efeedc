//! `host-sim add-user` end to end: the file it writes is one the core reads,
//! the password verifies, a second run replaces rather than duplicates,
//! and bad input changes nothing.

use std::io::Write;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

use smoltalk::login::store::{OwnedRecord, parse_line};

const EXE: &str = env!("CARGO_BIN_EXE_host-sim");

/// A directory of this test's own, removed on drop.
struct TempDir(PathBuf);

impl TempDir {
    fn new(name: &str) -> Self {
        let dir =
            std::env::temp_dir().join(format!("host-sim-users-{}-{name}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).expect("temp dir");
        TempDir(dir)
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

fn add_user(file: &Path, name: &str, stdin: &str, extra: &[&str]) -> Output {
    let mut child = Command::new(EXE)
        .args(["add-user", "--users"])
        .arg(file)
        .arg(name)
        .arg("--password-stdin")
        .args(extra)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("run host-sim");
    // add-user may refuse before it reads stdin (a bad name): then the pipe is closed.
    let _ = child
        .stdin
        .take()
        .expect("stdin")
        .write_all(stdin.as_bytes());
    child.wait_with_output().expect("wait")
}

fn records(file: &Path) -> Vec<OwnedRecord> {
    let text = std::fs::read_to_string(file).expect("users file");
    let lines = text
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty() && !l.starts_with('#'));
    lines
        .map(|l| parse_line(l).expect("every record parses"))
        .collect()
}

#[test]
fn add_user_round_trip() {
    let dir = TempDir::new("round-trip");
    let file = dir.0.join("users.txt");
    let out = add_user(&file, "李四", "s3cret\n", &["--iterations", "64"]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let said = String::from_utf8_lossy(&out.stdout) + String::from_utf8_lossy(&out.stderr);
    assert!(
        !said.contains("s3cret"),
        "the password is never printed: {said}"
    );

    let users = records(&file);
    assert_eq!(users.len(), 1);
    let r = users[0].as_record();
    assert_eq!((r.user, r.iterations), ("李四", 64));
    assert!(r.verify(b"s3cret"));
    assert!(
        !r.verify(b"s3cret\n"),
        "the newline is not part of the password"
    );
    let mode = std::fs::metadata(&file)
        .expect("metadata")
        .permissions()
        .mode();
    assert_eq!(mode & 0o077, 0, "a new users file is private: {mode:o}");

    // A second user is appended; the first one's new password replaces it.
    assert!(
        add_user(&file, "bob", "pw2\r\n", &["--iterations", "64"])
            .status
            .success()
    );
    assert!(
        add_user(&file, "李四", "changed\n", &["--iterations", "64"])
            .status
            .success()
    );
    let users = records(&file);
    let names: Vec<&str> = users.iter().map(|u| u.user.as_str()).collect();
    assert_eq!(names, ["李四", "bob"]);
    assert!(users[0].as_record().verify(b"changed"));
    assert!(users[1].as_record().verify(b"pw2"));
    // Each record has its own random salt.
    assert_ne!(users[0].salt, users[1].salt);
}

#[test]
fn bad_input_is_refused_and_changes_nothing() {
    let dir = TempDir::new("bad-input");
    let file = dir.0.join("users.txt");
    assert!(
        add_user(&file, "carol", "pw\n", &["--iterations", "8"])
            .status
            .success()
    );
    let before = std::fs::read(&file).expect("file");
    for (name, password, error) in [
        ("bad name", "pw\n", "invalid user name"),
        ("a:b", "pw\n", "invalid user name"),
        ("dave", "\n", "the password is empty"),
        ("dave", "two words\n", "spaces or control characters"),
        ("dave", "", "stdin is empty"),
    ] {
        let out = add_user(&file, name, password, &[]);
        assert!(
            !out.status.success(),
            "{name:?} / {password:?} was accepted"
        );
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(err.contains(error), "{name:?} / {password:?}: {err}");
    }
    assert_eq!(std::fs::read(&file).expect("file"), before);

    // A file with a line it cannot read is reported by line number and left alone.
    std::fs::write(&file, format!("{}oops\n", String::from_utf8_lossy(&before))).expect("write");
    let lines = String::from_utf8_lossy(&before).lines().count();
    let out = add_user(&file, "erin", "pw\n", &[]);
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains(&format!("users.txt:{}:", lines + 1)), "{err}");
    assert!(
        std::fs::read_to_string(&file)
            .expect("file")
            .ends_with("oops\n")
    );
}
