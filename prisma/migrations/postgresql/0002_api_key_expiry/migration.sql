-- API keys may expire (POST /auth/api-keys {expires_in}).
ALTER TABLE "api_keys" ADD COLUMN "expires_at" TIMESTAMP(3);
