-- CreateTable
CREATE TABLE "org_invitations" (
    "id" TEXT NOT NULL PRIMARY KEY,
    "org_id" TEXT NOT NULL,
    "email" TEXT NOT NULL,
    "role" TEXT NOT NULL,
    "token_hash" TEXT NOT NULL,
    "invited_by" TEXT,
    "expires_at" DATETIME NOT NULL,
    "accepted_at" DATETIME,
    "accepted_by" TEXT,
    "revoked_at" DATETIME,
    "created_at" DATETIME NOT NULL DEFAULT CURRENT_TIMESTAMP,
    CONSTRAINT "org_invitations_org_id_fkey" FOREIGN KEY ("org_id") REFERENCES "organizations" ("id") ON DELETE CASCADE ON UPDATE CASCADE
);

-- CreateIndex
CREATE UNIQUE INDEX "org_invitations_token_hash_key" ON "org_invitations"("token_hash");

-- CreateIndex
CREATE INDEX "org_invitations_expires_at_idx" ON "org_invitations"("expires_at");

-- CreateIndex
CREATE UNIQUE INDEX "org_invitations_org_id_email_key" ON "org_invitations"("org_id", "email");
