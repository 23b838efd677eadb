// The step-up of the sensitive self-service routes (CONTRACT §11; the table in docs/mfa.md): for
// an account with a second factor, changing the password or the email, removing or adding a
// factor, new recovery codes and a new API key need a recent multi-factor login or a current code.
// The rule is fastify.mfa's; this file holds the body fields those routes share and the call.
import type { FastifyInstance, FastifyRequest } from 'fastify'
import type { SensitiveAction, StepUpCheck, StepUpProof } from '../../plugins/mfa/index.ts'
import { ValidationError } from '../../lib/input.ts'

/** A code as typed: its shape is judged by the check (a malformed code is a wrong code, counted). */
export const codeField = { type: 'string', minLength: 1, maxLength: 32, description: 'The current 6-digit TOTP code' } as const
export const recoveryCodeField = { type: 'string', minLength: 1, maxLength: 64, description: 'One unused recovery code (case, spaces and dashes do not matter)' } as const

/** The optional proof fields of a sensitive action's body (at most one of them: see stepUp). */
export const stepUpProperties = {
  code: { ...codeField, description: 'With a second factor on and no recent multi-factor login: the current 6-digit TOTP code' },
  recovery_code: { ...recoveryCodeField, description: 'Instead of `code`: one unused recovery code (it is used up)' }
} as const

/** A sensitive action's body, as far as the step-up reads it. */
export type StepUpBody = { code?: string, recovery_code?: string } | null | undefined

const NOTHING_MORE: StepUpCheck = async () => {}

/**
 * The step-up of `action` for the caller (already known to be one of our users with a bearer
 * token): INSUFFICIENT_AUTHENTICATION now when it has neither a recent multi-factor login nor a
 * code in `body`; else the check to run where the action changes something.
 */
export async function stepUp (fastify: FastifyInstance, request: FastifyRequest, userId: string, body: StepUpBody, action: SensitiveAction): Promise<StepUpCheck> {
  const proof = proofOf(body)
  if (!fastify.hasDecorator('mfa')) return NOTHING_MORE
  return await fastify.mfa.stepUp(userId, request.user, proof, action, request)
}

/** The body's proof for fastify.mfa; a body with both fields is a 400. */
export function proofOf (body: StepUpBody): StepUpProof {
  if (body?.code !== undefined && body.recovery_code !== undefined) throw new ValidationError('body must have code or recovery_code, not both')
  return { code: body?.code, recoveryCode: body?.recovery_code }
}

/** stepUp and its check at once, for a route with nothing to verify in between. */
export async function requireStepUp (fastify: FastifyInstance, request: FastifyRequest, userId: string, body: StepUpBody, action: SensitiveAction): Promise<void> {
  await (await stepUp(fastify, request, userId, body, action))()
}
