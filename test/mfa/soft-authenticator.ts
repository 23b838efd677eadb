// A software WebAuthn authenticator for tests that run without a browser: an ES256 key pair per
// credential, "none" attestation, and assertions whose signature counter and user-verification
// flag the test chooses (to play a cloned authenticator or a security key without a PIN).
import { createHash, generateKeyPairSync, randomBytes, sign, type KeyObject } from 'node:crypto'

// ---- a minimal CBOR encoder (RFC 8949): unsigned/negative integers, byte and text strings, maps --
function head (major: number, value: number): Buffer {
  if (value < 24) return Buffer.from([(major << 5) | value])
  if (value < 0x100) return Buffer.from([(major << 5) | 24, value])
  if (value < 0x10000) return Buffer.from([(major << 5) | 25, value >> 8, value & 0xff])
  const b = Buffer.alloc(5)
  b[0] = (major << 5) | 26
  b.writeUInt32BE(value, 1)
  return b
}

type Cbor = number | string | Buffer | Map<Cbor, Cbor>

export function cbor (value: Cbor): Buffer {
  if (typeof value === 'number') return value >= 0 ? head(0, value) : head(1, -1 - value)
  if (typeof value === 'string') { const b = Buffer.from(value, 'utf8'); return Buffer.concat([head(3, b.length), b]) }
  if (Buffer.isBuffer(value)) return Buffer.concat([head(2, value.length), value])
  const parts: Buffer[] = [head(5, value.size)]
  for (const [k, v] of value) parts.push(cbor(k), cbor(v))
  return Buffer.concat(parts)
}

const b64u = (b: Buffer): string => b.toString('base64url')
const sha256 = (b: Buffer | string): Buffer => createHash('sha256').update(b).digest()

export interface SoftCredential {
  id: Buffer
  privateKey: KeyObject
  userHandle: Buffer
  counter: number
}

export class SoftAuthenticator {
  readonly rpId: string
  readonly origin: string
  credentials: SoftCredential[] = []

  constructor (rpId: string, origin: string) {
    this.rpId = rpId
    this.origin = origin
  }

  #clientData (type: string, challenge: string, origin = this.origin): Buffer {
    return Buffer.from(JSON.stringify({ type, challenge, origin, crossOrigin: false }), 'utf8')
  }

  #authData (flags: number, counter: number, attested?: Buffer): Buffer {
    const c = Buffer.alloc(4)
    c.writeUInt32BE(counter)
    return Buffer.concat([sha256(this.rpId), Buffer.from([flags]), c, ...(attested === undefined ? [] : [attested])])
  }

  /** navigator.credentials.create for `options` (PublicKeyCredentialCreationOptionsJSON), as JSON. */
  create (options: { challenge: string, user: { id: string } }, { userVerified = true } = {}): Record<string, unknown> {
    const { privateKey, publicKey } = generateKeyPairSync('ec', { namedCurve: 'P-256' })
    const jwk = publicKey.export({ format: 'jwk' })
    const cose = cbor(new Map<Cbor, Cbor>([[1, 2], [3, -7], [-1, 1], [-2, Buffer.from(jwk.x!, 'base64url')], [-3, Buffer.from(jwk.y!, 'base64url')]]))
    const id = randomBytes(16)
    const idLength = Buffer.alloc(2)
    idLength.writeUInt16BE(id.length)
    const attested = Buffer.concat([Buffer.alloc(16), idLength, id, cose])
    // UP (0x01), UV (0x04), AT (0x40)
    const authData = this.#authData(0x41 | (userVerified ? 0x04 : 0), 0, attested)
    const attestationObject = cbor(new Map<Cbor, Cbor>([['fmt', 'none'], ['attStmt', new Map()], ['authData', authData]]))
    this.credentials.push({ id, privateKey, userHandle: Buffer.from(options.user.id, 'base64url'), counter: 0 })
    return {
      id: b64u(id),
      rawId: b64u(id),
      type: 'public-key',
      clientExtensionResults: {},
      response: { clientDataJSON: b64u(this.#clientData('webauthn.create', options.challenge)), attestationObject: b64u(attestationObject), transports: ['internal'] }
    }
  }

  /** navigator.credentials.get with the first (or the given) credential, as JSON. */
  get (options: { challenge: string }, opts: { credential?: SoftCredential, userVerified?: boolean, counter?: number, origin?: string } = {}): Record<string, unknown> {
    const credential = opts.credential ?? this.credentials[0]
    credential.counter = opts.counter ?? credential.counter + 1
    const authData = this.#authData(0x01 | (opts.userVerified === false ? 0 : 0x04), credential.counter)
    const clientData = this.#clientData('webauthn.get', options.challenge, opts.origin)
    const signature = sign('sha256', Buffer.concat([authData, sha256(clientData)]), credential.privateKey)
    return {
      id: b64u(credential.id),
      rawId: b64u(credential.id),
      type: 'public-key',
      clientExtensionResults: {},
      response: { clientDataJSON: b64u(clientData), authenticatorData: b64u(authData), signature: b64u(signature), userHandle: b64u(credential.userHandle) }
    }
  }
}
