//! The node's Ed25519 signing key: generated on first use under the data dir, read from
//! there afterwards, never printed (its `Debug` shows only the public key id).

use std::fs;
use std::io::Write;
use std::path::{Path, PathBuf};

use ed25519_dalek::{Signature, Signer, SigningKey, Verifier, VerifyingKey};

use crate::error::{Result, StoreError};

/// File name of the secret key (hex seed) under `DATA/keys/`.
pub const SECRET_FILE: &str = "custody-ed25519.key";
/// File name of the public key (hex) under `DATA/keys/`.
pub const PUBLIC_FILE: &str = "custody-ed25519.pub";

/// A signing key plus its short id (first 16 hex digits of BLAKE3 of the public key).
pub struct CustodyKey {
    signing: SigningKey,
    key_id: String,
}

impl std::fmt::Debug for CustodyKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CustodyKey").field("key_id", &self.key_id).finish_non_exhaustive()
    }
}

/// Short id of a public key.
pub fn key_id(public: &VerifyingKey) -> String {
    hex::encode(&blake3::hash(public.as_bytes()).as_bytes()[..8])
}

fn keys_dir(data_dir: &Path) -> PathBuf {
    data_dir.join("keys")
}

impl CustodyKey {
    /// Loads `DATA/keys/custody-ed25519.key`, creating it (mode 0600) on first use.
    /// Two processes starting together agree on one key: creation uses `create_new`, and the
    /// loser reads the winner's file.
    pub fn load_or_create(data_dir: &Path) -> Result<Self> {
        let dir = keys_dir(data_dir);
        fs::create_dir_all(&dir)?;
        let secret = dir.join(SECRET_FILE);
        let mut opts = fs::OpenOptions::new();
        opts.write(true).create_new(true);
        #[cfg(unix)]
        {
            use std::os::unix::fs::OpenOptionsExt;
            opts.mode(0o600);
        }
        match opts.open(&secret) {
            Ok(mut f) => {
                let key = SigningKey::generate(&mut rand::rngs::OsRng);
                // write to the exclusive file then fsync, so a crash never leaves a half key
                f.write_all(hex::encode(key.to_bytes()).as_bytes())?;
                f.sync_all()?;
                let public = key.verifying_key();
                fs::write(dir.join(PUBLIC_FILE), hex::encode(public.as_bytes()))?;
                tracing::info!(key_id = %key_id(&public), "generated custody signing key");
                Ok(Self { key_id: key_id(&public), signing: key })
            }
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => Self::read(&secret),
            Err(e) => Err(e.into()),
        }
    }

    fn read(secret: &Path) -> Result<Self> {
        // a concurrent creator may still be writing: retry briefly until 64 hex digits are there
        for _ in 0..50 {
            let text = fs::read_to_string(secret)?;
            if text.trim().len() == 64 {
                let bytes: [u8; 32] = hex::decode(text.trim())
                    .map_err(|_| StoreError::Custody(format!("{} is not hex", secret.display())))?
                    .try_into()
                    .map_err(|_| StoreError::Custody("signing key must be 32 bytes".into()))?;
                let signing = SigningKey::from_bytes(&bytes);
                let key_id = key_id(&signing.verifying_key());
                return Ok(Self { signing, key_id });
            }
            std::thread::sleep(std::time::Duration::from_millis(20));
        }
        Err(StoreError::Custody(format!("{} is incomplete", secret.display())))
    }

    /// Short id of this key.
    pub fn key_id(&self) -> &str {
        &self.key_id
    }

    /// The public half.
    pub fn public(&self) -> VerifyingKey {
        self.signing.verifying_key()
    }

    /// Signs `msg`; returns the signature as hex.
    pub fn sign_hex(&self, msg: &[u8]) -> String {
        hex::encode(self.signing.sign(msg).to_bytes())
    }
}

/// Reads the public key file written next to the secret.
pub fn load_public(data_dir: &Path) -> Result<VerifyingKey> {
    let path = keys_dir(data_dir).join(PUBLIC_FILE);
    parse_public(fs::read_to_string(&path)?.trim())
}

/// Parses a hex public key.
pub fn parse_public(hex_key: &str) -> Result<VerifyingKey> {
    let bytes: [u8; 32] = hex::decode(hex_key)
        .map_err(|_| StoreError::Custody("public key is not hex".into()))?
        .try_into()
        .map_err(|_| StoreError::Custody("public key must be 32 bytes".into()))?;
    VerifyingKey::from_bytes(&bytes).map_err(|e| StoreError::Custody(format!("bad public key: {e}")))
}

/// Checks a hex signature over `msg`.
pub fn verify_hex(public: &VerifyingKey, msg: &[u8], sig_hex: &str) -> bool {
    let Ok(bytes) = hex::decode(sig_hex) else {
        return false;
    };
    let Ok(arr) = <[u8; 64]>::try_from(bytes.as_slice()) else {
        return false;
    };
    public.verify(msg, &Signature::from_bytes(&arr)).is_ok()
}
