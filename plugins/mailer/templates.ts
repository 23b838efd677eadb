// The mails Gatehouse sends, as small functions of their data that return a subject, a plain-text
// body and an HTML body. An app replaces any of them through the mailer's `templates` option.

import { OptionsError } from '../../lib/options.ts'

export interface MailContent {
  subject: string
  text: string
  html: string
}

export interface TemplateData {
  /** The product name (APP_NAME). */
  appName: string
  /** Where the app lives (APP_URL). */
  appUrl: string
  /** The recipient. */
  email: string
  /** The link to follow, for mails that carry one. */
  link?: string
  /** Minutes the link stays valid. */
  expiresInMinutes?: number
  /** The address an email change is moving to (the notice to the old address). */
  newEmail?: string
  /** The organization an invitation is for. */
  orgName?: string
  /** The organization role an invitation grants. */
  role?: string
}

export type MailTemplate = (data: TemplateData) => MailContent

export interface MailTemplates {
  /** A link proving the address belongs to the account (register, resend). */
  verifyEmail: MailTemplate
  /** To the new address of an email change: following the link makes it the account's email. */
  changeEmail: MailTemplate
  /** To the old address of an email change: someone asked to move the account elsewhere. */
  emailChangeRequested: MailTemplate
  /** A link to choose a new password. */
  resetPassword: MailTemplate
  /** After a password change or reset: the account's password is new. */
  passwordChanged: MailTemplate
  /** An invitation to join an organization: following the link (signed in with the address) accepts it. */
  orgInvitation: MailTemplate
}

export type TemplateName = keyof MailTemplates

export function escapeHtml (value: string): string {
  return value.replace(/[&<>"']/g, (c) => ({ '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;' })[c]!)
}

function duration (minutes: number | undefined): string {
  if (minutes === undefined) return ''
  if (minutes % 1440 === 0) return `${minutes / 1440} day${minutes === 1440 ? '' : 's'}`
  if (minutes % 60 === 0) return `${minutes / 60} hour${minutes === 60 ? '' : 's'}`
  return `${minutes} minutes`
}

/** A plain layout: paragraphs, and the link as a button and as text. */
function layout (data: TemplateData, subject: string, paragraphs: string[], action?: string): MailContent {
  const text = [...paragraphs, ...(data.link !== undefined ? ['', data.link] : []), '', `— ${data.appName}`, data.appUrl].join('\n')
  const button = data.link !== undefined && action !== undefined
    ? `<p><a href="${escapeHtml(data.link)}" style="display:inline-block;padding:10px 18px;background:#1f6feb;color:#ffffff;text-decoration:none;border-radius:6px">${escapeHtml(action)}</a></p>` +
      `<p style="font-size:13px;color:#555">Or open this address: <br>${escapeHtml(data.link)}</p>`
    : ''
  const html = '<!doctype html><html><body style="font-family:sans-serif;line-height:1.5;color:#222">' +
    paragraphs.filter((p) => p !== '').map((p) => `<p>${escapeHtml(p)}</p>`).join('') +
    button +
    `<p style="font-size:13px;color:#555">— ${escapeHtml(data.appName)}, <a href="${escapeHtml(data.appUrl)}">${escapeHtml(data.appUrl)}</a></p>` +
    '</body></html>'
  return { subject, text, html }
}

export const defaultTemplates: Readonly<MailTemplates> = Object.freeze<MailTemplates>({
  verifyEmail: (data) => layout(data, `Confirm your email address for ${data.appName}`, [
    `Please confirm that ${data.email} is your email address by opening the link below.`,
    `The link works once and expires in ${duration(data.expiresInMinutes)}.`,
    'If you did not create an account, you can ignore this mail.'
  ], 'Confirm email address'),

  changeEmail: (data) => layout(data, `Confirm your new email address for ${data.appName}`, [
    `Someone asked to use ${data.email} as the email address of a ${data.appName} account.`,
    `Open the link below to confirm it. It works once and expires in ${duration(data.expiresInMinutes)}.`,
    'If this was not you, ignore this mail: nothing changes without the link.'
  ], 'Confirm new address'),

  emailChangeRequested: (data) => layout(data, `Your ${data.appName} email address is about to change`, [
    `Someone signed in to your ${data.appName} account asked to change its email address to ${data.newEmail ?? 'another address'}.`,
    'The change happens only when the new address is confirmed.',
    'If this was not you, change your password now and sign out of every session.'
  ]),

  resetPassword: (data) => layout(data, `Reset your ${data.appName} password`, [
    `Someone asked to reset the password of the ${data.appName} account for ${data.email}.`,
    `Open the link below to choose a new password. It works once and expires in ${duration(data.expiresInMinutes)}.`,
    'If this was not you, ignore this mail: your password stays as it is.'
  ], 'Choose a new password'),

  passwordChanged: (data) => layout(data, `Your ${data.appName} password was changed`, [
    `The password of the ${data.appName} account for ${data.email} was just changed, and its sessions were signed out.`,
    'If this was not you, reset your password now and contact support.'
  ]),

  orgInvitation: (data) => layout(data, `You are invited to join ${data.orgName ?? 'an organization'} on ${data.appName}`, [
    `You are invited to join the organization "${data.orgName ?? ''}" on ${data.appName} with the role ${data.role ?? 'member'}.`,
    `To accept, open the link below and sign in with (or create) the ${data.appName} account for ${data.email}; the address must be confirmed. The link works once and expires in ${duration(data.expiresInMinutes)}.`,
    'If you did not expect this invitation, ignore this mail: nothing happens without the link.'
  ], 'Accept the invitation')
})

export function resolveTemplates (overrides: Partial<MailTemplates> = {}): Readonly<MailTemplates> {
  for (const [name, fn] of Object.entries(overrides)) {
    if (!Object.hasOwn(defaultTemplates, name)) throw new OptionsError('gatehouse-mailer', `templates.${name}`, `gatehouse-mailer: templates.${name} is not a template (use one of ${Object.keys(defaultTemplates).join(', ')})`)
    if (typeof fn !== 'function') throw new OptionsError('gatehouse-mailer', `templates.${name}`, `gatehouse-mailer: templates.${name} must be a function`)
  }
  return Object.freeze({ ...defaultTemplates, ...overrides })
}
