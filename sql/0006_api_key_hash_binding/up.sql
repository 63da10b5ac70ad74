-- API-key hashes bind the tenant (issue #12). hash_version says how
-- secret_hash was computed (crates/api/src/auth/api_key.rs):
--   1  HMAC-SHA256(key id || secret): every key minted before this
--      migration. Not bound to the tenant: a copy of the row in another
--      tenant verified there. Still verified that way, never minted again.
--   2  HMAC-SHA256(domain || tenant id || key id || secret): every key
--      minted from now on, written with its version explicitly.
-- The default is 1 because a row that does not say is an old row, including
-- rows a not-yet-upgraded replica writes during a rolling deploy.
ALTER TABLE api_keys
    ADD COLUMN hash_version smallint NOT NULL DEFAULT 1
        CONSTRAINT api_keys_hash_version CHECK (hash_version IN (1, 2));
