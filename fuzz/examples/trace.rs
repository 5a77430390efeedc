//! Runs one input of a target with tracing on, for reading a crash:
//!
//! ```sh
//! FUZZ_TRACE=1 cargo run --example trace -- node_frames artifacts/node_frames/crash-…
//! ```

fn main() {
    let mut args = std::env::args().skip(1);
    let (Some(target), Some(path)) = (args.next(), args.next()) else {
        eprintln!("usage: trace TARGET INPUT");
        std::process::exit(2);
    };
    let input = std::fs::read(&path).expect("readable input");
    for step in smoltalk_fuzz::script::Script::new(&input) {
        eprintln!("step {step:?}");
    }
    let run = match target.as_str() {
        "login_request" => smoltalk_fuzz::login::run,
        "chat_framing" => smoltalk_fuzz::chat::run,
        "hotline" => smoltalk_fuzz::hotline::run,
        "node_frames" => smoltalk_fuzz::node::run,
        other => {
            eprintln!("no target {other}");
            std::process::exit(2);
        }
    };
    run(&input);
    eprintln!("ok");
}
