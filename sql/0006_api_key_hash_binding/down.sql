-- Back to hashes without a version. Keys minted as version 2 no longer
-- verify under the older code (their exchange answers 401: it fails
-- closed); revoke and re-mint them after a downgrade.
ALTER TABLE api_keys DROP COLUMN IF EXISTS hash_version;
