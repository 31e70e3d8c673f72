//! Personal fields encrypted at rest: AES-256-GCM per field, a fresh random 96-bit nonce
//! per write, and the subject's registry id plus the column name as associated data, so
//! a ciphertext moved to another row or column fails to open instead of being misread.
//!
//! Stored form: `enc:v1:<hex(nonce ‖ ciphertext ‖ tag)>`. The key comes from
//! `EPATROL_CATALOG_KEY` (64 hex digits: keep it in a secret store, and a copy of the
//! data dir alone reveals nothing) or else from `DATA/keys/catalog-aes256.key`, created on
//! first use (0600) — which protects catalog copies and backups, not a stolen data dir.

use std::fs;
use std::io::Write;
use std::path::Path;

use aes_gcm::aead::{Aead, KeyInit, Payload};
use aes_gcm::{Aes256Gcm, Nonce};
use rand::RngCore;

use crate::error::{Result, StoreError};

/// Environment variable holding the key (64 hex digits); wins over the key file.
pub const KEY_ENV: &str = "EPATROL_CATALOG_KEY";
/// Key file name under `DATA/keys/`.
pub const KEY_FILE: &str = "catalog-aes256.key";
/// Prefix of an encrypted value.
pub const PREFIX: &str = "enc:v1:";

/// The field cipher. `Debug` shows nothing of the key.
pub struct FieldCipher {
    aead: Aes256Gcm,
}

impl std::fmt::Debug for FieldCipher {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("FieldCipher(AES-256-GCM)")
    }
}

fn parse_key(hex_key: &str, from: &str) -> Result<[u8; 32]> {
    hex::decode(hex_key.trim())
        .ok()
        .and_then(|v| <[u8; 32]>::try_from(v).ok())
        .ok_or_else(|| StoreError::Invalid(format!("catalog key from {from} must be 64 hex digits")))
}

impl FieldCipher {
    /// A cipher over a raw 32-byte key.
    pub fn from_key(key: &[u8; 32]) -> Self {
        Self { aead: Aes256Gcm::new(key.into()) }
    }

    /// The key from [`KEY_ENV`], else `keys_dir/`[`KEY_FILE`] (created with a random key,
    /// mode 0600, on first use; two processes starting together agree on one key).
    pub fn load_or_create(keys_dir: &Path) -> Result<Self> {
        if let Ok(v) = std::env::var(KEY_ENV) {
            return Ok(Self::from_key(&parse_key(&v, KEY_ENV)?));
        }
        fs::create_dir_all(keys_dir)?;
        let path = keys_dir.join(KEY_FILE);
        let mut opts = fs::OpenOptions::new();
        opts.write(true).create_new(true);
        #[cfg(unix)]
        {
            use std::os::unix::fs::OpenOptionsExt;
            opts.mode(0o600);
        }
        match opts.open(&path) {
            Ok(mut f) => {
                let mut key = [0u8; 32];
                rand::rngs::OsRng.fill_bytes(&mut key);
                f.write_all(hex::encode(key).as_bytes())?;
                f.sync_all()?;
                Ok(Self::from_key(&key))
            }
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {
                // a concurrent creator may still be writing its 64 digits
                for _ in 0..50 {
                    let text = fs::read_to_string(&path)?;
                    if text.trim().len() == 64 {
                        return Ok(Self::from_key(&parse_key(&text, KEY_FILE)?));
                    }
                    std::thread::sleep(std::time::Duration::from_millis(20));
                }
                Err(StoreError::Invalid(format!("{KEY_FILE} is not a 64-hex-digit key")))
            }
            Err(e) => Err(e.into()),
        }
    }

    /// Encrypts `plain` bound to `aad` (row id + column).
    pub fn seal(&self, aad: &str, plain: &str) -> Result<String> {
        let mut nonce = [0u8; 12];
        rand::rngs::OsRng.fill_bytes(&mut nonce);
        let ct = self
            .aead
            .encrypt(Nonce::from_slice(&nonce), Payload { msg: plain.as_bytes(), aad: aad.as_bytes() })
            .map_err(|_| StoreError::Invalid("field encryption failed".into()))?;
        let mut out = Vec::with_capacity(12 + ct.len());
        out.extend_from_slice(&nonce);
        out.extend_from_slice(&ct);
        Ok(format!("{PREFIX}{}", hex::encode(out)))
    }

    /// Decrypts a stored value; a value without the prefix is plaintext written before
    /// encryption existed and is returned as is (it is re-encrypted at open). A wrong key
    /// or a tampered value is an integrity error that names neither the value nor the key.
    pub fn open(&self, aad: &str, stored: &str) -> Result<String> {
        let Some(hex_part) = stored.strip_prefix(PREFIX) else { return Ok(stored.to_string()) };
        let bad = || StoreError::Integrity("an encrypted catalog field does not open with this key".into());
        let raw = hex::decode(hex_part).map_err(|_| bad())?;
        if raw.len() < 12 + 16 {
            return Err(bad());
        }
        let (nonce, ct) = raw.split_at(12);
        let plain =
            self.aead.decrypt(Nonce::from_slice(nonce), Payload { msg: ct, aad: aad.as_bytes() }).map_err(|_| bad())?;
        String::from_utf8(plain).map_err(|_| bad())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip_fresh_nonces_and_tamper_or_misplacement_fail() {
        let c = FieldCipher::from_key(&[7u8; 32]);
        let a = c.seal("P-1/surname", "Шевченко").unwrap();
        let b = c.seal("P-1/surname", "Шевченко").unwrap();
        assert!(a.starts_with(PREFIX) && a != b, "a fresh nonce per write");
        assert!(!a.contains("Шевченко"));
        assert_eq!(c.open("P-1/surname", &a).unwrap(), "Шевченко");
        assert!(c.open("P-2/surname", &a).is_err(), "moved to another row");
        assert!(c.open("P-1/address", &a).is_err(), "moved to another column");
        let mut t = a.clone().into_bytes();
        let last = t.len() - 1;
        t[last] = if t[last] == b'0' { b'1' } else { b'0' };
        assert!(c.open("P-1/surname", std::str::from_utf8(&t).unwrap()).is_err(), "tampered");
        assert!(FieldCipher::from_key(&[8u8; 32]).open("P-1/surname", &a).is_err(), "other key");
        assert_eq!(c.open("P-1/surname", "legacy plain").unwrap(), "legacy plain");
        let e = c.open("P-1/surname", "enc:v1:zz").unwrap_err().to_string();
        assert!(!e.contains("zz"), "{e}");
    }

    #[test]
    fn the_key_file_is_created_once_with_owner_only_access() {
        let dir = tempfile::tempdir().unwrap();
        let c1 = FieldCipher::load_or_create(dir.path()).unwrap();
        let c2 = FieldCipher::load_or_create(dir.path()).unwrap();
        let sealed = c1.seal("x", "y").unwrap();
        assert_eq!(c2.open("x", &sealed).unwrap(), "y");
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = fs::metadata(dir.path().join(KEY_FILE)).unwrap().permissions().mode();
            assert_eq!(mode & 0o777, 0o600);
        }
    }
}
