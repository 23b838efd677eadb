// gatehouse-accounts: `fastify.accounts`, email verification, email change and password reset
// (docs/email-verification.md, docs/password-reset.md, docs/email-change.md). The logic lives in
// service.ts; this entry wires the store, the mailer, the credential verifier and the token issuer.
import fp from 'fastify-plugin'
import type { FastifyInstance } from 'fastify'
import { OptionsError } from '../../lib/options.ts'
import type { Audit } from '../audit/index.ts'
import type { LoginThrottle } from '../credentials/index.ts'
import { createAccounts, resolveAccountsOptions, type Accounts, type AccountsOptions, type TokenRevoker } from './service.ts'

export { createAccounts, resolveAccountsOptions, type Accounts, type AccountsOptions } from './service.ts'
export { EMAIL_TOKEN_PURPOSES, EMAIL_TOKEN_MAX_LENGTH, type EmailTokenPurpose } from './email-token.ts'

declare module 'fastify' {
  interface FastifyInstance {
    accounts: Accounts
  }
}

async function accountsPlugin (fastify: FastifyInstance, input: AccountsOptions): Promise<void> {
  const sawAudit = fastify.hasDecorator('audit')
  // gatehouse-audit registered after accounts would leave every account event unrecorded: fail
  // at ready instead.
  fastify.addHook('onReady', async () => {
    if (!sawAudit && fastify.hasDecorator('audit')) throw new OptionsError('gatehouse-accounts', 'audit', 'gatehouse-accounts: gatehouse-audit was registered after it: register it first')
  })
  const accounts = createAccounts(resolveAccountsOptions(input), {
    prisma: fastify.store.prisma,
    mailer: fastify.mailer,
    credentials: fastify.credentials,
    tokens: (fastify as unknown as { tokens: TokenRevoker }).tokens,
    audit: sawAudit ? fastify.getDecorator<Audit>('audit') : null,
    loginThrottle: () => fastify.hasDecorator('loginThrottle') ? fastify.getDecorator<LoginThrottle>('loginThrottle') : null,
    log: fastify.log
  })
  fastify.decorate('accounts', accounts)
  // REQUIRE_VERIFIED_EMAIL is this plugin's rule; gatehouse-credentials applies it to every
  // sign-in with a correct password (login, the password grant and HTTP Basic), after the
  // account-state checks, so a wrong password still answers only INVALID_CREDENTIALS.
  if (accounts.options.requireVerifiedEmail) {
    fastify.credentials.addSignInCheck((user, { channel, request }) => {
      accounts.assertMaySignIn(user, request, channel === 'basic' ? { scheme: 'basic' } : undefined)
    })
  }
  // The bootstrap admin (registered before) must be able to sign in under REQUIRE_VERIFIED_EMAIL.
  const vouched = accounts.options.verifiedEmails.map((email) => fastify.credentials.normalizeEmail(email))
  if (vouched.length > 0) {
    await fastify.store.prisma.user.updateMany({ where: { email: { in: vouched }, emailVerifiedAt: null }, data: { emailVerifiedAt: new Date() } })
  }
  // Closed before the mailer (registered earlier), so mails these tasks queue still go out.
  fastify.addHook('onClose', async () => { await accounts.idle() })
}

export const accounts = fp(accountsPlugin, {
  name: 'gatehouse-accounts',
  fastify: '5.x',
  dependencies: ['gatehouse-store', 'gatehouse-mailer', 'gatehouse-credentials', 'gatehouse-tokens']
})
export default accounts
