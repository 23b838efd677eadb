// The sealing of TOTP secrets (AES-256-GCM under the key file of AUTH_KEYS_DIR), as functions.
import t from 'tap'
import { mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { createKeyFileBox, createSecretBox, loadSecretKeys, retireSecretKey, rotateSecretKey, SecretBoxError, SECRET_KEYS_FILE } from '../../plugins/mfa/secret-box.ts'

function folder (t: { teardown: (fn: () => void) => void }): string {
  const dir = mkdtempSync(join(tmpdir(), 'gatehouse-box-'))
  t.teardown(() => rmSync(dir, { recursive: true, force: true }))
  return dir
}

t.test('seal and open', async (t) => {
  const dir = folder(t)
  const first = loadSecretKeys(dir)
  t.equal(first.generated, true, 'the key file is created on first use')
  t.equal(statSync(join(dir, SECRET_KEYS_FILE)).mode & 0o777, 0o600)
  t.equal(loadSecretKeys(dir).generated, false, 'and read afterwards')
  const box = createSecretBox(first.keys)
  const sealed = box.seal('JBSWY3DPEHPK3PXP', 'totp:user-1')
  t.not(box.seal('JBSWY3DPEHPK3PXP', 'totp:user-1'), sealed, 'a fresh IV each time')
  t.equal(box.open(sealed, 'totp:user-1'), 'JBSWY3DPEHPK3PXP')
  t.notOk(sealed.includes('JBSWY3DPEHPK3PXP'))
  t.throws(() => box.open(sealed, 'totp:user-2'), SecretBoxError, 'bound to its owner: another user\'s row does not open')
  const parts = sealed.split('.')
  t.throws(() => box.open([...parts.slice(0, 4), parts[4].slice(0, 8)].join('.'), 'totp:user-1'), SecretBoxError, 'a truncated tag is refused')
  const flipped = Buffer.from(parts[3], 'base64url')
  flipped[0] ^= 1
  t.throws(() => box.open([...parts.slice(0, 3), flipped.toString('base64url'), parts[4]].join('.'), 'totp:user-1'), SecretBoxError, 'a changed ciphertext is refused')
  t.throws(() => box.open('v1.nokey.aaaa.bbbb.cccc', 'totp:user-1'), /not in mfa-encryption.keys/)
  t.throws(() => box.open('garbage', 'x'), /malformed/)
  const other = createSecretBox(loadSecretKeys(folder(t)).keys)
  t.throws(() => other.open(sealed, 'totp:user-1'), SecretBoxError, 'another deployment\'s key file does not open it')
  writeFileSync(join(dir, SECRET_KEYS_FILE), '{"keys":[{"kid":"k1","key":"c2hvcnQ"}]}')
  t.throws(() => loadSecretKeys(dir), /not 32 bytes/)
})

t.test('rotation: the new key seals, the old ones open until retired; a box follows the file', async (t) => {
  const dir = folder(t)
  const box = createKeyFileBox(dir, loadSecretKeys(dir).keys)
  const oldKid = box.currentKid
  const before = box.seal('SECRET1', 'totp:u')
  const newKid = rotateSecretKey(dir)
  t.not(newKid, oldKid)
  const rotated = createSecretBox(loadSecretKeys(dir).keys)
  t.equal(rotated.currentKid, newKid)
  t.equal(rotated.open(before, 'totp:u'), 'SECRET1', 'old ciphertexts still open')
  const after = rotated.seal('SECRET2', 'totp:u')
  t.equal(rotated.kidOf(after), newKid)
  t.equal(box.open(after, 'totp:u'), 'SECRET2', 'a box made before the rotation re-reads the file for an unknown kid')
  t.throws(() => retireSecretKey(dir, newKid), /sealing key/)
  retireSecretKey(dir, oldKid)
  t.notOk(readFileSync(join(dir, SECRET_KEYS_FILE), 'utf8').includes(oldKid))
  t.throws(() => createSecretBox(loadSecretKeys(dir).keys).open(before, 'totp:u'), SecretBoxError, 'a retired key opens nothing')
})
