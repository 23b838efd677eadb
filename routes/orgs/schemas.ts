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
