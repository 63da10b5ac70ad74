DROP TABLE IF EXISTS admin_idempotency_keys;
DROP TABLE IF EXISTS idempotency_keys;
