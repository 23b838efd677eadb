-- API keys may expire (POST /auth/api-keys {expires_in}). The table is rebuilt in the form
-- `prisma migrate diff` writes it, so the catalogue stays exactly what schema.prisma describes.
CREATE TABLE "new_api_keys" (
    "id" TEXT NOT NULL PRIMARY KEY,
    "user_id" TEXT NOT NULL,
    "name" TEXT NOT NULL,
    "prefix" TEXT NOT NULL,
    "key_hash" TEXT NOT NULL,
    "last_used_at" DATETIME,
    "revoked_at" DATETIME,
    "created_at" DATETIME NOT NULL DEFAULT CURRENT_TIMESTAMP,
    "expires_at" DATETIME,
    CONSTRAINT "api_keys_user_id_fkey" FOREIGN KEY ("user_id") REFERENCES "users" ("id") ON DELETE CASCADE ON UPDATE CASCADE
);
INSERT INTO "new_api_keys" ("id", "user_id", "name", "prefix", "key_hash", "last_used_at", "revoked_at", "created_at")
SELECT "id", "user_id", "name", "prefix", "key_hash", "last_used_at", "revoked_at", "created_at" FROM "api_keys";
DROP TABLE "api_keys";
ALTER TABLE "new_api_keys" RENAME TO "api_keys";
CREATE UNIQUE INDEX "api_keys_prefix_key" ON "api_keys"("prefix");
CREATE INDEX "api_keys_user_id_idx" ON "api_keys"("user_id");
