//! The few S3 calls `object_store` does not make: object tagging (the tier tag that
//! lifecycle rules filter on), Object Lock retention, and bucket creation for tests.
//! Requests are signed with AWS Signature Version 4, path-style.

use hmac::{Hmac, Mac};
use object_store::aws::{AmazonS3Builder, AmazonS3ConfigKey};
use sha2::{Digest as _, Sha256};
use time::OffsetDateTime;
use tokio::sync::OnceCell;

use crate::clock::fmt_ts;
use crate::error::{Result, StoreError};
use crate::model::Tier;

/// Signed direct access to one bucket.
#[derive(Debug)]
pub struct S3Control {
    endpoint: String,
    bucket: String,
    region: String,
    access_key: String,
    secret_key: String,
    token: Option<String>,
    http: reqwest::Client,
    lock: OnceCell<bool>,
}

impl S3Control {
    /// Takes endpoint, bucket, region and static credentials from an `object_store` builder.
    pub fn from_builder(b: &AmazonS3Builder) -> Result<Self> {
        let get = |k: AmazonS3ConfigKey| b.get_config_value(&k);
        let region = get(AmazonS3ConfigKey::Region).unwrap_or_else(|| "us-east-1".into());
        let bucket = get(AmazonS3ConfigKey::Bucket).ok_or_else(|| StoreError::Invalid("S3 bucket not set".into()))?;
        let endpoint = get(AmazonS3ConfigKey::Endpoint).unwrap_or_else(|| format!("https://s3.{region}.amazonaws.com"));
        Ok(Self {
            endpoint: endpoint.trim_end_matches('/').to_string(),
            bucket,
            region,
            access_key: get(AmazonS3ConfigKey::AccessKeyId).unwrap_or_default(),
            secret_key: get(AmazonS3ConfigKey::SecretAccessKey).unwrap_or_default(),
            token: get(AmazonS3ConfigKey::Token),
            http: reqwest::Client::new(),
            lock: OnceCell::new(),
        })
    }

    /// Whether the bucket has Object Lock enabled (asked once, then remembered).
    pub async fn object_lock(&self) -> Result<bool> {
        self.lock
            .get_or_try_init(|| async {
                let (status, body) = self.send("GET", "", "object-lock=", Vec::new(), &[]).await?;
                Ok::<bool, StoreError>(status == 200 && body.contains("<ObjectLockEnabled>Enabled</ObjectLockEnabled>"))
            })
            .await
            .copied()
    }

    /// Sets the object's tag set to `tier=<tier>`.
    pub async fn put_tier_tag(&self, key: &str, tier: Tier) -> Result<()> {
        let body = format!(
            "<Tagging xmlns=\"http://s3.amazonaws.com/doc/2006-03-01/\"><TagSet><Tag><Key>tier</Key><Value>{}</Value></Tag></TagSet></Tagging>",
            tier.as_str()
        );
        self.expect_ok("PUT", key, "tagging=", body.into_bytes()).await.map(|_| ())
    }

    /// The object's `tier` tag, if any.
    pub async fn get_tier_tag(&self, key: &str) -> Result<Option<String>> {
        let body = self.expect_ok("GET", key, "tagging=", Vec::new()).await?;
        Ok(xml_after(&body, "<Key>tier</Key><Value>").map(str::to_string))
    }

    /// Turns the object's legal hold on or off (Object Lock buckets): while on, S3 refuses
    /// to delete the version whatever its retention date.
    pub async fn put_legal_hold(&self, key: &str, on: bool) -> Result<()> {
        let body = format!(
            "<LegalHold xmlns=\"http://s3.amazonaws.com/doc/2006-03-01/\"><Status>{}</Status></LegalHold>",
            if on { "ON" } else { "OFF" }
        );
        self.expect_ok("PUT", key, "legal-hold=", body.into_bytes()).await.map(|_| ())
    }

    /// The object's legal hold status (`ON`/`OFF`) from HeadObject, if reported.
    pub async fn get_legal_hold(&self, key: &str) -> Result<Option<String>> {
        let (status, _, headers) = self.send_full("HEAD", key, "", Vec::new(), &[]).await?;
        if status != 200 {
            return Err(StoreError::S3(format!("HEAD {key}: HTTP {status}")));
        }
        Ok(headers.get("x-amz-object-lock-legal-hold").and_then(|v| v.to_str().ok()).map(str::to_string))
    }

