//! A minimal pcap (libpcap classic format) writer for Ethernet frames.
//!
//! smoltcp's `PcapWriter` wraps one device; the simulator wants one capture
//! of the whole switch, so it writes the format itself: a 24-byte file
//! header, then a 16-byte header before each frame.

use std::io::{self, Write};

use smoltcp::time::Instant;

/// Writes frames to any `Write` as a pcap capture.
pub struct PcapFile<W: Write> {
    out: W,
}

/// LINKTYPE_ETHERNET.
const LINKTYPE_ETHERNET: u32 = 1;

impl<W: Write> PcapFile<W> {
    /// Writes the file header.
    pub fn new(mut out: W) -> io::Result<Self> {
        out.write_all(&0xa1b2_c3d4u32.to_le_bytes())?; // magic, microsecond timestamps
        out.write_all(&2u16.to_le_bytes())?; // version 2.4
        out.write_all(&4u16.to_le_bytes())?;
        out.write_all(&0i32.to_le_bytes())?; // GMT offset
        out.write_all(&0u32.to_le_bytes())?; // timestamp accuracy
        out.write_all(&65535u32.to_le_bytes())?; // snap length
        out.write_all(&LINKTYPE_ETHERNET.to_le_bytes())?;
        Ok(PcapFile { out })
    }

    /// Appends one frame seen at `at`.
    pub fn frame(&mut self, at: Instant, frame: &[u8]) -> io::Result<()> {
        let micros = at.total_micros().max(0) as u64;
        let len = frame.len() as u32;
        self.out
            .write_all(&((micros / 1_000_000) as u32).to_le_bytes())?;
        self.out
            .write_all(&((micros % 1_000_000) as u32).to_le_bytes())?;
        self.out.write_all(&len.to_le_bytes())?;
        self.out.write_all(&len.to_le_bytes())?;
        self.out.write_all(frame)
    }

    /// Flushes buffered frames.
    pub fn flush(&mut self) -> io::Result<()> {
        self.out.flush()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn header_and_record_layout() {
        let mut p = PcapFile::new(Vec::new()).unwrap();
        p.frame(Instant::from_micros(1_500_000), &[0xaa; 60])
            .unwrap();
        let bytes = p.out;
        assert_eq!(bytes.len(), 24 + 16 + 60);
        assert_eq!(&bytes[..4], &[0xd4, 0xc3, 0xb2, 0xa1]);
        assert_eq!(u32::from_le_bytes(bytes[20..24].try_into().unwrap()), 1);
        assert_eq!(
            u32::from_le_bytes(bytes[24..28].try_into().unwrap()),
            1,
            "seconds"
        );
        assert_eq!(
            u32::from_le_bytes(bytes[28..32].try_into().unwrap()),
            500_000,
            "micros"
        );
    }
}
