//! API tokens for people and integrations: `cpt_` + 30 random base62 characters + a 6-character base62
//! CRC32 of them — recognisable by secret scanners, and a typo is caught by the checksum before any store is
//! asked. Only the SHA-256 of a token is ever stored; it is shown once, at creation.

use rand::Rng;
use sha2::{Digest, Sha256};

pub const PREFIX: &str = "cpt_";
const BODY: usize = 30;
const CHECK: usize = 6;
const ALPHABET: &[u8] = b"0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz";

/// A new token (about 178 bits of entropy).
pub fn generate() -> String {
    let mut rng = rand::thread_rng();
    let body: String = (0..BODY).map(|_| ALPHABET[rng.gen_range(0..ALPHABET.len())] as char).collect();
    format!("{PREFIX}{body}{}", checksum(&body))
}

fn checksum(body: &str) -> String {
    let mut n = crc32(body.as_bytes());
    let mut out = [b'0'; CHECK];
    for slot in out.iter_mut().rev() {
        *slot = ALPHABET[(n % 62) as usize];
        n /= 62;
    }
    String::from_utf8(out.to_vec()).expect("ASCII")
}

fn crc32(bytes: &[u8]) -> u32 {
    let mut crc = 0xFFFF_FFFFu32;
    for &b in bytes {
        crc ^= u32::from(b);
        for _ in 0..8 {
            crc = if crc & 1 == 1 { (crc >> 1) ^ 0xEDB8_8320 } else { crc >> 1 };
        }
    }
    !crc
}

/// Whether `raw` has the shape of an API token (as opposed to a JWT).
pub fn looks_like(raw: &str) -> bool {
    raw.starts_with(PREFIX)
}

/// Checks format and checksum, with no I/O.
pub fn well_formed(raw: &str) -> bool {
    let Some(rest) = raw.strip_prefix(PREFIX) else { return false };
    if rest.len() != BODY + CHECK || !rest.bytes().all(|b| b.is_ascii_alphanumeric()) {
        return false;
    }
    let (body, check) = rest.split_at(BODY);
    checksum(body) == check
}

/// The stored form: hex SHA-256.
pub fn hash(raw: &str) -> String {
    hex::encode(Sha256::digest(raw.as_bytes()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn generated_tokens_are_well_formed_and_distinct() {
        let a = generate();
        assert!(a.starts_with("cpt_") && a.len() == 4 + 36 && well_formed(&a), "{a}");
        assert_ne!(a, generate());
    }

    #[test]
    fn a_typo_breaks_the_checksum() {
        let t = generate();
        let mut typo = t.clone().into_bytes();
        typo[10] = if typo[10] == b'a' { b'b' } else { b'a' };
        assert!(!well_formed(std::str::from_utf8(&typo).unwrap()));
        assert!(!well_formed(&t[..t.len() - 1]));
        assert!(!well_formed("cpt_"));
        assert!(!well_formed("ghp_abc"));
    }

    #[test]
    fn crc32_matches_the_standard() {
        assert_eq!(crc32(b"123456789"), 0xCBF4_3926);
    }
}