    /// Sets COMPLIANCE retention until `until` (S3 refuses an earlier date than the current one).
    pub async fn put_retention(&self, key: &str, until: OffsetDateTime) -> Result<()> {
        let body = format!(
            "<Retention xmlns=\"http://s3.amazonaws.com/doc/2006-03-01/\"><Mode>COMPLIANCE</Mode><RetainUntilDate>{}</RetainUntilDate></Retention>",
            fmt_ts(until)
        );
        self.expect_ok("PUT", key, "retention=", body.into_bytes()).await.map(|_| ())
    }

    /// The object's retain-until date as S3 reports it (HeadObject's
    /// `x-amz-object-lock-retain-until-date`), if any. HeadObject rather than
    /// GetObjectRetention because every S3-compatible server answers it.
    pub async fn get_retention(&self, key: &str) -> Result<Option<String>> {
        let (status, _, headers) = self.send_full("HEAD", key, "", Vec::new(), &[]).await?;
        if status == 404 {
            return Ok(None);
        }
        if status != 200 {
            return Err(StoreError::S3(format!("HEAD {key}: HTTP {status}")));
        }
        Ok(headers.get("x-amz-object-lock-retain-until-date").and_then(|v| v.to_str().ok()).map(str::to_string))
    }

    /// Creates the bucket (for tests and first setup), with Object Lock if asked.
    pub async fn create_bucket(&self, object_lock: bool) -> Result<()> {
        let headers: &[(&str, &str)] = if object_lock { &[("x-amz-bucket-object-lock-enabled", "true")] } else { &[] };
        let (status, body) = self.send("PUT", "", "", Vec::new(), headers).await?;
        if status == 200 || body.contains("BucketAlreadyOwnedByYou") {
            Ok(())
        } else {
            Err(StoreError::S3(format!("create bucket {}: HTTP {status}: {body}", self.bucket)))
        }
    }

    async fn expect_ok(&self, method: &str, key: &str, query: &str, body: Vec<u8>) -> Result<String> {
        let (status, text) = self.send(method, key, query, body, &[]).await?;
        if (200..300).contains(&status) {
            Ok(text)
        } else {
            Err(StoreError::S3(format!("{method} {key}?{query}: HTTP {status}: {text}")))
        }
    }

    /// Sends one signed request; `key` empty addresses the bucket, `query` is already
    /// canonical (`name=value`, sorted).
    async fn send(
        &self,
        method: &str,
        key: &str,
        query: &str,
        body: Vec<u8>,
        extra: &[(&str, &str)],
    ) -> Result<(u16, String)> {
        let (status, text, _) = self.send_full(method, key, query, body, extra).await?;
        Ok((status, text))
    }

