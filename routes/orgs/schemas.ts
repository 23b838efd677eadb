// JSON schemas of the organization routes (they feed the OpenAPI document).

export const uuid = { type: 'string', format: 'uuid' } as const

export const orgParams = {
  type: 'object',
  properties: { orgId: uuid },
  required: ['orgId'],
  additionalProperties: false
} as const

export const memberParams = {
  type: 'object',
  properties: { orgId: uuid, userId: uuid },
  required: ['orgId', 'userId'],
  additionalProperties: false
} as const

export const orgSummary = {
  type: 'object',
  properties: { id: uuid, name: { type: 'string' }, slug: { type: 'string' } },
  required: ['id', 'name', 'slug']
} as const

export const member = {
  type: 'object',
  properties: {
    id: { ...uuid, description: 'The user id' },
    email: { type: 'string' },
    name: { type: 'string', nullable: true },
    role: { type: 'string' }
  },
  required: ['id', 'email', 'role']
} as const

export const orgDetail = {
  type: 'object',
  properties: {
    ...orgSummary.properties,
    createdAt: { type: 'string', format: 'date-time' },
    members: { type: 'array', items: member }
  },
  required: ['id', 'name', 'slug', 'members']
} as const

export const errorRef = { $ref: 'GatehouseError#' } as const
export const bearer = [{ bearerAuth: [] }]
export const errors = { 400: errorRef, 401: errorRef, 403: errorRef, 404: errorRef, 409: errorRef, 503: errorRef }

export const invitationParams = {
  type: 'object',
  properties: { orgId: uuid, id: uuid },
  required: ['orgId', 'id'],
  additionalProperties: false
} as const

/** The answer to an invitation: the same shape whether or not the address has an account. */
export const invitation = {
  type: 'object',
  properties: {
    id: { ...uuid, description: 'The invitation id' },
    email: { type: 'string', description: 'The invited address, normalised' },
    role: { type: 'string' },
    expires_at: { type: 'string', format: 'date-time' }
  },
  required: ['id', 'email', 'role', 'expires_at'],
  additionalProperties: false
} as const

export const pendingInvitations = {
  type: 'array',
  items: {
    type: 'object',
    properties: {
      ...invitation.properties,
      created_at: { type: 'string', format: 'date-time', description: 'When the current invitation was sent' },
      invited_by: { type: 'string', nullable: true, description: 'Who sent it (a user id)' }
    },
    required: ['id', 'email', 'role', 'expires_at', 'created_at', 'invited_by'],
    additionalProperties: false
  }
} as const

export const accepted = {
  type: 'object',
  properties: { org_id: uuid, role: { type: 'string' } },
  required: ['org_id', 'role'],
  additionalProperties: false
} as const
