-- Device credentials: a device enrolled by an administrator holds a secret (only its
-- SHA-256 is stored), and logins from that device must present it. NULL = a device that
-- was only ever seen at login, never enrolled.
ALTER TABLE devices ADD COLUMN secret_sha256 TEXT;