    /// [`Self::send`], also returning the response headers.
    async fn send_full(
        &self,
        method: &str,
        key: &str,
        query: &str,
        body: Vec<u8>,
        extra: &[(&str, &str)],
    ) -> Result<(u16, String, reqwest::header::HeaderMap)> {
        let now = OffsetDateTime::now_utc();
        let amz_date = format!(
            "{:04}{:02}{:02}T{:02}{:02}{:02}Z",
            now.year(),
            now.month() as u8,
            now.day(),
            now.hour(),
            now.minute(),
            now.second()
        );
        let date = &amz_date[..8];
        let mut path = format!("/{}", self.bucket);
        if !key.is_empty() {
            path.push('/');
            path.push_str(&uri_encode(key, false));
        }
        let url = url::Url::parse(&format!("{}{}", self.endpoint, path))
            .map_err(|e| StoreError::Invalid(format!("S3 endpoint: {e}")))?;
        let host = match url.port() {
            Some(p) => format!("{}:{p}", url.host_str().unwrap_or_default()),
            None => url.host_str().unwrap_or_default().to_string(),
        };
        let payload_hash = hex::encode(Sha256::digest(&body));
        let mut headers: Vec<(String, String)> = vec![
            ("host".into(), host),
            ("x-amz-content-sha256".into(), payload_hash.clone()),
            ("x-amz-date".into(), amz_date.clone()),
        ];
        if !body.is_empty() {
            headers.push(("content-md5".into(), base64(&md5::Md5::digest(&body))));
        }
        if let Some(t) = &self.token {
            headers.push(("x-amz-security-token".into(), t.clone()));
        }
        for (k, v) in extra {
            headers.push((k.to_ascii_lowercase(), v.to_string()));
        }
        headers.sort();
        let canonical_headers: String = headers.iter().map(|(k, v)| format!("{k}:{}\n", v.trim())).collect();
        let signed_headers = headers.iter().map(|(k, _)| k.as_str()).collect::<Vec<_>>().join(";");
        let canonical = format!("{method}\n{path}\n{query}\n{canonical_headers}\n{signed_headers}\n{payload_hash}");
        let scope = format!("{date}/{}/s3/aws4_request", self.region);
        let to_sign =
            format!("AWS4-HMAC-SHA256\n{amz_date}\n{scope}\n{}", hex::encode(Sha256::digest(canonical.as_bytes())));
        let mut k = hmac(format!("AWS4{}", self.secret_key).as_bytes(), date.as_bytes());
        for part in [self.region.as_str(), "s3", "aws4_request"] {
            k = hmac(&k, part.as_bytes());
        }
        let signature = hex::encode(hmac(&k, to_sign.as_bytes()));
        let auth = format!(
            "AWS4-HMAC-SHA256 Credential={}/{scope}, SignedHeaders={signed_headers}, Signature={signature}",
            self.access_key
        );
        let full = if query.is_empty() { url.to_string() } else { format!("{url}?{query}") };
        let method = reqwest::Method::from_bytes(method.as_bytes()).map_err(|e| StoreError::S3(e.to_string()))?;
        let mut req = self.http.request(method, full).header("authorization", auth);
        for (k, v) in headers.iter().filter(|(k, _)| k != "host") {
            req = req.header(k.as_str(), v.as_str());
        }
        let resp = req.body(body).send().await.map_err(|e| StoreError::S3(e.to_string()))?;
        let status = resp.status().as_u16();
        let headers = resp.headers().clone();
        let text = resp.text().await.map_err(|e| StoreError::S3(e.to_string()))?;
        Ok((status, text, headers))
    }
}

fn hmac(key: &[u8], msg: &[u8]) -> Vec<u8> {
    let mut m = Hmac::<Sha256>::new_from_slice(key).expect("HMAC accepts any key length");
    m.update(msg);
    m.finalize().into_bytes().to_vec()
}

/// SigV4 URI encoding: unreserved characters kept, `/` kept unless `encode_slash`.
fn uri_encode(s: &str, encode_slash: bool) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => out.push(b as char),
            b'/' if !encode_slash => out.push('/'),
            _ => out.push_str(&format!("%{b:02X}")),
        }
    }
    out
}

fn base64(bytes: &[u8]) -> String {
    const T: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = String::new();
    for c in bytes.chunks(3) {
        let n = (c[0] as u32) << 16 | (*c.get(1).unwrap_or(&0) as u32) << 8 | *c.get(2).unwrap_or(&0) as u32;
        out.push(T[(n >> 18) as usize & 63] as char);
        out.push(T[(n >> 12) as usize & 63] as char);
        out.push(if c.len() > 1 { T[(n >> 6) as usize & 63] as char } else { '=' });
        out.push(if c.len() > 2 { T[n as usize & 63] as char } else { '=' });
    }
    out
}

fn xml_after<'a>(body: &'a str, open: &str) -> Option<&'a str> {
    let start = body.find(open)? + open.len();
    let end = body[start..].find('<')?;
    Some(&body[start..start + end])
}

#[cfg(test)]
mod tests {
    #[test]
    fn base64_matches_rfc4648() {
        assert_eq!(super::base64(b"foobar"), "Zm9vYmFy");
        assert_eq!(super::base64(b"fooba"), "Zm9vYmE=");
        assert_eq!(super::base64(b"foob"), "Zm9vYg==");
    }
}
