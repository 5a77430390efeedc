//! `serve --pcap`: the file smoltcp's `PcapWriter` records into.
//!
//! smoltcp's own sink for `io::Write` panics when a write fails; a full
//! disk must not take the device down, so this sink logs the error once and
//! stops recording instead. It buffers, because `PcapWriter` writes each
//! record field by field and flushes after every frame.

use std::fs::{File, OpenOptions};
use std::io::{self, BufWriter, Write};
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};

use smoltcp::phy::PcapSink;

/// A pcap file that gives up quietly (after one error message).
pub struct Capture {
    file: BufWriter<File>,
    path: PathBuf,
    /// A write failed: the capture is cut short, the device carries on.
    failed: bool,
}

impl Capture {
    /// Creates (or truncates) the file at `path`, readable by its owner
    /// only when new: it will hold the passwords of logins.
    pub fn create(path: &Path) -> io::Result<Self> {
        let file = OpenOptions::new()
            .write(true)
            .create(true)
            .truncate(true)
            .mode(0o600)
            .open(path)?;
        Ok(Capture {
            file: BufWriter::new(file),
            path: path.to_owned(),
            failed: false,
        })
    }

    fn check(&mut self, result: io::Result<()>) {
        if let Err(e) = result {
            log::error!(
                "capture {}: {e}; recording stopped, the device carries on",
                self.path.display()
            );
            self.failed = true;
        }
    }
}

impl PcapSink for Capture {
    fn write(&mut self, data: &[u8]) {
        if !self.failed {
            let r = Write::write_all(&mut self.file, data);
            self.check(r);
        }
    }

    fn flush(&mut self) {
        if !self.failed {
            let r = Write::flush(&mut self.file);
            self.check(r);
        }
    }
}
