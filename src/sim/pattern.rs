//! Test payloads for echo checks.

/// `len` bytes of deterministic, incompressible noise (xorshift32), so that a
/// dropped, duplicated or misplaced byte shows up in a comparison. The same
/// `seed` always gives the same bytes.
pub fn pattern(len: usize, seed: u32) -> Vec<u8> {
    let mut x = seed.wrapping_mul(2_654_435_761) | 1;
    (0..len)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 17;
            x ^= x << 5;
            x as u8
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn deterministic_and_seed_dependent() {
        assert_eq!(pattern(64, 1), pattern(64, 1));
        assert_ne!(pattern(64, 1), pattern(64, 2));
        assert_eq!(pattern(0, 1), Vec::<u8>::new());
    }
}
