//! CI's short soak: `host-sim soak --duration 10 --target tap --svg FILE`,
//! which runs `serve --tap` in a private network namespace of its own and
//! churns clients through every service inside it. It must finish with no
//! error, every service served, nothing left in use by `serve`'s own
//! account, and a well-formed SVG plot.
//!
//! Needs root, `ip` (iproute2) and `/dev/net/tun`. With `CI=true` a missing
//! one is a failure; elsewhere the test is skipped with a loud message.
//! The soak is bounded in time (stopped with SIGINT, by PID, past
//! [`BOUND`]), and it deletes its namespace itself.

#[allow(dead_code)]
#[path = "../src/bench/netns.rs"]
mod netns;

use std::io::Write;
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

use nix::sys::signal::{Signal, kill};
use nix::unistd::Pid;

const EXE: &str = env!("CARGO_BIN_EXE_host-sim");

/// The soak's length, in seconds.
const DURATION: &str = "10";

/// How long the whole command may take: the churn, `serve`'s start and
/// stop, and a session's worst case past the deadline.
const BOUND: Duration = Duration::from_secs(90);

/// The services of the report, each of which must have served sessions.
const SERVICES: [&str; 7] = [
    "tcp echo",
    "udp echo",
    "login scram",
    "login line",
    "login dict",
    "chat",
    "hotline",
];

/// Whether this machine can run the test; under CI a missing prerequisite
/// fails it: a skipped soak must not look like a pass.
fn can_run() -> bool {
    let Some(why) = netns::missing_prerequisite() else {
        return true;
    };
    if std::env::var("CI").is_ok_and(|v| v == "true") {
        panic!("the TAP soak {why}, and CI=true: failing rather than skipping");
    }
    // Straight to stderr: the harness captures `eprintln!`.
    let _ = writeln!(
        std::io::stderr(),
        "\n!!!!!!!! SKIPPED: the TAP soak {why} !!!!!!!!\n"
    );
    false
}

/// Runs `host-sim ARGS`, stopping it with SIGINT past [`BOUND`] (it then
/// reports and cleans up) and with SIGKILL 15 s after that.
fn run_bounded(args: &[&str]) -> Output {
    let dir = std::env::temp_dir();
    let n = std::process::id();
    let (out_path, err_path) = (
        dir.join(format!("soak-test-{n}.out")),
        dir.join(format!("soak-test-{n}.err")),
    );
    let mut child = Command::new(EXE)
        .args(args)
        .stdin(Stdio::null())
        .stdout(std::fs::File::create(&out_path).expect("stdout file"))
        .stderr(std::fs::File::create(&err_path).expect("stderr file"))
        .spawn()
        .expect("start host-sim soak");
    let start = Instant::now();
    let mut interrupted = false;
    let status = loop {
        if let Some(status) = child.try_wait().expect("wait for host-sim soak") {
            break status;
        }
        if !interrupted && start.elapsed() > BOUND {
            let _ = kill(Pid::from_raw(child.id() as i32), Signal::SIGINT);
            interrupted = true;
        }
        if start.elapsed() > BOUND + Duration::from_secs(15) {
            let _ = child.kill();
            break child.wait().expect("wait for host-sim soak");
        }
        std::thread::sleep(Duration::from_millis(100));
    };
    let output = Output {
        status,
        stdout: std::fs::read(&out_path).unwrap_or_default(),
        stderr: std::fs::read(&err_path).unwrap_or_default(),
    };
    let _ = std::fs::remove_file(out_path);
    let _ = std::fs::remove_file(err_path);
    assert!(
        !interrupted,
        "host-sim soak ran past {BOUND:?}:\n{}",
        String::from_utf8_lossy(&output.stderr)
    );
    output
}

#[test]
fn a_short_soak_on_tap_has_no_errors_and_leaves_nothing_in_use() {
    if !can_run() {
        return;
    }
    let svg = std::env::temp_dir().join(format!("soak-test-{}.svg", std::process::id()));
    let out = run_bounded(&[
        "soak",
        "--duration",
        DURATION,
        "--target",
        "tap",
        "--svg",
        svg.to_str().expect("UTF-8 temp path"),
    ]);
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    let all = format!("--- stdout\n{stdout}\n--- stderr\n{stderr}");
    assert!(out.status.success(), "soak failed ({}):\n{all}", out.status);
    assert!(stdout.contains("| errors | 0 |"), "{all}");
    assert!(
        stdout
            .contains("| in use at the end, the device says | 0 tcp sessions, 0 hotline callers;"),
        "{all}"
    );
    let served = stdout
        .lines()
        .find(|l| l.starts_with("| sessions served |"))
        .unwrap_or_else(|| panic!("no sessions line:\n{all}"));
    for service in SERVICES {
        let n: u64 = served
            .split_once(&format!("{service} "))
            .and_then(|(_, rest)| {
                rest.split(|c: char| !c.is_ascii_digit())
                    .next()?
                    .parse()
                    .ok()
            })
            .unwrap_or_else(|| panic!("{service}: no count in {served:?}"));
        assert!(n > 0, "{service} served no session: {served}");
        // Its latencies are in the table too.
        assert!(
            stdout.contains(&format!("| **{service}** | **all** |")),
            "{all}"
        );
    }

    let text = std::fs::read_to_string(&svg).expect("the SVG was written");
    let _ = std::fs::remove_file(&svg);
    if let Err(e) = check_xml(&text) {
        panic!("the SVG is not well-formed XML: {e}\n{text}");
    }
    assert!(text.contains("<svg xmlns=\"http://www.w3.org/2000/svg\""));
    for service in SERVICES {
        assert!(
            text.contains(&format!("<title>{service} p50</title>"))
                && text.contains(&format!("<title>{service} p99</title>")),
            "{service} is not plotted"
        );
    }
    // A real parser too, where there is one.
    python_parses(&text);
}

