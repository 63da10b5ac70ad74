DROP TABLE IF EXISTS usage_history;
