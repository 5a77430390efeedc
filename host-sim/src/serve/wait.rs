//! Sleeping until the TAP device has a frame, or a timeout passes.
//!
//! `smoltcp::phy::wait` does the same with `select(2)`, which cannot take
//! file descriptors numbered 1024 or more and reports a signal (Ctrl-C) as
//! an error. `poll(2)` has neither limit.

use std::io;
use std::os::fd::RawFd;
use std::time::Duration;

/// Waits until `fd` (which must stay open for the call) is readable or `timeout` has passed. Returns whether it
/// is readable. A signal ends the wait early, as a timeout does: the caller
/// polls its flags and its node, then waits again.
pub fn readable(fd: RawFd, timeout: Duration) -> io::Result<bool> {
    let mut pfd = libc::pollfd {
        fd,
        events: libc::POLLIN,
        revents: 0,
    };
    // Round up, so a 0.5 ms delay does not become a busy loop of 0 ms waits.
    let ms = timeout.as_micros().div_ceil(1000).min(i32::MAX as u128) as libc::c_int;
    // SAFETY: `pfd` is a valid, initialised pollfd and we pass a count of 1.
    let n = unsafe { libc::poll(&mut pfd, 1, ms) };
    if n < 0 {
        let err = io::Error::last_os_error();
        return if err.kind() == io::ErrorKind::Interrupted {
            Ok(false)
        } else {
            Err(err)
        };
    }
    if pfd.revents & (libc::POLLERR | libc::POLLNVAL) != 0 {
        return Err(io::Error::other(
            "the TAP device reported an error (was it deleted?)",
        ));
    }
    Ok(n > 0 && pfd.revents & libc::POLLIN != 0)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;
    use std::os::fd::AsRawFd;
    use std::os::unix::net::UnixStream;
    use std::time::Instant;

    #[test]
    fn times_out_then_sees_data() {
        let (mut a, b) = UnixStream::pair().expect("socketpair");
        let start = Instant::now();
        assert!(!readable(b.as_raw_fd(), Duration::from_millis(20)).expect("poll"));
        assert!(start.elapsed() >= Duration::from_millis(20));
        a.write_all(b"x").expect("write");
        assert!(readable(b.as_raw_fd(), Duration::from_secs(5)).expect("poll"));
    }
}
