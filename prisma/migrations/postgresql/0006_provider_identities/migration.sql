-- CreateTable
CREATE TABLE "provider_identities" (
    "id" TEXT NOT NULL,
    "user_id" TEXT NOT NULL,
    "provider_id" TEXT NOT NULL,
    "issuer" TEXT NOT NULL,
    "subject" TEXT NOT NULL,
    "email" TEXT,
    "email_verified" BOOLEAN NOT NULL DEFAULT false,
    "access_token" TEXT,
    "refresh_token" TEXT,
    "last_login_at" TIMESTAMP(3),
    "created_at" TIMESTAMP(3) NOT NULL DEFAULT CURRENT_TIMESTAMP,

    CONSTRAINT "provider_identities_pkey" PRIMARY KEY ("id")
);

-- CreateTable
CREATE TABLE "provider_flows" (
    "id" TEXT NOT NULL,
    "provider_id" TEXT NOT NULL,
    "state_hash" TEXT,
    "browser_hash" TEXT,
    "link_hash" TEXT,
    "redirect_uri" TEXT NOT NULL,
    "link_user_id" TEXT,
    "expires_at" TIMESTAMP(3) NOT NULL,
    "used_at" TIMESTAMP(3),
    "created_at" TIMESTAMP(3) NOT NULL DEFAULT CURRENT_TIMESTAMP,

    CONSTRAINT "provider_flows_pkey" PRIMARY KEY ("id")
);

-- CreateTable
CREATE TABLE "provider_login_codes" (
    "id" TEXT NOT NULL,
    "code_hash" TEXT NOT NULL,
    "user_id" TEXT NOT NULL,
    "provider_id" TEXT NOT NULL,
    "expires_at" TIMESTAMP(3) NOT NULL,
    "used_at" TIMESTAMP(3),
    "created_at" TIMESTAMP(3) NOT NULL DEFAULT CURRENT_TIMESTAMP,

    CONSTRAINT "provider_login_codes_pkey" PRIMARY KEY ("id")
);

-- CreateIndex
CREATE UNIQUE INDEX "provider_identities_issuer_subject_key" ON "provider_identities"("issuer", "subject");

-- CreateIndex
CREATE UNIQUE INDEX "provider_identities_user_id_provider_id_key" ON "provider_identities"("user_id", "provider_id");

-- CreateIndex
CREATE UNIQUE INDEX "provider_flows_state_hash_key" ON "provider_flows"("state_hash");

-- CreateIndex
CREATE UNIQUE INDEX "provider_flows_link_hash_key" ON "provider_flows"("link_hash");

-- CreateIndex
CREATE INDEX "provider_flows_expires_at_idx" ON "provider_flows"("expires_at");

-- CreateIndex
CREATE UNIQUE INDEX "provider_login_codes_code_hash_key" ON "provider_login_codes"("code_hash");

-- CreateIndex
CREATE INDEX "provider_login_codes_expires_at_idx" ON "provider_login_codes"("expires_at");

-- AddForeignKey
ALTER TABLE "provider_identities" ADD CONSTRAINT "provider_identities_user_id_fkey" FOREIGN KEY ("user_id") REFERENCES "users"("id") ON DELETE CASCADE ON UPDATE CASCADE;

