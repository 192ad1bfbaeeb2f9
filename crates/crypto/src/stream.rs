//! Streaming authenticated encryption for backups: RustCrypto's STREAM construction
//! (`aead::stream`, big-endian 32-bit counter) over AES-256-GCM in 64 KiB chunks. Every chunk is
//! authenticated with its position and whether it is the last one, so a truncated, reordered or
//! altered stream fails to decrypt instead of yielding a plausible prefix.

use aes_gcm::Aes256Gcm;
use aes_gcm::aead::KeyInit;
use aes_gcm::aead::stream::{DecryptorBE32, EncryptorBE32};
use std::io::{Read, Write};

pub const CHUNK: usize = 64 * 1024;
const TAG: usize = 16;
/// Nonce prefix length for AES-GCM's 96-bit nonce with STREAM's 5-byte counter/flag suffix.
pub const STREAM_NONCE_PREFIX: usize = 7;

#[derive(Debug, thiserror::Error)]
pub enum StreamError {
    #[error("I/O: {0}")]
    Io(#[from] std::io::Error),
    #[error("the encrypted stream is corrupted, truncated or was made with another key")]
    Corrupt,
}

/// Reads until `buf` is full or the input ends; returns how much was read.
fn fill(r: &mut impl Read, buf: &mut [u8]) -> std::io::Result<usize> {
    let mut n = 0;
    while n < buf.len() {
        match r.read(&mut buf[n..])? {
            0 => break,
            k => n += k,
        }
    }
    Ok(n)
}

/// Encrypts everything from `input` to `output`; `aad` (e.g. a header digest) is bound to every
/// chunk. Returns the number of plaintext bytes.
pub fn encrypt_stream(
    key: &[u8; 32],
    nonce_prefix: &[u8; STREAM_NONCE_PREFIX],
    aad: &[u8],
    mut input: impl Read,
    mut output: impl Write,
) -> Result<u64, StreamError> {
    let mut enc = EncryptorBE32::from_aead(Aes256Gcm::new(key.into()), nonce_prefix.into());
    let mut buf = vec![0u8; CHUNK];
    let mut next = vec![0u8; CHUNK];
    let mut n = fill(&mut input, &mut buf)?;
    let mut total = 0u64;
    loop {
        // Look ahead: a chunk is the last one only if nothing follows it.
        let m = if n == CHUNK { fill(&mut input, &mut next)? } else { 0 };
        total += n as u64;
        if m == 0 {
            let ct =
                enc.encrypt_last(aes_gcm::aead::Payload { msg: &buf[..n], aad }).map_err(|_| StreamError::Corrupt)?;
            output.write_all(&ct)?;
            break;
        }
        let ct = enc.encrypt_next(aes_gcm::aead::Payload { msg: &buf[..n], aad }).map_err(|_| StreamError::Corrupt)?;
        output.write_all(&ct)?;
        std::mem::swap(&mut buf, &mut next);
        n = m;
    }
    output.flush()?;
    Ok(total)
}

/// Decrypts a stream made by [`encrypt_stream`]; fails on any truncation or alteration. Output
/// written before a failure must be discarded by the caller.
pub fn decrypt_stream(
    key: &[u8; 32],
    nonce_prefix: &[u8; STREAM_NONCE_PREFIX],
    aad: &[u8],
    mut input: impl Read,
    mut output: impl Write,
) -> Result<u64, StreamError> {
    let mut dec = DecryptorBE32::from_aead(Aes256Gcm::new(key.into()), nonce_prefix.into());
    let mut buf = vec![0u8; CHUNK + TAG];
    let mut next = vec![0u8; CHUNK + TAG];
    let mut n = fill(&mut input, &mut buf)?;
    let mut total = 0u64;
    loop {
        if n < TAG {
            return Err(StreamError::Corrupt);
        }
        let m = if n == CHUNK + TAG { fill(&mut input, &mut next)? } else { 0 };
        let payload = aes_gcm::aead::Payload { msg: &buf[..n], aad };
        if m == 0 {
            let pt = dec.decrypt_last(payload).map_err(|_| StreamError::Corrupt)?;
            total += pt.len() as u64;
            output.write_all(&pt)?;
            break;
        }
        let pt = dec.decrypt_next(payload).map_err(|_| StreamError::Corrupt)?;
        total += pt.len() as u64;
        output.write_all(&pt)?;
        std::mem::swap(&mut buf, &mut next);
        n = m;
    }
    output.flush()?;
    Ok(total)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn round(len: usize) -> (Vec<u8>, Vec<u8>) {
        let data: Vec<u8> = (0..len).map(|i| (i * 31 % 251) as u8).collect();
        let mut ct = Vec::new();
        encrypt_stream(&[7; 32], &[1; 7], b"hdr", &data[..], &mut ct).expect("encrypts");
        (data, ct)
    }

    #[test]
    fn round_trips_at_every_boundary() {
        for len in [0, 1, CHUNK - 1, CHUNK, CHUNK + 1, 3 * CHUNK, 3 * CHUNK + 17] {
            let (data, ct) = round(len);
            let mut out = Vec::new();
            decrypt_stream(&[7; 32], &[1; 7], b"hdr", &ct[..], &mut out).expect("decrypts");
            assert_eq!(out, data, "len {len}");
        }
    }

    #[test]
    fn truncation_alteration_and_wrong_context_fail() {
        let (_, ct) = round(3 * CHUNK + 17);
        let bad = |c: &[u8], aad: &[u8]| decrypt_stream(&[7; 32], &[1; 7], aad, c, std::io::sink()).is_err();
        // Cut at a chunk boundary (the nastiest case: every remaining chunk is intact).
        assert!(bad(&ct[..2 * (CHUNK + TAG)], b"hdr"));
        assert!(bad(&ct[..ct.len() - 1], b"hdr"));
        let mut flipped = ct.clone();
        flipped[CHUNK + 100] ^= 1;
        assert!(bad(&flipped, b"hdr"));
        assert!(bad(&ct, b"other header"));
        assert!(bad(&[], b"hdr"));
    }
}
