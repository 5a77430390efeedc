//! `host-sim serve` refuses bad setups with an error that says what to do,
//! before it touches any network. (Serving through a real TAP device is
//! tested in `tap.rs`.)
//!
//! The no-privilege test must not create an interface even when the tests
//! run as root: it then runs `serve` as `nobody` (setpriv) inside a
//! throwaway network namespace (`unshare -n`), so nothing is left behind
//! whatever happens.

use std::process::{Command, Output};

const EXE: &str = env!("CARGO_BIN_EXE_host-sim");

fn serve(args: &[&str]) -> Output {
    Command::new(EXE)
        .arg("serve")
        .args(args)
        .output()
        .expect("run host-sim")
}

fn stderr(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

fn have(tool: &str) -> bool {
    Command::new(tool)
        .arg("--version")
        .output()
        .is_ok_and(|o| o.status.success())
}

#[test]
fn bad_interface_names_are_refused() {
    for name in ["", "way-too-long-name0", "a/b", "tap 0"] {
        let out = serve(&["--tap", name]);
        assert!(!out.status.success(), "{name:?} accepted");
        assert!(
            stderr(&out).contains("invalid interface name"),
            "{name:?}: {}",
            stderr(&out)
        );
    }
}

#[test]
fn bad_arguments_are_refused() {
    let cases: [(&[&str], &str); 5] = [
        (&["--ip", "192.168.69.1"], "expected an address/prefix"),
        (&["--host-ip", "nonsense"], "expected an address/prefix"),
        (
            &["--ip", "10.0.0.1/24", "--host-ip", "10.0.0.1/24"],
            "must differ",
        ),
        (&["--pool", "0"], "--pool must be from 1"),
        (&["--tcp-buffer", "1"], "--tcp-buffer must be from"),
    ];
    for (args, error) in cases {
        let out = serve(&[&["--tap", "smt-never"], args].concat());
        assert!(!out.status.success(), "{args:?} accepted");
        assert!(stderr(&out).contains(error), "{args:?}: {}", stderr(&out));
    }
}

#[test]
fn a_bad_users_file_is_reported_by_line() {
    let path =
        std::env::temp_dir().join(format!("host-sim-serve-users-{}.txt", std::process::id()));
    std::fs::write(&path, "# users\n\nalice:plaintext\n").expect("write");
    let out = serve(&[
        "--tap",
        "smt-never",
        "--users",
        path.to_str().expect("UTF-8"),
    ]);
    let _ = std::fs::remove_file(&path);
    assert!(!out.status.success());
    assert!(
        stderr(&out).contains(":3: expected user:scram-sha-256"),
        "{}",
        stderr(&out)
    );
}

#[test]
fn without_privilege_serve_prints_the_setup_commands() {
    // SAFETY: geteuid has no preconditions.
    let root = unsafe { libc::geteuid() } == 0;
    let tap = format!("smtnp{}", std::process::id() % 100_000);
    let out = if root {
        if !(have("unshare") && have("setpriv")) {
            assert!(
                std::env::var("CI").is_err(),
                "CI needs unshare and setpriv (util-linux) for this test"
            );
            eprintln!(
                "SKIPPED: running as root without unshare/setpriv, cannot drop the privilege safely"
            );
            return;
        }
        Command::new("unshare")
            .args([
                "-n",
                "setpriv",
                "--reuid=65534",
                "--regid=65534",
                "--clear-groups",
                "--inh-caps=-all",
            ])
            .args([EXE, "serve", "--tap", &tap])
            .output()
            .expect("run unshare")
    } else {
        serve(&["--tap", &tap])
    };
    assert!(
        !out.status.success(),
        "serve ran without privilege: {}",
        stderr(&out)
    );
    let err = stderr(&out);
    for line in [
        format!("sudo ip tuntap add name {tap} mode tap user $USER"),
        format!("sudo ip link set {tap} up"),
        format!("sudo ip addr add 192.168.69.100/24 dev {tap}"),
    ] {
        assert!(err.contains(&line), "missing {line:?} in:\n{err}");
    }
}
