//! Replays every committed seed and regression input through its target's
//! harness: the inputs the fuzzer starts from, and the crashes it found
//! (fixed since), stay passing on stable, without libFuzzer.

use std::fs;
use std::path::Path;

fn replay(target: &str, run: fn(&[u8])) {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let mut n = 0;
    for dir in ["seeds", "regressions"] {
        let Ok(entries) = fs::read_dir(root.join(dir).join(target)) else {
            continue;
        };
        let mut paths: Vec<_> = entries.map(|e| e.unwrap().path()).collect();
        paths.sort();
        for path in paths {
            let input = fs::read(&path).unwrap();
            eprintln!("{}", path.display());
            run(&input);
            n += 1;
        }
    }
    assert!(n > 0, "no inputs for {target}");
}

#[test]
fn login_request() {
    replay("login_request", smoltalk_fuzz::login::run);
}

#[test]
fn chat_framing() {
    replay("chat_framing", smoltalk_fuzz::chat::run);
}

#[test]
fn hotline() {
    replay("hotline", smoltalk_fuzz::hotline::run);
}

#[test]
fn node_frames() {
    replay("node_frames", smoltalk_fuzz::node::run);
}
