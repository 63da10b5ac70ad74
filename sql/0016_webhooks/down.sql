DROP TABLE IF EXISTS platform_webhook_deliveries;
DROP TABLE IF EXISTS platform_webhook_endpoints;
DROP TABLE IF EXISTS webhook_deliveries;
DROP TABLE IF EXISTS webhook_endpoints;