/// Checks that `doc` is well-formed XML as far as a hand-written SVG can
/// go wrong: one root element, tags that nest and match, quoted
/// attributes, no stray `<` and only known entities after `&`.
fn check_xml(doc: &str) -> Result<(), String> {
    let mut stack: Vec<&str> = Vec::new();
    let mut roots = 0;
    let mut rest = doc;
    while let Some(lt) = rest.find('<') {
        check_text(&rest[..lt])?;
        rest = &rest[lt..];
        if let Some(r) = rest.strip_prefix("<?") {
            let end = r.find("?>").ok_or("unclosed <?")?;
            rest = &r[end + 2..];
            continue;
        }
        if let Some(r) = rest.strip_prefix("<!--") {
            let end = r.find("-->").ok_or("unclosed comment")?;
            rest = &r[end + 3..];
            continue;
        }
        let end = rest.find('>').ok_or("unclosed tag")?;
        let tag = &rest[1..end];
        rest = &rest[end + 1..];
        if let Some(name) = tag.strip_prefix('/') {
            match stack.pop() {
                Some(open) if open == name.trim() => {}
                other => return Err(format!("</{name}> closes {other:?}")),
            }
            continue;
        }
        let (body, closed) = match tag.strip_suffix('/') {
            Some(b) => (b, true),
            None => (tag, false),
        };
        let name = body.split_whitespace().next().ok_or("empty tag")?;
        if !name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == ':')
        {
            return Err(format!("bad tag name {name:?}"));
        }
        check_attributes(&body[name.len()..])?;
        if stack.is_empty() {
            roots += 1;
        }
        if !closed {
            stack.push(name);
        }
    }
    check_text(rest)?;
    if !stack.is_empty() {
        return Err(format!("unclosed elements {stack:?}"));
    }
    if roots != 1 {
        return Err(format!("{roots} root elements"));
    }
    Ok(())
}

/// `name="value"` pairs, each value free of `<` and with valid entities.
fn check_attributes(mut s: &str) -> Result<(), String> {
    loop {
        s = s.trim_start();
        if s.is_empty() {
            return Ok(());
        }
        let eq = s
            .find('=')
            .ok_or_else(|| format!("attribute without =: {s:?}"))?;
        let name = &s[..eq];
        if name.is_empty() || name.contains(char::is_whitespace) {
            return Err(format!("bad attribute name {name:?}"));
        }
        let value = s[eq + 1..]
            .strip_prefix('"')
            .ok_or_else(|| format!("unquoted attribute {name}"))?;
        let close = value
            .find('"')
            .ok_or_else(|| format!("unterminated attribute {name}"))?;
        check_text(&value[..close])?;
        s = &value[close + 1..];
    }
}

fn check_text(text: &str) -> Result<(), String> {
    if text.contains('<') {
        return Err(format!("stray < in {text:?}"));
    }
    let mut rest = text;
    while let Some(amp) = rest.find('&') {
        rest = &rest[amp + 1..];
        let semi = rest.find(';').ok_or("& without ;")?;
        let entity = &rest[..semi];
        let known = matches!(entity, "amp" | "lt" | "gt" | "quot" | "apos")
            || entity
                .strip_prefix('#')
                .is_some_and(|n| !n.is_empty() && n.chars().all(|c| c.is_ascii_alphanumeric()));
        if !known {
            return Err(format!("unknown entity &{entity};"));
        }
        rest = &rest[semi + 1..];
    }
    Ok(())
}

/// Parses `doc` with Python's XML parser when `python3` is there.
fn python_parses(doc: &str) {
    let path = std::env::temp_dir().join(format!("soak-test-{}-py.svg", std::process::id()));
    std::fs::write(&path, doc).expect("write a copy of the SVG");
    let parsed = Command::new("python3")
        .args([
            "-c",
            "import sys, xml.etree.ElementTree as E; E.parse(sys.argv[1])",
        ])
        .arg(&path)
        .output();
    let _ = std::fs::remove_file(&path);
    match parsed {
        Ok(o) => assert!(
            o.status.success(),
            "Python's XML parser rejects the SVG: {}",
            String::from_utf8_lossy(&o.stderr)
        ),
        Err(_) => eprintln!("python3 not found: the SVG was checked by the test's own parser only"),
    }
}

#[test]
fn the_xml_check_catches_what_a_hand_written_svg_gets_wrong() {
    assert!(
        check_xml(r#"<?xml version="1.0"?><svg a="1"><g><line/></g><text>a &amp; b</text></svg>"#)
            .is_ok()
    );
    for bad in [
        "<svg><g></svg>",
        "<svg></svg><svg></svg>",
        "<svg a=1></svg>",
        "<svg>a & b</svg>",
        "<svg><text>1 < 2</text></svg>",
        r#"<svg a="x"#,
    ] {
        assert!(check_xml(bad).is_err(), "{bad}");
    }
}
