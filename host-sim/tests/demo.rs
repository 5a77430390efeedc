//! `host-sim demo` end to end: the built binary, its exit status and the
//! transcript lines a reader looks for. Needs no root and no network: the
//! demo's network is simulated inside the process.

use std::path::PathBuf;
use std::process::{Command, Output};

const EXE: &str = env!("CARGO_BIN_EXE_host-sim");

fn demo(args: &[&str]) -> Output {
    Command::new(EXE)
        .arg("demo")
        .args(args)
        .env_remove("RUST_LOG")
        .output()
        .expect("run host-sim")
}

fn stdout(out: &Output) -> String {
    String::from_utf8(out.stdout.clone()).expect("the transcript is UTF-8")
}

/// A file name of this test process's own, removed on drop.
struct TempFile(PathBuf);

impl TempFile {
    fn new(name: &str) -> Self {
        TempFile(std::env::temp_dir().join(format!("host-sim-{}-{name}", std::process::id())))
    }
}

impl Drop for TempFile {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.0);
    }
}

#[test]
fn demo_runs_every_service_and_says_so() {
    let out = demo(&[]);
    let text = stdout(&out);
    assert!(
        out.status.success(),
        "demo failed:\n{text}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    for line in [
        r#"client 1 → echo:7            "hello!""#,
        r#"client 1 → echo:8898         "hello!""#,
        r#"device → client 1            "hello!""#,
        "262144 bytes out, 262144 bytes back, byte-exact ✓",
        r#"client 1 → echo:9000/udp     "hello""#,
        r#"client 1 → login:8083        "LOGIN 张三 123\n""#,
        r#"device → client 1            "OK 张三\n""#,
        r#""ERR invalid user name or password\n""#,
        r#"device → client 1            "登录成功!""#,
        r#"device → client 1            "用户名或密码错误!""#,
        r#"device → client 2            "byebye\n""#,
        r#"device → client 3            "byebye""#,
        r#""Noted. Type help for topics. You said: you **""#,
        "the device now keeps 3 hotline sessions at once",
        "sessions   8 of 8 OK ✓",
    ] {
        assert!(text.contains(line), "missing {line:?} in:\n{text}");
    }
    assert!(!text.contains("✗"), "{text}");
    // The device's log stays out of the transcript unless RUST_LOG asks.
    assert!(!String::from_utf8_lossy(&out.stderr).contains("INFO"));
}

#[test]
fn demo_completes_on_a_lossy_link() {
    let out = demo(&["--loss", "0.2"]);
    let text = stdout(&out);
    assert!(out.status.success(), "demo --loss 0.2 failed:\n{text}");
    assert!(text.contains("20% of frames lost"), "{text}");
    assert!(text.contains("sessions   8 of 8 OK ✓"), "{text}");
    let dropped = text
        .lines()
        .find(|l| l.contains("frames "))
        .expect("a frames line");
    assert!(
        !dropped.ends_with(" 0 dropped"),
        "frames were lost: {dropped}"
    );
}

#[test]
fn the_same_seed_replays_the_same_run() {
    let a = stdout(&demo(&["--loss", "0.1", "--seed", "7"]));
    let b = stdout(&demo(&["--loss", "0.1", "--seed", "7"]));
    let frames = |t: &str| t.lines().find(|l| l.contains("frames ")).map(str::to_owned);
    assert_eq!(frames(&a), frames(&b));
}

#[test]
fn loss_outside_the_range_is_refused_clearly() {
    for loss in ["0.6", "-0.1", "NaN"] {
        let out = demo(&[&format!("--loss={loss}")]);
        assert!(!out.status.success(), "--loss {loss} was accepted");
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(
            err.contains("--loss must be between 0.0 and 0.5"),
            "--loss {loss}: {err}"
        );
    }
}

#[test]
fn pcap_capture_has_a_valid_header_and_frames() {
    let file = TempFile::new("demo.pcap");
    let path = file.0.to_str().expect("UTF-8 temp path");
    let out = demo(&["--pcap", path]);
    assert!(out.status.success(), "{}", stdout(&out));
    assert!(
        stdout(&out).contains("capture"),
        "the summary names the capture"
    );
    let pcap = std::fs::read(&file.0).expect("the capture exists");
    assert!(pcap.len() > 24 + 16, "header and at least one frame");
    let u32_at = |i: usize| u32::from_le_bytes(pcap[i..i + 4].try_into().expect("4 bytes"));
    assert_eq!(u32_at(0), 0xa1b2_c3d4, "pcap magic");
    assert_eq!((pcap[4], pcap[6]), (2, 4), "version 2.4");
    assert_eq!(u32_at(20), 1, "LINKTYPE_ETHERNET");
    // Walk every record: each is a 16-byte header and an Ethernet frame.
    let (mut at, mut frames) = (24, 0);
    while at < pcap.len() {
        let len = u32_at(at + 8) as usize;
        assert!((14..=1514).contains(&len), "frame {frames} is {len} bytes");
        at += 16 + len;
        frames += 1;
    }
    assert_eq!(at, pcap.len(), "the last record is complete");
    assert!(frames > 100, "only {frames} frames");
}

#[test]
fn an_unwritable_capture_is_a_clear_error() {
    let out = demo(&["--pcap", "/nonexistent-dir/x.pcap"]);
    assert!(!out.status.success());
    assert!(
        String::from_utf8_lossy(&out.stderr)
            .contains("cannot write the capture /nonexistent-dir/x.pcap")
    );
}
